//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions a
//! page at a time. Admin's `describeTopics(names)` (so `kafka-topics
//! --describe`) tries it before Metadata. Follows Kafka's
//! `DescribeTopicPartitionsRequestHandler` and
//! `KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse`.

use std::ops::{Range, RangeInclusive};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};

use super::RequestContext;
use super::authz::{allowed, authorized_operations};
use super::util::{topic_name, uuid, validate_topic_name};
use crate::Broker;
use crate::metadata::{MetadataImage, TopicImage};
use crate::security::acl::{AclOperation, ResourceType};

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// Kafka's `max.request.partition.size.limit` default: the most partitions
/// one response describes, whatever the request asks.
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

pub async fn handle(ctx: &RequestContext, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.metadata.image();
    let all = req.topics.is_empty();
    let may = |name: &str| allowed(ctx, &image, AclOperation::Describe, ResourceType::Topic, name);
    let requested: Vec<String> =
        if all { image.topics.keys().cloned().collect() } else { req.topics.iter().map(|t| t.name.0.to_string()).collect() };
    let cursor = req.cursor.as_ref().map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let counts = |name: &str| image.topic(name).map(|t| t.partition_count());
    let cursor = cursor.as_ref().map(|(t, p)| (t.as_str(), *p));
    let page = match paginate(&requested, cursor, !all, req.response_partition_limit, counts, may) {
        Ok(page) => page,
        Err(message) => return refuse(&req, &message),
    };
    let mut topics: Vec<DescribeTopicPartitionsResponseTopic> = page
        .topics
        .iter()
        .map(|t| {
            describe(&ctx.broker, &image, t).with_topic_authorized_operations(authorized_operations(
                ctx,
                &image,
                ResourceType::Topic,
                &t.name,
            ))
        })
        .collect();
    // Listing all leaves out what the principal may not describe; a topic
    // asked for by name follows the page, refused without its id (Kafka's
    // `DescribeTopicPartitionsRequestHandler`).
    if !all {
        topics.extend(page.refused.iter().map(|name| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name)))
                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
        }));
    }
    let next_cursor =
        page.next.map(|(topic, partition)| Cursor::default().with_topic_name(topic_name(&topic)).with_partition_index(partition));
    DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor)
}

/// One topic of a page: the partitions to describe, or `None` for a topic
/// that does not exist.
#[derive(Debug, PartialEq)]
struct PageTopic {
    name: String,
    partitions: Option<Range<i32>>,
}

#[derive(Debug, PartialEq)]
struct Page {
    topics: Vec<PageTopic>,
    /// Where the next page starts (topic, partition), if this one is cut short.
    next: Option<(String, i32)>,
    /// Topics from the cursor's on that the principal may not describe,
    /// left out of the page.
    refused: Vec<String>,
}

/// Kafka's pagination: topics sorted by name from the cursor's topic on,
/// at most `limit` (capped at 2000, at least 1) partitions in all. A topic cut
/// short, or the first topic that no longer fits, becomes the next cursor.
/// Unknown topics are listed only when they were named (`named`). The
/// cursor is checked against every topic named, then topics that are not
/// `visible` are set apart.
fn paginate(
    requested: &[String],
    cursor: Option<(&str, i32)>,
    named: bool,
    limit: i32,
    partition_count: impl Fn(&str) -> Option<i32>,
    visible: impl Fn(&str) -> bool,
) -> Result<Page, String> {
    let cursor_topic = cursor.map_or("", |(t, _)| t);
    let mut names: Vec<&str> = requested.iter().map(String::as_str).filter(|n| *n >= cursor_topic).collect();
    names.sort_unstable();
    names.dedup();
    if let Some((topic, partition)) = cursor {
        if named && names.binary_search(&topic).is_err() {
            return Err(format!("DescribeTopicPartitionsRequest topic list should contain the cursor topic: {topic}"));
        }
        if partition < 0 {
            return Err(format!(
                "DescribeTopicPartitionsRequest cursor partition must be valid: Cursor(topicName={topic}, partitionIndex={partition})"
            ));
        }
    }
    let (names, refused): (Vec<&str>, Vec<&str>) = names.into_iter().partition(|n| visible(n));
    let refused = refused.into_iter().map(str::to_string).collect();
    let mut remaining = limit.clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut page = Page { topics: Vec::new(), next: None, refused };
    for name in names {
        if remaining == 0 {
            // Everything before fitted whole: the next page starts at this topic.
            page.next = Some((name.to_string(), 0));
            break;
        }
        let Some(count) = partition_count(name) else {
            if named {
                page.topics.push(PageTopic { name: name.to_string(), partitions: None });
            }
            continue;
        };
        let start = if name == cursor_topic { cursor.map_or(0, |(_, p)| p) } else { 0 };
        let end = count.min(start.saturating_add(remaining));
        let partitions = start..end.max(start);
        debug_assert!(partitions.len() as i32 <= remaining);
        remaining -= partitions.len() as i32;
        page.topics.push(PageTopic { name: name.to_string(), partitions: Some(partitions) });
        if end < count {
            page.next = Some((name.to_string(), end));
            break;
        }
    }
    Ok(page)
}

fn describe(broker: &Broker, image: &MetadataImage, t: &PageTopic) -> DescribeTopicPartitionsResponseTopic {
    let base = DescribeTopicPartitionsResponseTopic::default().with_name(Some(topic_name(&t.name))).with_is_internal(is_internal(&t.name));
    match (image.topic(&t.name), &t.partitions) {
        (Some(topic), Some(range)) => {
            base.with_topic_id(uuid(topic.id)).with_partitions(range.clone().map(|p| describe_partition(broker, topic, p)).collect())
        }
        _ => {
            let code = match validate_topic_name(&t.name) {
                Ok(()) => ResponseError::UnknownTopicOrPartition,
                Err(_) => ResponseError::InvalidTopicException,
            };
            base.with_error_code(code.code())
        }
    }
}

