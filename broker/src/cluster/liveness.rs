//! The controller's view of which brokers are alive: the last heartbeat of
//! each, in memory only (a new controller gives every broker a full session
//! before fencing it, as Kafka's does). A broker silent for
//! `broker.session.timeout.ms` is fenced: Metadata stops naming it and
//! placement stops using it; its next heartbeat unfences it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;

use super::Cluster;
use crate::metadata::{MetadataError, MetadataRecord};

#[derive(Default)]
pub struct Liveness {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_heard: HashMap<i32, Instant>,
    /// The metadata term this controller started counting in.
    term: u64,
}

impl Liveness {
    pub fn heard(&self, broker: i32) {
        self.state.lock().expect("liveness lock").last_heard.insert(broker, Instant::now());
    }

    /// Brokers to fence now, given the unfenced ones and the controller's term.
    fn expired(&self, term: u64, unfenced: &[i32], session: Duration) -> Vec<i32> {
        let now = Instant::now();
        let mut s = self.state.lock().expect("liveness lock");
        if s.term != term {
            // Just became the controller: everyone gets a full session from
            // now (heartbeats already heard here are kept, not forgotten).
            s.term = term;
            for b in unfenced {
                s.last_heard.insert(*b, now);
            }
        }
        // A broker unfenced in the image but not heard here yet (its
        // registration committed through another controller) starts its
        // session now rather than counting as expired.
        for b in unfenced {
            s.last_heard.entry(*b).or_insert(now);
        }
        unfenced.iter().copied().filter(|b| s.last_heard.get(b).is_some_and(|at| now.duration_since(*at) > session)).collect()
    }
}

/// Runs on every broker; acts only while it is the controller.
pub async fn run(cluster: Arc<Cluster>) {
    let session = Duration::from_millis(cluster.config.cluster.session_timeout_ms);
    let tick = Duration::from_millis((cluster.config.cluster.session_timeout_ms / 4).clamp(100, 1000));
    loop {
        tokio::time::sleep(tick).await;
        if !cluster.metadata.is_controller() {
            continue;
        }
        let term = cluster.metadata.group().raft().metrics().borrow_watched().current_term;
        let image = cluster.metadata.image();
        let unfenced: Vec<i32> = image.live_brokers().map(|b| b.id).collect();
        let expired = cluster.liveness.expired(term, &unfenced, session);
        if expired.is_empty() {
            continue;
        }
        let fenced = cluster
            .metadata
            .write(|image| {
                let records: Vec<MetadataRecord> =
                    expired.iter().filter(|b| image.is_live(**b)).map(|b| MetadataRecord::BrokerFenced { id: *b, fenced: true }).collect();
                Ok::<_, MetadataError>((records, ()))
            })
            .await;
        match fenced {
            Ok(_) => tracing::warn!(brokers = ?expired, "fenced brokers: no heartbeat within broker.session.timeout.ms"),
            Err(e) => tracing::warn!("could not fence {expired:?}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_controller_gives_everyone_a_session() {
        let l = Liveness::default();
        let session = Duration::from_millis(50);
        assert!(l.expired(1, &[1, 2], session).is_empty());
        l.heard(1);
        std::thread::sleep(Duration::from_millis(30));
        l.heard(1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(l.expired(1, &[1, 2], session), vec![2]);
        assert!(l.expired(2, &[1, 2], session).is_empty(), "a new term starts over");
        // A broker heard before the term change and one never heard are both
        // given a session, not fenced at the first tick.
        l.heard(3);
        assert!(l.expired(3, &[1, 2], session).is_empty());
        assert!(l.expired(3, &[1, 2, 3, 4], session).is_empty(), "3 was heard, 4 starts its session now");
    }
}
