//! ListOffsets (key 2, v1-10): an offset by timestamp, or one of the special
//! specs, per partition. Kafka's `KafkaApis.handleListOffsetRequestV1AndAbove`,
//! `ReplicaManager.fetchOffset`, `Partition.fetchOffsetForTimestamp` and
//! `UnifiedLog.fetchOffsetByTimestamp`, without tiered storage.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use fjord_storage::TimestampOffset;
use fjord_tiered::RemoteStore;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, TopicName};

use super::RequestContext;
use super::authz::allowed;
use crate::Broker;
use crate::metadata::TopicImage;
use crate::partition::Partition;
use crate::partition::epochs::{self, epoch_for_offset, epoch_start_offset};
use crate::partition::{remote_read, tiering};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 1..=10;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
/// KIP-734.
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: the start of the local log; without tiering, the log start.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// KIP-1005: the last offset in tiered storage.
const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// `ListOffsetsRequest.CONSUMER_REPLICA_ID`: a client; answers honour the isolation level.
const CONSUMER_REPLICA_ID: i32 = -1;
/// `ListOffsetsRequest.DEBUGGING_REPLICA_ID`: any replica may answer, up to its log end.
const DEBUGGING_REPLICA_ID: i32 = -2;
/// `ListOffsetsResponse.UNKNOWN_EPOCH`: no `current_leader_epoch` check.
const UNKNOWN_EPOCH: i32 = -1;
/// The first version that gets OFFSET_NOT_AVAILABLE; older ones get LEADER_NOT_AVAILABLE.
const FIRST_OFFSET_NOT_AVAILABLE_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let image = ctx.broker.metadata.image();
    let duplicates = duplicate_partitions(&req);
    let query = Query { version: ctx.api_version, replica_id: req.replica_id.0, read_committed: req.isolation_level == 1 };
    let mut answered = HashSet::new();
    let mut topics: Vec<ListOffsetsTopicResponse> = Vec::new();
    for t in &req.topics {
        let topic = image.topic(&t.name.0);
        for p in &t.partitions {
            // Kafka keys its answers by partition: a duplicate is answered once.
            if !answered.insert((t.name.0.clone(), p.partition_index)) {
                continue;
            }
            let answer = if !allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, &t.name.0) {
                Err(ResponseError::TopicAuthorizationFailed.code())
            } else if duplicates.contains(&(t.name.0.clone(), p.partition_index)) {
                Err(ResponseError::InvalidRequest.code())
            } else {
                answer_partition(&ctx.broker, topic.map(Arc::as_ref), p, &query).await
            };
            let response = match answer {
                Ok(found) => found,
                Err(code) => ListOffsetsPartitionResponse::default().with_error_code(code),
            }
            .with_partition_index(p.partition_index);
            push_grouped(&mut topics, &t.name, response);
        }
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// What every partition of one request shares.
struct Query {
    version: i16,
    replica_id: i32,
    /// isolation_level 1 (v2+): LATEST is the last stable offset.
    read_committed: bool,
}

/// Kafka's `ListOffsetsRequest.duplicatePartitions`.
fn duplicate_partitions(req: &ListOffsetsRequest) -> HashSet<(kafka_protocol::protocol::StrBytes, i32)> {
    let mut seen = HashSet::new();
    let mut duplicates = HashSet::new();
    for t in &req.topics {
        for p in &t.partitions {
            let key = (t.name.0.clone(), p.partition_index);
            if !seen.insert(key.clone()) {
                duplicates.insert(key);
            }
        }
    }
    duplicates
}

/// Answers go out grouped by topic (Kafka groups its per-partition answers
/// the same way), topics in the order the request first names them.
fn push_grouped(topics: &mut Vec<ListOffsetsTopicResponse>, name: &TopicName, partition: ListOffsetsPartitionResponse) {
    match topics.iter_mut().find(|t| &t.name == name) {
        Some(t) => t.partitions.push(partition),
        None => topics.push(ListOffsetsTopicResponse::default().with_name(name.clone()).with_partitions(vec![partition])),
    }
}

