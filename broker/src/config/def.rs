//! Config definitions and value parsing, after Kafka's `ConfigDef`: a name,
//! a type, a default and a validator per config, and the same parse rules
//! (values trimmed, booleans case-insensitive, lists split at commas).
//!
//! Shared by the broker table ([`crate::config::broker_defs`]) and the topic
//! table ([`crate::config::topic`]); static data, no lifecycle.

use super::describe::ConfigType;

/// How a value is checked once it parses (Kafka's `ConfigDef.Validator`s we need).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    None,
    /// `Range.atLeast`.
    AtLeast(i64),
    /// `Range.between`, bounds included.
    Between(i64, i64),
    /// `ValidString.in`, case-sensitive as Kafka's.
    OneOf(&'static [&'static str]),
    /// `ValidList.in`: every element must be one of these.
    ListOf(&'static [&'static str]),
    /// `CompressionType.GZIP.levelValidator`: 1..=9 or -1.
    GzipLevel,
    /// `ThrottledReplicaListValidator`: `*` or `partition:broker,...`.
    ThrottledReplicas,
}

/// One config: Kafka's name, type, default (`None` = Kafka's null) and check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Def {
    pub name: &'static str,
    pub ty: ConfigType,
    pub default: Option<&'static str>,
    pub check: Check,
    pub doc: &'static str,
}

/// A parsed value. Int, Short and Long all live in `Int`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    List(Vec<String>),
}

/// Why a value was refused: `shown` is the value as Kafka prints it in its
/// message (the parsed value for a range error, the raw text otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub shown: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    NotANumber(ConfigType),
    /// A number, but too large for the type; Kafka says "Not a number" for this too.
    OutOfRange(ConfigType),
    NotABoolean,
    AtLeast(String),
    AtMost(String),
    OneOf(&'static [&'static str]),
    /// A message of Kafka's own, used as is in both styles.
    Other(String),
}

impl Reason {
    /// Kafka's wording, for INVALID_CONFIG messages.
    pub fn kafka(&self) -> String {
        match self {
            Reason::NotANumber(ty) | Reason::OutOfRange(ty) => format!("Not a number of type {}", ty.kafka_name()),
            Reason::NotABoolean => "Expected value to be either true or false".into(),
            Reason::AtLeast(min) => format!("Value must be at least {min}"),
            Reason::AtMost(max) => format!("Value must be no more than {max}"),
            Reason::OneOf(valid) => format!("String must be one of: {}", valid.join(", ")),
            Reason::Other(m) => m.clone(),
        }
    }

    /// Fjord's lowercase wording, for startup errors.
    pub fn short(&self) -> String {
        match self {
            Reason::NotANumber(_) => "not a number".into(),
            Reason::OutOfRange(ConfigType::Short) => "out of range for a 16-bit integer".into(),
            Reason::OutOfRange(ConfigType::Int) => "out of range for a 32-bit integer".into(),
            Reason::OutOfRange(_) => "out of range for a 64-bit integer".into(),
            Reason::NotABoolean => "expected true or false".into(),
            Reason::AtLeast(min) => format!("must be at least {min}"),
            Reason::AtMost(max) => format!("must be at most {max}"),
            Reason::OneOf(valid) => format!("must be one of: {}", valid.join(", ")),
            Reason::Other(m) => m.clone(),
        }
    }
}

impl Def {
    /// Parses and checks `raw` as Kafka's `ConfigDef.parseType` plus the validator would.
    pub fn parse(&self, raw: &str) -> Result<Value, Rejected> {
        let value = parse_type(self.ty, raw)?;
        self.check_value(&value)?;
        Ok(value)
    }

    /// The default as a parsed value; `None` for Kafka's null default.
    pub fn default_value(&self) -> Option<Value> {
        let parsed = self.default.map(|d| parse_type(self.ty, d));
        debug_assert!(!matches!(parsed, Some(Err(_))), "default of {} does not parse", self.name);
        parsed.and_then(Result::ok)
    }