/// Leader, epoch and ISR as [`Broker::leader_view`] knows them; replicas
/// from the image; offline replicas are those of fenced or unknown brokers.
/// Fjord has no ELR (KIP-966), so those lists are empty.
fn describe_partition(broker: &Broker, topic: &TopicImage, index: i32) -> DescribeTopicPartitionsResponsePartition {
    let image = broker.metadata.image();
    let replicas = topic.replicas.get(index as usize).map_or_else(Vec::new, |r| r.iter().copied().map(BrokerId).collect());
    let view = broker.leader_view(&image, topic, index);
    let (leader, epoch, isr) = (view.leader, view.epoch, view.isr.into_iter().map(BrokerId).collect());
    let offline: Vec<BrokerId> =
        if image.brokers.is_empty() { Vec::new() } else { replicas.iter().copied().filter(|r| !image.is_live(r.0)).collect() };
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(index)
        .with_leader_id(BrokerId(leader))
        .with_leader_epoch(epoch)
        .with_replica_nodes(replicas)
        .with_isr_nodes(isr)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
        .with_offline_replicas(offline)
}

/// Kafka's `Topic.isInternal`, by name (the topic need not exist).
fn is_internal(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state" | "__share_group_state")
}

/// Kafka's `getErrorResponse` for an InvalidRequestException thrown by the
/// handler: every requested topic carries the error, nothing else.
fn refuse(req: &DescribeTopicPartitionsRequest, message: &str) -> DescribeTopicPartitionsResponse {
    tracing::debug!("DescribeTopicPartitions refused: {message}");
    let topics = req
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(t.name.clone()))
                .with_error_code(ResponseError::InvalidRequest.code())
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// a: 3 partitions, b: 2, c: 5; anything else does not exist.
    fn counts(name: &str) -> Option<i32> {
        match name {
            "a" => Some(3),
            "b" => Some(2),
            "c" => Some(5),
            _ => None,
        }
    }

    fn shape(page: &Page) -> Vec<(&str, Option<Range<i32>>)> {
        page.topics.iter().map(|t| (t.name.as_str(), t.partitions.clone())).collect()
    }

    #[test]
    fn pages_follow_kafka() {
        let all = names(&["c", "a", "b"]);
        let whole = paginate(&all, None, false, 2000, counts, |_| true).unwrap();
        assert_eq!(shape(&whole), [("a", Some(0..3)), ("b", Some(0..2)), ("c", Some(0..5))]);
        assert_eq!(whole.next, None);

        // Cut inside a topic: the cursor points at its next partition.
        let p = paginate(&all, None, false, 4, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..3)), ("b", Some(0..1))]);
        assert_eq!(p.next, Some(("b".into(), 1)));
        let p = paginate(&all, Some(("b", 1)), false, 4, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("b", Some(1..2)), ("c", Some(0..3))]);
        assert_eq!(p.next, Some(("c".into(), 3)));

        // Exactly full after a topic: the next topic starts the next page.
        let p = paginate(&all, None, false, 3, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..3))]);
        assert_eq!(p.next, Some(("b".into(), 0)));
        // ...unless it was the last one.
        let p = paginate(&all, Some(("c", 0)), false, 5, counts, |_| true).unwrap();
        assert_eq!(p.next, None);

        // A limit of 0 or less still describes one partition; above 2000 is capped.
        let p = paginate(&all, None, false, 0, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..1))]);
        assert_eq!(p.next, Some(("a".into(), 1)));
    }

    #[test]
    fn named_topics_and_unknown_ones() {
        let req = names(&["zz", "a", "a", "bad name"]);
        let p = paginate(&req, None, true, 2000, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..3)), ("bad name", None), ("zz", None)]);
        // Unknown topics are skipped silently when all topics were asked for.
        let p = paginate(&req, None, false, 2000, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..3))]);
        // Topics before the cursor topic are left out.
        let p = paginate(&names(&["a", "b"]), Some(("b", 0)), true, 10, counts, |_| true).unwrap();
        assert_eq!(shape(&p), [("b", Some(0..2))]);
    }

    #[test]
    fn bad_cursors_are_invalid_requests() {
        assert!(paginate(&names(&["a"]), Some(("b", 0)), true, 10, counts, |_| true).unwrap_err().contains("cursor topic: b"));
        assert!(paginate(&names(&["a"]), Some(("a", -1)), true, 10, counts, |_| true).unwrap_err().contains("cursor partition"));
        // With all topics, a cursor topic that vanished is fine.
        assert!(paginate(&names(&["a", "c"]), Some(("b", 0)), false, 10, counts, |_| true).is_ok());
    }

    #[test]
    fn topics_not_visible_are_set_apart_after_the_cursor_check() {
        let req = names(&["a", "b", "c", "x"]);
        let visible = |n: &str| n != "b" && n != "x";
        // The cursor may name a hidden topic; it is still not described.
        let p = paginate(&req, Some(("b", 1)), true, 2000, counts, visible).unwrap();
        assert_eq!(shape(&p), [("c", Some(0..5))]);
        assert_eq!(p.refused, ["b", "x"]);
        let p = paginate(&req, None, true, 3, counts, visible).unwrap();
        assert_eq!(shape(&p), [("a", Some(0..3))]);
        assert_eq!((p.next, p.refused), (Some(("c".into(), 0)), vec!["b".to_string(), "x".to_string()]));
    }
}
