//! DescribeLogDirs (key 35): the data directory and the partition replicas
//! in it, with their sizes (`kafka-log-dirs`, and `kafka-reassign-partitions`
//! checks it before it moves replicas). Fjord uses the first of `log.dirs`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::RequestContext;
use super::authz::cluster_allowed;
use super::util::{str_bytes, topic_name};
use crate::security::acl::AclOperation;

pub const VERSIONS: RangeInclusive<i16> = 1..=4;

pub async fn handle(ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let broker = &ctx.broker;
    if !cluster_allowed(ctx, &broker.metadata.image(), AclOperation::Describe) {
        return DescribeLogDirsResponse::default().with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts.iter().any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&partition)),
    };
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in broker.partitions.all() {
        if !wanted(&p.topic, p.index) {
            continue;
        }
        // A follower's lag is what the leader knows; here the leader reports none.
        let size = p.group().with_log(|l| l.size_bytes());
        topics.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let dir = broker.config.log_dirs.first().cloned().unwrap_or_default();
    let (total, usable) = disk_space(&dir).unwrap_or((-1, -1));
    let topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&abs.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// The file system's size and the bytes free for us, as Kafka reports them.
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `st` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    Some((st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize))
}
