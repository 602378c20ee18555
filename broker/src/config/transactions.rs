//! The transaction coordinator's settings, under Kafka's names
//! (`TransactionLogConfig`, `TransactionStateManagerConfig`).

/// See the module doc. Each field names its Kafka key.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionConfig {
    /// `transaction.state.log.num.partitions`.
    pub topic_num_partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub topic_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub topic_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub topic_segment_bytes: i32,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// `transaction.partition.verification.enable`.
    pub partition_verification_enable: bool,
}

impl TransactionConfig {
    /// Reads the keys through the broker config's typed getters (values
    /// already checked against their definitions).
    pub(super) fn read(int: impl Fn(&str) -> i32, boolean: impl Fn(&str) -> bool) -> Self {
        Self {
            topic_num_partitions: int("transaction.state.log.num.partitions"),
            topic_replication_factor: i16::try_from(int("transaction.state.log.replication.factor")).unwrap_or(3),
            topic_min_isr: int("transaction.state.log.min.isr"),
            topic_segment_bytes: int("transaction.state.log.segment.bytes"),
            max_timeout_ms: int("transaction.max.timeout.ms"),
            id_expiration_ms: i64::from(int("transactional.id.expiration.ms")),
            abort_timed_out_interval_ms: i64::from(int("transaction.abort.timed.out.transaction.cleanup.interval.ms")),
            remove_expired_interval_ms: i64::from(int("transaction.remove.expired.transaction.cleanup.interval.ms")),
            partition_verification_enable: boolean("transaction.partition.verification.enable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BrokerConfig;
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> TransactionConfig {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BrokerConfig::from_pairs(&pairs).expect("valid config").0.transactions
    }

    #[test]
    fn defaults_are_kafkas() {
        let t = load(&[]);
        assert_eq!((t.topic_num_partitions, t.topic_replication_factor, t.topic_min_isr), (50, 3, 2));
        assert_eq!((t.topic_segment_bytes, t.max_timeout_ms), (104_857_600, 900_000));
        assert_eq!((t.id_expiration_ms, t.abort_timed_out_interval_ms, t.remove_expired_interval_ms), (604_800_000, 10_000, 3_600_000));
        assert!(t.partition_verification_enable);
    }

    #[test]
    fn settings_are_read_and_checked() {
        let t = load(&[
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "500"),
            ("transaction.partition.verification.enable", "false"),
        ]);
        assert_eq!((t.topic_replication_factor, t.abort_timed_out_interval_ms, t.partition_verification_enable), (1, 500, false));
        let bad = [("transaction.max.timeout.ms".to_string(), "0".to_string())];
        assert!(BrokerConfig::from_pairs(&bad).is_err(), "transaction.max.timeout.ms must be at least 1");
    }
}