    fn check_value(&self, value: &Value) -> Result<(), Rejected> {
        let refuse = |shown: String, reason| Err(Rejected { shown, reason });
        match (self.check, value) {
            (Check::None, _) => Ok(()),
            (Check::AtLeast(min), Value::Int(v)) if *v < min => refuse(v.to_string(), Reason::AtLeast(min.to_string())),
            (Check::Between(min, _), Value::Int(v)) if *v < min => refuse(v.to_string(), Reason::AtLeast(min.to_string())),
            (Check::Between(_, max), Value::Int(v)) if *v > max => refuse(v.to_string(), Reason::AtMost(max.to_string())),
            // NaN passes Kafka's comparisons; it is no ratio, so it is refused here.
            (Check::Between(min, _), Value::Double(v)) if v.is_nan() || *v < min as f64 => {
                refuse(java_double(*v), Reason::AtLeast(min.to_string()))
            }
            (Check::Between(_, max), Value::Double(v)) if *v > max as f64 => refuse(java_double(*v), Reason::AtMost(max.to_string())),
            (Check::OneOf(valid), Value::Str(s)) if !valid.contains(&s.as_str()) => refuse(s.clone(), Reason::OneOf(valid)),
            (Check::ListOf(valid), Value::List(items)) => match items.iter().find(|i| !valid.contains(&i.as_str())) {
                Some(bad) => refuse(bad.clone(), Reason::OneOf(valid)),
                None => Ok(()),
            },
            (Check::GzipLevel, Value::Int(v)) if *v != -1 && !(1..=9).contains(v) => {
                refuse(v.to_string(), Reason::Other("Value must be between 1 and 9 or equal to -1".into()))
            }
            (Check::ThrottledReplicas, Value::List(items)) if !valid_throttled_replicas(items) => refuse(
                format!("[{}]", items.join(", ")),
                Reason::Other(format!(
                    "{} must be the literal '*' or a list of replicas in the following format: \
                     [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                    self.name
                )),
            ),
            _ => Ok(()),
        }
    }
}

fn valid_throttled_replicas(items: &[String]) -> bool {
    let replica = |s: &str| {
        s.is_empty()
            || s.split_once(':').is_some_and(|(p, b)| [p, b].iter().all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())))
    };
    items.concat() == "*" || items.iter().all(|s| replica(s))
}

/// `ConfigDef.parseType` for the types we define.
pub(crate) fn parse_type(ty: ConfigType, raw: &str) -> Result<Value, Rejected> {
    let t = raw.trim();
    let not_a_number = || {
        let too_big = t.parse::<i128>().is_ok();
        Rejected { shown: raw.to_string(), reason: if too_big { Reason::OutOfRange(ty) } else { Reason::NotANumber(ty) } }
    };
    match ty {
        ConfigType::Boolean if t.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        ConfigType::Boolean if t.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        ConfigType::Boolean => Err(Rejected { shown: raw.to_string(), reason: Reason::NotABoolean }),
        ConfigType::Short => t.parse::<i16>().map(|v| Value::Int(v.into())).map_err(|_| not_a_number()),
        ConfigType::Int => t.parse::<i32>().map(|v| Value::Int(v.into())).map_err(|_| not_a_number()),
        ConfigType::Long => t.parse::<i64>().map(Value::Int).map_err(|_| not_a_number()),
        ConfigType::Double => parse_java_double(t).map(Value::Double).ok_or_else(not_a_number),
        ConfigType::List if t.is_empty() => Ok(Value::List(Vec::new())),
        ConfigType::List => Ok(Value::List(t.split(',').map(|s| s.trim().to_string()).collect())),
        ConfigType::String | ConfigType::Class | ConfigType::Password | ConfigType::Unknown => Ok(Value::Str(t.to_string())),
    }
}

/// `Double.parseDouble` accepts a trailing `d`/`f` type suffix and `Infinity`.
fn parse_java_double(t: &str) -> Option<f64> {
    let body = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    match body.trim_start_matches(['+', '-']) {
        "Infinity" | "NaN" => {}
        b if b.is_empty() || !b.starts_with(|c: char| c.is_ascii_digit() || c == '.') => return None,
        _ => {}
    }
    body.parse().ok()
}

