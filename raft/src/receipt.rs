//! acks=1: where a produced batch landed in the leader's log, and when it is
//! durable there, before any follower has it.
//!
//! openraft reports a proposal's log id only at commit, so the log store
//! itself tells the producer (shared/notes, pitfall 9): a [`KafkaBatch`]
//! may carry an [`AppendReceipt`]; the leader's log store fills it when it
//! appends the batch, and [`AppendReceipt::durable`] resolves once the
//! group commit that covers it has synced.
//!
//! A receipt never leaves the process: it is not part of the wire form of a
//! batch or an entry, and followers never see one.
//!
//! [`KafkaBatch`]: crate::KafkaBatch

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// Where a batch landed in the leader's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub raft_index: u64,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// Why a receipt will never resolve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("the log store closed before the batch was durable")]
    LogClosed,
}

/// Filled by the log store that appends the batch; awaited by the producer.
/// If leadership is lost before the append, it is never filled: wait for it
/// together with the write's own outcome.
#[derive(Debug)]
pub struct AppendReceipt {
    appended: watch::Sender<Option<Appended>>,
    /// The log store's durable point (next durable raft index), set before `appended`.
    durable: OnceLock<watch::Receiver<u64>>,
}

impl AppendReceipt {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { appended: watch::channel(None).0, durable: OnceLock::new() })
    }

    /// Called by the log store right after the batch is in its log.
    pub(crate) fn appended(&self, at: Appended, durable: watch::Receiver<u64>) {
        let first = self.durable.set(durable).is_ok();
        debug_assert!(first, "a batch is appended to one leader log once");
        self.appended.send_replace(Some(at));
    }

    /// Where the batch is, once the leader has it (not yet durable).
    pub fn appended_at(&self) -> Option<Appended> {
        *self.appended.borrow()
    }

    /// Resolves when the batch is on the leader's disk: Kafka's acks=1.
    pub async fn durable(&self) -> Result<Appended, ReceiptError> {
        let mut rx = self.appended.subscribe();
        let at = rx.wait_for(Option::is_some).await.map_err(|_| ReceiptError::LogClosed)?.expect("waited for Some");
        let mut durable = self.durable.get().expect("set before appended").clone();
        durable.wait_for(|next| *next > at.raft_index).await.map_err(|_| ReceiptError::LogClosed)?;
        Ok(at)
    }
}

/// A receipt slot that compares equal and is skipped on the wire, so the
/// types that carry one keep their derived equality.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiptSlot(pub Option<Arc<AppendReceipt>>);

impl PartialEq for ReceiptSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ReceiptSlot {}