/// The hosted replica of a partition, or Kafka's error for its absence
/// (`ReplicaManager.getPartitionOrError`): NOT_LEADER_OR_FOLLOWER when the
/// cluster has the partition but this broker holds no replica of it, else
/// UNKNOWN_TOPIC_OR_PARTITION. Shared with Fetch and OffsetForLeaderEpoch.
pub(super) fn hosted_partition(broker: &Broker, topic: Option<&TopicImage>, index: i32) -> Result<Arc<Partition>, ResponseError> {
    let topic = topic.ok_or(ResponseError::UnknownTopicOrPartition)?;
    if index < 0 || index >= topic.partition_count() {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    broker.partitions.get(&topic.name, index).filter(|p| p.topic_id == topic.id).ok_or(ResponseError::NotLeaderOrFollower)
}

/// `ReplicaManager.isListOffsetsTimestampUnsupported`: a negative timestamp
/// must be a spec the request version knows.
fn spec_supported(timestamp: i64, version: i16) -> bool {
    let min_version = match timestamp {
        t if t >= 0 => return true,
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => 1,
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL_TIMESTAMP => 8,
        LATEST_TIERED_TIMESTAMP => 9,
        _ => return false,
    };
    version >= min_version
}

async fn answer_partition(
    broker: &Broker,
    topic: Option<&TopicImage>,
    p: &ListOffsetsPartition,
    query: &Query,
) -> Result<ListOffsetsPartitionResponse, i16> {
    if !spec_supported(p.timestamp, query.version) {
        return Err(ResponseError::UnsupportedVersion.code());
    }
    let partition = hosted_partition(broker, topic, p.partition_index).map_err(|e| e.code())?;
    let found = lookup(&partition, p, query, broker.remote.as_deref()).await?;
    let mut response = ListOffsetsPartitionResponse::default();
    if let Some(found) = found {
        response = response.with_timestamp(found.timestamp).with_offset(found.offset);
        if found.leader_epoch >= 0 && query.version >= 4 {
            response = response.with_leader_epoch(found.leader_epoch);
        }
    }
    Ok(response)
}

/// `Partition.fetchOffsetForTimestamp` and the gate `ReplicaManager.fetchOffset`
/// puts after it. `None` is Kafka's "no offset": error NONE, offset and
/// timestamp -1.
async fn lookup(
    partition: &Partition,
    p: &ListOffsetsPartition,
    query: &Query,
    remote: Option<&RemoteStore>,
) -> Result<Option<TimestampOffset>, i16> {
    let storage_error = |_| ResponseError::KafkaStorageError.code();
    let current = (p.current_leader_epoch != UNKNOWN_EPOCH).then_some(p.current_leader_epoch);
    let leader_epoch = partition.check_leader(current, query.replica_id != DEBUGGING_REPLICA_ID).map_err(epochs::error_code)?;
    let is_client = query.replica_id == CONSUMER_REPLICA_ID;
    let high_watermark = partition.high_watermark();
    // Kafka's `fetchOffsetForTimestamp`: LATEST is the last stable offset for
    // read_committed clients, the high watermark for other clients.
    let last_fetchable = match (is_client, query.read_committed) {
        (true, true) => partition.last_stable_offset(),
        (true, false) => high_watermark,
        (false, _) => partition.log_end_offset(),
    };
    // Right after an election, until the high watermark reaches the start of
    // the new epoch, clients may not learn offsets the old leader never committed.
    let lagging = if is_client {
        let epoch_start = partition.group().with_log(|log| epoch_start_offset(log, leader_epoch)).map_err(storage_error)?;
        (epoch_start > high_watermark).then_some(if query.version >= FIRST_OFFSET_NOT_AVAILABLE_VERSION {
            ResponseError::OffsetNotAvailable.code()
        } else {
            ResponseError::LeaderNotAvailable.code()
        })
    } else {
        None
    };
    let special = |offset: i64, leader_epoch: i32| Some(TimestampOffset { timestamp: -1, offset, leader_epoch });
    let found = match p.timestamp {
        LATEST_TIMESTAMP => return lagging.map_or(Ok(special(last_fetchable, leader_epoch)), Err),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
            let (local_start, epoch) = partition
                .group()
                .with_log(|log| epoch_for_offset(log, log.log_start_offset()).map(|e| (log.log_start_offset(), e)))
                .map_err(storage_error)?;
            let start = partition.log_start_offset();
            return Ok(match p.timestamp {
                // Below the local log the epoch is the object store's: not looked up.
                EARLIEST_TIMESTAMP if start != local_start => special(start, -1),
                _ => special(local_start, epoch.unwrap_or(-1)),
            });
        }
        // The last offset in the object store; nothing there (or no tiered
        // storage): Kafka answers offset -1 with epoch -1.
        LATEST_TIERED_TIMESTAMP => {
            let end = partition.group().tiered().read().expect("tiered state lock").upload_end();
            return Ok(special(end.map_or(-1, |e| e - 1), -1));
        }
        MAX_TIMESTAMP => partition.group().with_log(|log| log.max_timestamp()).map_err(storage_error)?,
        timestamp => match remote_offset_for_timestamp(partition, timestamp, remote).await? {
            Some(found) => Some(found),
            None => partition.group().with_log(|log| log.offset_for_timestamp(timestamp)).map_err(storage_error)?,
        },
    };
    debug_assert!(p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP);
    // A record at or past what clients may read is not revealed.
    match found {
        Some(f) if f.offset < last_fetchable => Ok(Some(f)),
        _ => lagging.map_or(Ok(None), Err),
    }
}

