//! The openraft type config of every Fjord raft group.
//!
//! `LeaderId = leader_id_std::LeaderId`: the term alone identifies a leader,
//! so a log id is (term, index) and the term is all a batch needs to carry.
//! It is stored in the batch's partitionLeaderEpoch, an i32: [`epoch_of`]
//! refuses a term that does not fit rather than wrapping it.

use openraft::BasicNode;
use openraft::impls::leader_id_std;

use crate::entry::{Entry, KafkaBatch};
use crate::error::RaftError;
use crate::state_machine::Applied;

openraft::declare_raft_types!(
    /// Fjord's raft types: entries are Kafka batches, terms are leader epochs.
    pub TypeConfig:
        D = KafkaBatch,
        R = Applied,
        NodeId = u64,
        Node = BasicNode,
        Term = u64,
        LeaderId = leader_id_std::LeaderId<u64, u64>,
        Vote = openraft::impls::Vote<Self::LeaderId>,
        Payload = openraft::EntryPayload<KafkaBatch, u64, BasicNode>,
        Entry = Entry,
);

/// The term-only leader id carried by log ids.
pub type CommittedLeaderId = openraft::vote::leader_id_std::CommittedLeaderId<u64>;
pub type LogId = openraft::LogId<CommittedLeaderId>;
pub type Vote = openraft::impls::Vote<leader_id_std::LeaderId<u64, u64>>;
pub type Payload = openraft::EntryPayload<KafkaBatch, u64, BasicNode>;
pub type Membership = openraft::Membership<u64, BasicNode>;
pub type StoredMembership = openraft::StoredMembership<CommittedLeaderId, u64, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<CommittedLeaderId, u64, BasicNode>;
/// A snapshot whose data is `D`.
pub type Snapshot<D> = openraft::Snapshot<CommittedLeaderId, u64, BasicNode, D>;

/// The partitionLeaderEpoch that stores `term`.
pub fn epoch_of(term: u64) -> Result<i32, RaftError> {
    i32::try_from(term).map_err(|_| RaftError::TermOverflow { term })
}

/// A log id from its parts.
pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term), index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_beyond_i32_are_refused() {
        assert_eq!(epoch_of(0).unwrap(), 0);
        assert_eq!(epoch_of(i32::MAX as u64).unwrap(), i32::MAX);
        assert!(matches!(epoch_of(i32::MAX as u64 + 1), Err(RaftError::TermOverflow { .. })));
    }
}
