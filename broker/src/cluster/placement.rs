//! Replica placement for new partitions, rack-aware as Kafka's
//! `StripedReplicaPlacer`: brokers are listed alternating between racks
//! (rack 1's first, rack 2's first, ..., rack 1's second, ...), each
//! partition's replicas are taken from that list starting one further per
//! partition, and a replica goes to a rack the partition does not use yet
//! while one is left. With one broker per availability zone (MSK's layout)
//! every partition has one replica in each zone, and leaders (the first
//! replica) rotate over all brokers.

use std::collections::BTreeMap;

/// Replica lists for `count` partitions of `rf` replicas each over
/// `brokers` (id, rack), starting the rotation at `start`. The caller has
/// checked `rf <= brokers.len()`.
pub fn place(brokers: &[(i32, Option<String>)], count: usize, rf: usize, start: usize) -> Vec<Vec<i32>> {
    assert!(rf <= brokers.len() && rf > 0, "placement of {rf} replicas over {} brokers", brokers.len());
    let striped = stripe(brokers);
    let n = striped.len();
    let rack_of: BTreeMap<i32, Option<String>> = brokers.iter().cloned().collect();
    (0..count)
        .map(|p| {
            let first = (start + p) % n;
            let mut replicas: Vec<i32> = Vec::with_capacity(rf);
            let mut racks: Vec<&Option<String>> = Vec::new();
            // Pass 1 takes brokers on racks not used yet; pass 2 fills up.
            for pass in 0..2 {
                for k in 0..n {
                    if replicas.len() == rf {
                        break;
                    }
                    let b = striped[(first + k) % n];
                    let rack = &rack_of[&b];
                    if replicas.contains(&b) || (pass == 0 && racks.contains(&rack)) {
                        continue;
                    }
                    replicas.push(b);
                    racks.push(rack);
                }
            }
            debug_assert_eq!(replicas.len(), rf);
            replicas
        })
        .collect()
}

/// Brokers ordered alternating between racks (racks and brokers by id).
fn stripe(brokers: &[(i32, Option<String>)]) -> Vec<i32> {
    let mut by_rack: BTreeMap<&Option<String>, Vec<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack).or_default().push(*id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()).collect::<Vec<_>>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn one_replica_per_rack_and_leaders_rotate() {
        let brokers = vec![(1, rack("az1")), (2, rack("az2")), (3, rack("az3")), (4, rack("az1")), (5, rack("az2")), (6, rack("az3"))];
        let placed = place(&brokers, 12, 3, 0);
        for replicas in &placed {
            let mut racks: Vec<_> = replicas.iter().map(|b| brokers.iter().find(|x| x.0 == *b).unwrap().1.clone()).collect();
            racks.sort();
            racks.dedup();
            assert_eq!(racks.len(), 3, "{replicas:?} spans three racks");
        }
        let mut leaders: Vec<i32> = placed.iter().map(|r| r[0]).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6], "each broker leads as many");
    }

    #[test]
    fn fewer_racks_than_replicas_still_places_all() {
        let brokers = vec![(1, rack("a")), (2, rack("a")), (3, rack("b"))];
        for replicas in place(&brokers, 6, 3, 1) {
            let mut r = replicas.clone();
            r.sort_unstable();
            assert_eq!(r, vec![1, 2, 3]);
        }
        let no_racks = vec![(7, None), (8, None)];
        assert_eq!(place(&no_racks, 2, 2, 0), vec![vec![7, 8], vec![8, 7]]);
    }
}
