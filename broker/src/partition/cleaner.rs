//! The log cleaner: Kafka's `LogCleaner` with one cleaner thread
//! (`log.cleaner.threads` 1), run on every replica over its own log. Each
//! round it takes the hosted `cleanup.policy=compact` partition with the
//! highest dirty ratio above its `min.cleanable.dirty.ratio` (or one whose
//! dirty data waited longer than `max.compaction.lag.ms`), cleans it, and
//! looks again; with nothing to clean it sleeps `log.cleaner.backoff.ms`.
//!
//! A pass never reaches the last stable offset (at most the high watermark
//! this replica has applied), so open transactions and uncommitted raft
//! entries are never touched, and it keeps every batch: replicas clean on
//! their own schedules and still serve the same offsets and raft entries
//! (see `fjord_storage`'s `compact` module). The key map and the rewrites
//! run on the blocking pool without the log's lock; only the swap takes it.

use std::sync::Arc;
use std::time::Duration;

use fjord_storage::{AbortedRange, CleanParams, CleanStats, StorageError};

use super::Partition;
use crate::Broker;
use crate::config::{BrokerConfig, TopicConfig};
use crate::metadata::store::now_ms;

/// The broker's cleaner settings (Kafka's `CleanerConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.backoff.ms`: the sleep when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: bytes of keys one pass may map.
    pub dedupe_buffer_bytes: usize,
}

impl CleanerSettings {
    /// Kafka's defaults for what is not set; `broker_defs` checked the values.
    pub fn from_config(config: &BrokerConfig) -> Self {
        let get = |name: &str| config.explicit().get(name).map(|v| v.trim().to_string());
        let long = |name: &str, default: i64| get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(default);
        CleanerSettings {
            enable: get("log.cleaner.enable").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
            backoff_ms: u64::try_from(long("log.cleaner.backoff.ms", 15_000)).unwrap_or(0),
            dedupe_buffer_bytes: usize::try_from(long("log.cleaner.dedupe.buffer.size", 128 << 20)).unwrap_or(0),
        }
    }
}

pub async fn run(broker: Arc<Broker>) {
    let settings = CleanerSettings::from_config(&broker.config);
    if !settings.enable {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false): compacted topics will not be compacted");
        return;
    }
    let backoff = Duration::from_millis(settings.backoff_ms.max(1));
    loop {
        if !clean_filthiest(&broker, &settings).await {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// One round: cleans the dirtiest log that qualifies. Returns whether a pass
/// moved a checkpoint, i.e. whether to look again at once.
pub async fn clean_filthiest(broker: &Broker, settings: &CleanerSettings) -> bool {
    let now = now_ms();
    let mut filthiest: Option<(f64, Arc<Partition>, CleanParams)> = None;
    for p in broker.partitions.all() {
        let config = p.config();
        if !config.is_compact() {
            continue;
        }
        let params = params(&p, &config, now, settings);
        match p.group().with_log(|log| log.dirtiness(&params)) {
            Ok(Some(d)) if d.should_clean(config.min_cleanable_dirty_ratio) && filthiest.as_ref().is_none_or(|(r, ..)| d.ratio > *r) => {
                filthiest = Some((d.ratio, p, params));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, "log cleaner: {e}"),
        }
    }
    let Some((ratio, p, params)) = filthiest else { return false };
    tracing::debug!(topic = %p.topic, partition = p.index, ratio, "log cleaner picks the dirtiest log");
    match clean(&p, params).await {
        Ok(Some(stats)) => stats.checkpoint_moved,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(topic = %p.topic, partition = p.index, "log cleaner: {e}");
            false
        }
    }
}

/// A pass's settings for `p` now: the bound is this replica's last stable
/// offset, which is never above its high watermark (what it has applied).
fn params(p: &Partition, config: &TopicConfig, now: i64, settings: &CleanerSettings) -> CleanParams {
    CleanParams {
        upto_offset: p.last_stable_offset(),
        now_ms: now,
        delete_retention_ms: config.delete_retention_ms,
        min_compaction_lag_ms: config.min_compaction_lag_ms,
        max_compaction_lag_ms: config.max_compaction_lag_ms,
        max_map_bytes: settings.dedupe_buffer_bytes,
    }
}

/// Aborted transactions on this replica below `upto`, as the cleaner takes them.
fn aborted_ranges(p: &Partition, upto: i64) -> Vec<AbortedRange> {
    p.aborted_transactions(p.local_log_start_offset(), upto)
        .into_iter()
        .map(|t| AbortedRange { producer_id: t.producer_id, first_offset: t.first_offset, last_offset: t.last_offset })
        .collect()
}

/// Why a pass failed; logged, and the log is tried again after the backoff.
#[derive(Debug, thiserror::Error)]
enum CleanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the cleaning task ended without an answer: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Plans under the read lock, maps and rewrites with no lock, swaps under
/// the write lock; all on the blocking pool (it reads and fsyncs files).
async fn clean(p: &Arc<Partition>, params: CleanParams) -> Result<Option<CleanStats>, CleanError> {
    let aborted = aborted_ranges(p, params.upto_offset);
    let group = Arc::clone(p.group());
    let pass = tokio::task::spawn_blocking(move || -> Result<Option<CleanStats>, StorageError> {
        let Some(job) = group.with_log(|log| log.begin_clean(&params, aborted))? else { return Ok(None) };
        let done = job.run()?;
        group.with_log_mut(|log| log.complete_clean(done)).map(Some)
    });
    Ok(pass.await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<CleanerSettings, crate::config::ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BrokerConfig::from_pairs(&pairs).map(|(c, _)| CleanerSettings::from_config(&c))
    }

    #[test]
    fn settings_are_kafkas_unless_set() {
        assert_eq!(settings(&[]).unwrap(), CleanerSettings { enable: true, backoff_ms: 15_000, dedupe_buffer_bytes: 128 << 20 });
        let set = [("log.cleaner.enable", "false"), ("log.cleaner.backoff.ms", "200"), ("log.cleaner.dedupe.buffer.size", "1048576")];
        assert_eq!(settings(&set).unwrap(), CleanerSettings { enable: false, backoff_ms: 200, dedupe_buffer_bytes: 1 << 20 });
        assert!(settings(&[("log.cleaner.backoff.ms", "-1")]).is_err(), "Kafka's atLeast(0)");
        assert!(settings(&[("log.cleaner.enable", "maybe")]).is_err());
    }
}