/// Kafka's `RemoteLogManager.findOffsetByTimestamp`: the first record at
/// or after `timestamp` in the remote segments below the local log, if the
/// largest timestamp of one of them reaches it.
async fn remote_offset_for_timestamp(
    partition: &Partition,
    timestamp: i64,
    remote: Option<&RemoteStore>,
) -> Result<Option<TimestampOffset>, i16> {
    let Some(store) = remote else { return Ok(None) };
    let (local_start, start) = (partition.local_log_start_offset(), partition.log_start_offset());
    let candidates: Vec<_> = partition
        .group()
        .tiered()
        .read()
        .expect("tiered state lock")
        .segments()
        .iter()
        .filter(|s| s.next_offset > start && s.base_offset < local_start && s.max_timestamp >= timestamp)
        .cloned()
        .collect();
    for segment in candidates {
        let found = remote_read::offset_for_timestamp(store, &tiering::remote_segment(partition, &segment), segment.base_offset, timestamp)
            .await
            .map_err(|e| {
                tracing::warn!(topic = %partition.topic, partition = partition.index, "list offsets from tiered storage failed: {e}");
                ResponseError::KafkaStorageError.code()
            })?;
        if let Some(f) = found.filter(|f| f.offset >= start) {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_need_their_versions() {
        let table = [
            (0, 1, true),
            (1_700_000_000_000, 1, true),
            (LATEST_TIMESTAMP, 1, true),
            (EARLIEST_TIMESTAMP, 1, true),
            (MAX_TIMESTAMP, 6, false),
            (MAX_TIMESTAMP, 7, true),
            (EARLIEST_LOCAL_TIMESTAMP, 7, false),
            (EARLIEST_LOCAL_TIMESTAMP, 8, true),
            (LATEST_TIERED_TIMESTAMP, 8, false),
            (LATEST_TIERED_TIMESTAMP, 10, true),
            (-6, 10, false),
            (i64::MIN, 10, false),
        ];
        for (timestamp, version, ok) in table {
            assert_eq!(spec_supported(timestamp, version), ok, "{timestamp} at v{version}");
        }
    }

    #[test]
    fn duplicates_are_found_across_topic_entries() {
        use kafka_protocol::messages::list_offsets_request::ListOffsetsTopic;
        let part = |i| ListOffsetsPartition::default().with_partition_index(i);
        let topic = |name: &'static str, parts: Vec<i32>| {
            ListOffsetsTopic::default()
                .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_static_str(name)))
                .with_partitions(parts.into_iter().map(part).collect())
        };
        let req = ListOffsetsRequest::default().with_topics(vec![topic("a", vec![0, 1]), topic("b", vec![0]), topic("a", vec![1, 2])]);
        let dups = duplicate_partitions(&req);
        assert_eq!(dups.len(), 1);
        assert!(dups.contains(&(kafka_protocol::protocol::StrBytes::from_static_str("a"), 1)));
    }
}
