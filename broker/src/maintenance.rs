//! Background upkeep of the hosted partitions, as Kafka's log manager runs
//! it: retention every `log.retention.check.interval.ms` on every replica
//! (done as raft purges, see `Group::apply_retention`; for a tiered topic
//! by `local.retention.*` and only below what is uploaded), and, on
//! leaders, forgetting producers idle for longer than
//! `producer.id.expiration.ms`.

use std::sync::Arc;
use std::time::Duration;

use crate::Broker;
use crate::metadata::store::now_ms;
use crate::partition::Partition;

/// Kafka's `producer.id.expiration.ms` default: one day.
const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

pub async fn run(broker: Arc<Broker>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for p in broker.partitions.all() {
            apply_retention(&p).await;
            if !p.is_leader() {
                continue;
            }
            let log_start = p.log_start_offset();
            let mut states = p.group().producer_states().write().expect("producer states");
            states.remove_expired(now_ms(), PRODUCER_ID_EXPIRATION_MS);
            states.remove_below(log_start);
        }
    }
}

/// Local retention on one replica. A tiered topic's local data goes only
/// once its upload is recorded, by `local.retention.*`.
pub async fn apply_retention(p: &Partition) {
    let bound = p.config().remote_storage_enable.then(|| p.group().tiered().read().expect("tiered state").upload_end().unwrap_or(i64::MIN));
    match p.group().apply_retention(bound, Duration::from_secs(30)).await {
        Ok(Some(point)) => tracing::info!(topic = %p.topic, partition = p.index, raft_index = point, "retention deleted old segments"),
        Ok(None) => {}
        Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, "retention: {e}"),
    }
}
