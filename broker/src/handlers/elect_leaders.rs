//! ElectLeaders (key 43): `kafka-leader-election`. A preferred election
//! asks each partition's leader to hand leadership to its first replica
//! (raft's TransferLeader, [`crate::cluster::leadership`]) and waits for
//! the metadata to show it. Raft never elects a replica that may lack
//! committed records, so an unclean election has nothing to do: a
//! partition with a leader needs none, one without gets
//! ELIGIBLE_LEADERS_NOT_AVAILABLE.

use std::ops::RangeInclusive;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::create_topics::admin_wait;
use super::util::{str_bytes, topic_name};
use crate::cluster::leadership::{NotElected, elect_preferred};
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(ctx: &RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let image = ctx.broker.metadata.image();
    if !cluster_allowed(ctx, &image, AclOperation::Alter) {
        return ElectLeadersResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let election_type = if ctx.api_version == 0 { PREFERRED } else { req.election_type };
    let all = req.topic_partitions.is_none();
    let asked: Vec<(String, Vec<i32>)> = match &req.topic_partitions {
        Some(t) => t.iter().map(|t| (t.topic.0.to_string(), t.partitions.clone())).collect(),
        None => image.topics.values().map(|t| (t.name.clone(), (0..t.partition_count()).collect())).collect(),
    };
    let wait = admin_wait(req.timeout_ms).max(Duration::from_secs(1));
    let mut results = Vec::new();
    for (topic, partitions) in asked {
        let mut out = Vec::new();
        for p in partitions {
            let outcome: Result<(), (ResponseError, String)> = match election_type {
                PREFERRED => elect_preferred(&ctx.broker.cluster, &topic, p, wait).await.map_err(|e| match e {
                    NotElected::UnknownPartition => (ResponseError::UnknownTopicOrPartition, "The partition does not exist.".to_string()),
                    NotElected::NotNeeded => (ResponseError::ElectionNotNeeded, "Leader election not needed for topic partition.".into()),
                    NotElected::PreferredUnavailable => (
                        ResponseError::PreferredLeaderNotAvailable,
                        "Failed to elect leader for partition: the preferred replica is not alive or not in sync.".into(),
                    ),
                    NotElected::TimedOut => (ResponseError::RequestTimedOut, "The election did not finish in time.".into()),
                }),
                UNCLEAN => match image.topic(&topic).and_then(|t| t.state(p).map(|_| ctx.broker.leader_view(&image, t, p))) {
                    None => Err((ResponseError::UnknownTopicOrPartition, "The partition does not exist.".into())),
                    Some(v) if v.leader >= 0 => {
                        Err((ResponseError::ElectionNotNeeded, "Leader election not needed for topic partition.".into()))
                    }
                    Some(_) => Err((
                        ResponseError::EligibleLeadersNotAvailable,
                        "No in-sync replica can lead; raft elects none that might lack committed records.".into(),
                    )),
                },
                other => Err((ResponseError::InvalidRequest, format!("Unknown election type {other}"))),
            };
            // Asked for every partition, Kafka reports only the ones an election was needed for.
            if all && matches!(&outcome, Err((ResponseError::ElectionNotNeeded, _))) {
                continue;
            }
            let r = PartitionResult::default().with_partition_id(p);
            out.push(match outcome {
                Ok(()) => r.with_error_message(None),
                Err((code, message)) => r.with_error_code(code.code()).with_error_message(Some(str_bytes(&message))),
            });
        }
        if !out.is_empty() || !all {
            results.push(ReplicaElectionResult::default().with_topic(topic_name(&topic)).with_partition_result(out));
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
