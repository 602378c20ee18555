//! Deleting topics (DeleteTopics): Kafka's `ControllerApis.deleteTopics`
//! checks (names or ids, never both; duplicates; unknown topics), then one
//! `RemoveTopic` record per topic in a single proposal, as
//! `ReplicationControlManager.deleteTopics` does. The partition manager
//! removes the partitions and their directories when it sees the new image.
//!
//! Kafka answers in a shuffled order so positions reveal nothing; clients
//! match results by name or id, so Fjord keeps the request's order instead.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::AdminError;
use crate::Broker;
use crate::metadata::{MetadataImage, MetadataRecord, TopicId};

/// One topic a DeleteTopics request names: by name (v1-5, or v6 with a
/// zero id), or by id (v6, with no name).
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    pub name: Option<String>,
    pub id: TopicId,
}

/// The result for one topic, as the response reports it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: Option<String>,
    pub id: TopicId,
    pub result: Result<(), AdminError>,
}

/// What the checks leave: refusals, and the topics to remove (id, name).
#[derive(Debug, Default)]
struct Plan {
    refused: Vec<Outcome>,
    delete: Vec<(TopicId, String)>,
}

/// Deletes the topics `requested` names, after Kafka's checks. `Err` when
/// the proposal itself fails (not the controller, timed out): Kafka then
/// answers every topic with that error.
pub async fn delete_topics(broker: &Arc<Broker>, requested: &[Requested]) -> Result<Vec<Outcome>, AdminError> {
    let (_, Plan { mut refused, delete }) = broker
        .metadata
        .write(|image| {
            let plan = plan(image, requested);
            let records: Vec<MetadataRecord> = plan.delete.iter().map(|(id, _)| MetadataRecord::RemoveTopic { id: *id }).collect();
            Ok::<_, AdminError>((records, plan))
        })
        .await?;
    for (id, name) in &delete {
        tracing::info!(topic = %name, topic_id = %id, "topic deleted");
    }
    refused.extend(delete.into_iter().map(|(id, name)| Outcome { name: Some(name), id, result: Ok(()) }));
    Ok(refused)
}

fn refuse(name: Option<&str>, id: TopicId, code: ResponseError, message: &str) -> Outcome {
    Outcome { name: name.map(str::to_string), id, result: Err(AdminError::new(code, message)) }
}

/// Kafka's checks, in its order: shape of each entry, duplicates, ids
/// resolved, then names resolved (a name whose id was also given is refused).
fn plan(image: &MetadataImage, requested: &[Requested]) -> Plan {
    let zero = TopicId::default();
    let mut plan = Plan::default();
    let (mut names, mut ids) = (Vec::new(), Vec::new());
    for r in requested {
        match (&r.name, r.id.is_zero()) {
            (None, true) => {
                plan.refused.push(refuse(None, zero, ResponseError::InvalidRequest, "Neither topic name nor id were specified."))
            }
            (None, false) => ids.push(r.id),
            (Some(name), true) => names.push(name.as_str()),
            (Some(name), false) => plan.refused.push(refuse(
                Some(name),
                r.id,
                ResponseError::InvalidRequest,
                "You may not specify both topic name and topic id.",
            )),
        }
    }
    let (names, duplicate_names) = split_duplicates(names);
    let (ids, mut duplicate_ids) = split_duplicates(ids);
    for name in &duplicate_names {
        plan.refused.push(refuse(Some(name), zero, ResponseError::InvalidRequest, "Duplicate topic name."));
    }
    for id in &duplicate_ids {
        plan.refused.push(refuse(None, *id, ResponseError::InvalidRequest, "Duplicate topic id."));
    }
    // Insertion-ordered id -> name, so results follow the request.
    let mut by_id: Vec<(TopicId, String)> = Vec::new();
    for id in ids {
        match image.topic_by_id(&id) {
            Some(t) => by_id.push((id, t.name.clone())),
            None => plan.refused.push(refuse(None, id, ResponseError::UnknownTopicId, "This server does not host this topic ID.")),
        }
    }
    for name in names {
        let Some(topic) = image.topic(name) else {
            plan.refused.push(refuse(
                Some(name),
                zero,
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            ));
            continue;
        };
        // Kafka's "weird case": the same topic by id and by name. The name is
        // refused and the id dropped without an answer of its own.
        if duplicate_ids.contains(&topic.id) || by_id.iter().any(|(id, _)| *id == topic.id) {
            duplicate_ids.push(topic.id);
            by_id.retain(|(id, _)| *id != topic.id);
            plan.refused.push(refuse(
                Some(name),
                topic.id,
                ResponseError::InvalidRequest,
                "The provided topic name maps to an ID that was already supplied.",
            ));
        } else {
            by_id.push((topic.id, name.to_string()));
        }
    }
    plan.delete = by_id;
    plan
}

