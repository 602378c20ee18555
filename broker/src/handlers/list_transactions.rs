//! ListTransactions (key 66): `kafka-transactions list` asks every broker
//! for the transactional ids it coordinates, filtered by state, producer id
//! and (v1) how long the transaction has run. Only ids the principal may
//! DESCRIBE are listed; a state name Kafka does not know is echoed back in
//! `unknown_state_filters` (Kafka's `TransactionStateManager.listTransactionStates`).
//!
//! v2 adds a transactional id pattern (a Java regular expression), not served.

use std::ops::RangeInclusive;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};

use super::RequestContext;
use super::authz::allowed;
use super::util::str_bytes;
use crate::security::acl::{AclOperation, ResourceType};
use crate::txn::ops::ListFilter;
use crate::txn::state::TxnState;

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

pub async fn handle(ctx: &RequestContext, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut filter = ListFilter {
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        min_duration_ms: if ctx.api_version >= 1 { req.duration_filter } else { -1 },
        ..Default::default()
    };
    let mut unknown = Vec::new();
    for name in &req.state_filters {
        match TxnState::from_name(name) {
            Some(state) => filter.states.push(state),
            None => unknown.push(name.clone()),
        }
    }
    let resp = ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    // Only unknown states asked for: nothing can match (Kafka's filter set is then empty but asked).
    if !req.state_filters.is_empty() && filter.states.is_empty() {
        return resp;
    }
    let listed = match ctx.broker.txn.list(&filter).await {
        Ok(listed) => listed,
        Err(code) => return resp.with_error_code(code),
    };
    let image = ctx.broker.metadata.image();
    let states = listed
        .into_iter()
        .filter(|t| allowed(ctx, &image, AclOperation::Describe, ResourceType::TransactionalId, &t.transactional_id))
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(t.state.name()))
        })
        .collect();
    resp.with_transaction_states(states)
}