impl Value {
    /// The value as DescribeConfigs shows it (`ConfigDef.convertToString`).
    pub fn to_kafka_string(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => java_double(*d),
            Value::Str(s) => s.clone(),
            Value::List(items) => items.join(","),
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// `Double.toString`: `1.0`, `0.5`, `1.0E-5`, `1.0E7`.
pub(crate) fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let abs = d.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = d.to_string();
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{d:E}");
    match s.split_once('E') {
        Some((mantissa, exp)) if !mantissa.contains('.') => format!("{mantissa}.0E{exp}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn def(ty: ConfigType, check: Check) -> Def {
        Def { name: "x.y", ty, default: None, check, doc: "" }
    }

    #[test]
    fn parse_and_check_like_kafka() {
        let policy = def(ConfigType::List, Check::ListOf(&["compact", "delete"]));
        let ok = [
            (def(ConfigType::Int, Check::AtLeast(1)), " 7 ", Value::Int(7)),
            (def(ConfigType::Long, Check::None), "-9223372036854775808", Value::Int(i64::MIN)),
            (def(ConfigType::Boolean, Check::None), " TRUE", Value::Bool(true)),
            (def(ConfigType::Double, Check::Between(0, 1)), "0.25", Value::Double(0.25)),
            (def(ConfigType::Double, Check::Between(0, 1)), "1", Value::Double(1.0)),
            (policy, "delete, compact", Value::List(vec!["delete".into(), "compact".into()])),
            (policy, "  ", Value::List(vec![])),
            (def(ConfigType::Int, Check::GzipLevel), "-1", Value::Int(-1)),
            (def(ConfigType::List, Check::ThrottledReplicas), "*", Value::List(vec!["*".into()])),
            (def(ConfigType::List, Check::ThrottledReplicas), "0:1, 1:2", Value::List(vec!["0:1".into(), "1:2".into()])),
        ];
        for (d, raw, want) in ok {
            assert_eq!(d.parse(raw), Ok(want), "{raw:?}");
        }
        let bad = [
            (def(ConfigType::Int, Check::None), "abc", "Invalid value abc for configuration x.y: Not a number of type INT"),
            (def(ConfigType::Int, Check::None), "2147483648", "Invalid value 2147483648 for configuration x.y: Not a number of type INT"),
            (def(ConfigType::Long, Check::AtLeast(-1)), "-2", "Invalid value -2 for configuration x.y: Value must be at least -1"),
            (def(ConfigType::Int, Check::Between(1, 17)), "18", "Invalid value 18 for configuration x.y: Value must be no more than 17"),
            (
                def(ConfigType::Boolean, Check::None),
                "yes",
                "Invalid value yes for configuration x.y: Expected value to be either true or false",
            ),
            (def(ConfigType::Double, Check::Between(0, 1)), "1.5", "Invalid value 1.5 for configuration x.y: Value must be no more than 1"),
            (def(ConfigType::Double, Check::None), "0x1", "Invalid value 0x1 for configuration x.y: Not a number of type DOUBLE"),
            (policy, "delete,Compact", "Invalid value Compact for configuration x.y: String must be one of: compact, delete"),
            (policy, "delete,", "Invalid value  for configuration x.y: String must be one of: compact, delete"),
            (
                def(ConfigType::Int, Check::GzipLevel),
                "0",
                "Invalid value 0 for configuration x.y: Value must be between 1 and 9 or equal to -1",
            ),
        ];
        for (d, raw, want) in bad {
            let r = d.parse(raw).unwrap_err();
            assert_eq!(format!("Invalid value {} for configuration {}: {}", r.shown, d.name, r.reason.kafka()), want);
        }
        assert!(def(ConfigType::List, Check::ThrottledReplicas).parse("0:a").is_err());
        assert!(def(ConfigType::List, Check::ThrottledReplicas).parse("*,0:1").is_err());
    }

    #[test]
    fn values_print_as_kafka_prints_them() {
        let cases = [
            (Value::Double(0.5), "0.5"),
            (Value::Double(1.0), "1.0"),
            (Value::Double(0.0), "0.0"),
            (Value::Double(1e-5), "1.0E-5"),
            (Value::Double(1.5e7), "1.5E7"),
            (Value::Int(-1), "-1"),
            (Value::Bool(false), "false"),
            (Value::List(vec!["delete".into(), "compact".into()]), "delete,compact"),
            (Value::List(vec![]), ""),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_kafka_string(), want);
        }
        assert_eq!(parse_java_double("2.5d"), Some(2.5));
        assert_eq!(parse_java_double("inf"), None);
    }
}