/// Splits `items` into those given once (in order) and those given more than once.
fn split_duplicates<T: Eq + std::hash::Hash + Clone>(items: Vec<T>) -> (Vec<T>, Vec<T>) {
    let mut counts: HashMap<T, usize> = HashMap::new();
    for i in &items {
        *counts.entry(i.clone()).or_default() += 1;
    }
    let mut seen = HashSet::new();
    let (once, many): (Vec<T>, Vec<T>) = items.into_iter().filter(|i| seen.insert(i.clone())).partition(|i| counts[i] == 1);
    (once, many)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn image(topics: &[&str]) -> (MetadataImage, Vec<TopicId>) {
        let mut img = MetadataImage::default();
        let ids: Vec<TopicId> = topics.iter().map(|_| TopicId::random()).collect();
        for (name, id) in topics.iter().zip(&ids) {
            img.apply(&MetadataRecord::Topic { name: name.to_string(), id: *id, replicas: vec![vec![1]], configs: BTreeMap::new() });
        }
        (img, ids)
    }

    fn by_name(n: &str) -> Requested {
        Requested { name: Some(n.into()), id: TopicId::default() }
    }

    fn by_id(id: TopicId) -> Requested {
        Requested { name: None, id }
    }

    fn codes(plan: &Plan) -> Vec<(Option<&str>, i16)> {
        plan.refused.iter().map(|o| (o.name.as_deref(), o.result.as_ref().map_err(|e| e.code.code()).unwrap_err())).collect()
    }

    #[test]
    fn names_and_ids_resolve() {
        let (img, ids) = image(&["a", "b", "c"]);
        let p = plan(&img, &[by_name("a"), by_id(ids[1])]);
        assert!(p.refused.is_empty());
        assert_eq!(p.delete, [(ids[1], "b".to_string()), (ids[0], "a".to_string())]);
    }

    #[test]
    fn refusals_follow_kafka() {
        let (img, ids) = image(&["a", "b"]);
        let unknown = TopicId::random();
        let both = Requested { name: Some("a".into()), id: ids[0] };
        let p = plan(&img, &[by_name("x"), by_id(unknown), both, by_id(TopicId::default()), by_name("b"), by_name("b")]);
        let got = codes(&p);
        let invalid = ResponseError::InvalidRequest.code();
        assert!(got.contains(&(Some("x"), ResponseError::UnknownTopicOrPartition.code())));
        assert!(got.contains(&(None, ResponseError::UnknownTopicId.code())));
        assert!(got.contains(&(Some("a"), invalid)), "name and id together");
        assert!(got.contains(&(None, invalid)), "neither name nor id");
        assert_eq!(got.iter().filter(|g| **g == (Some("b"), invalid)).count(), 1, "one answer per duplicated name");
        assert!(p.delete.is_empty());
    }

    #[test]
    fn same_topic_by_name_and_id_is_refused_once() {
        let (img, ids) = image(&["a"]);
        let p = plan(&img, &[by_id(ids[0]), by_name("a")]);
        assert_eq!(codes(&p), [(Some("a"), ResponseError::InvalidRequest.code())]);
        assert!(p.delete.is_empty());
        // Duplicate ids are refused, and their topic is not deleted by name either.
        let p = plan(&img, &[by_id(ids[0]), by_id(ids[0]), by_name("a")]);
        assert_eq!(p.refused.len(), 2);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn split_duplicates_keeps_order() {
        let (once, many) = split_duplicates(vec!["c", "a", "b", "a", "c", "a"]);
        assert_eq!(once, ["b"]);
        assert_eq!(many, ["c", "a"]);
    }
}
