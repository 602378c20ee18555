//! Kafka's names for API keys and error codes, as its JMX metrics label them
//! (`request=Produce`, `error=NOT_LEADER_OR_FOLLOWER`).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

/// `Produce`, `Fetch`, … (Kafka's `ApiKeys.name`); the number if unknown.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(()) => key.to_string(),
    }
}

/// `NOT_LEADER_OR_FOLLOWER`, … (Kafka's `Errors.name()`); `UNKNOWN_<code>` if unknown.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(_)) => format!("UNKNOWN_{code}"),
        Some(known) => screaming_snake(&format!("{known:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(-7), "-7");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-12345), "UNKNOWN_-12345");
    }
}
