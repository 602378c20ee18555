//! Java `.properties` text, as `java.util.Properties.load` reads Kafka's
//! `server.properties`: `#`/`!` comment lines, `key=value`, `key: value` and
//! `key value`, backslash line continuations and escapes (`\t`, `\n`, `\r`,
//! `\f`, `\uXXXX`; any other escaped character stands for itself, so `\=`,
//! `\:`, `\ ` and `\\` keep a separator, a space or a backslash in a key).
//!
//! One deviation, on purpose: trailing unescaped whitespace of a value is
//! dropped (Java keeps it; Kafka trims every value it parses anyway).
//! Called once at startup by [`crate::config::BrokerConfig::load`].

use std::collections::HashMap;

/// Why a properties text was refused; `line` is 1-based, the line where the
/// offending entry starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PropertiesError {
    pub line: usize,
    pub message: String,
}

/// Parses `text` into `(key, value)` pairs in the order keys first appear; a
/// key given twice keeps the later value, as `Properties.load` does.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (line, logical) in logical_lines(text) {
        let (key, value) = split_entry(&logical);
        let key = unescape(key).map_err(|message| PropertiesError { line, message })?;
        let value = unescape(value).map_err(|message| PropertiesError { line, message })?;
        match index.get(&key) {
            Some(&i) => pairs[i].1 = value,
            None => {
                index.insert(key.clone(), pairs.len());
                pairs.push((key, value));
            }
        }
    }
    debug_assert_eq!(index.len(), pairs.len());
    Ok(pairs)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Natural lines end at `\n`, `\r\n` or `\r`.
fn natural_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\n', '\r']) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                (!s.is_empty()).then_some(s)
            }
        }
    })
}

/// Joins continued lines, skipping comments and blank lines. Each logical
/// line comes with the number of the natural line it starts on. Escapes are
/// left in place: the key/value split must still see them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in natural_lines(text).enumerate() {
        let line = raw.trim_start_matches(is_blank);
        let (start, mut buf) = match current.take() {
            Some(open) => open,
            None => {
                // A comment line is never continued, even if it ends in a backslash.
                if line.is_empty() || line.starts_with(['#', '!']) {
                    continue;
                }
                (i + 1, String::new())
            }
        };
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            buf.push_str(&line[..line.len() - 1]);
            current = Some((start, buf));
        } else {
            buf.push_str(line);
            out.push((start, buf));
        }
    }
    // A backslash on the last line continues into nothing.
    out.extend(current);
    out
}

/// Splits a logical line at the first unescaped `=`, `:` or blank, as
/// `Properties.load0` does; blanks and at most one separator after the key
/// are skipped.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            (key_end, value_start, has_separator) = (i, i + 1, true);
            break;
        }
        if !escaped && is_blank(c) {
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let mut value = &line[value_start..];
    loop {
        value = value.trim_start_matches(is_blank);
        match value.strip_prefix(['=', ':']) {
            Some(rest) if !has_separator => {
                has_separator = true;
                value = rest;
            }
            _ => break,
        }
    }
    (&line[..key_end], value)
}

/// Resolves escapes and drops trailing unescaped blanks.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    // Length of `out` up to the last character that must survive trimming.
    let mut keep = 0;
    let mut units: Vec<u16> = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_units(&mut units, &mut out, true);
            out.push(c);
            if !is_blank(c) {
                keep = out.len();
            }
            continue;
        }
        let Some(e) = chars.next() else { break };
        if e == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            match (hex.len(), u16::from_str_radix(&hex, 16)) {
                (4, Ok(unit)) if hex.chars().all(|h| h.is_ascii_hexdigit()) => units.push(unit),
                _ => return Err(format!("malformed \\uxxxx encoding: \\u{hex}")),
            }
            flush_units(&mut units, &mut out, false);
        } else {
            flush_units(&mut units, &mut out, true);
            out.push(match e {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\u{c}',
                other => other,
            });
        }
        keep = out.len();
    }
    flush_units(&mut units, &mut out, true);
    keep = keep.max(out.trim_end_matches(is_blank).len());
    out.truncate(keep);
    Ok(out)
}

/// `\uXXXX` escapes are UTF-16 code units: a surrogate pair spelled as two
/// escapes is one character. Unless `force`d, a high surrogate waits for its
/// partner; a lone one becomes U+FFFD (Java keeps it, a Rust string cannot).
fn flush_units(units: &mut Vec<u16>, out: &mut String, force: bool) {
    if !force && units.len() == 1 && (0xD800..0xDC00).contains(&units[0]) {
        return;
    }
    out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, String) {
        let mut pairs = parse(text).unwrap();
        assert_eq!(pairs.len(), 1, "{text:?} -> {pairs:?}");
        pairs.remove(0)
    }

    #[test]
    fn separators_and_whitespace() {
        let cases = [
            ("a=b", "a", "b"),
            ("a = b", "a", "b"),
            ("  a:b  ", "a", "b"),
            ("a: b", "a", "b"),
            ("a b", "a", "b"),
            ("a\t\tb c", "a", "b c"),
            ("a =: b", "a", ": b"),
            ("a  = =b", "a", "=b"),
            ("a", "a", ""),
            ("a=", "a", ""),
            ("=b", "", "b"),
            ("listeners=PLAINTEXT://:9092", "listeners", "PLAINTEXT://:9092"),
        ];
        for (text, k, v) in cases {
            assert_eq!(one(text), (k.to_string(), v.to_string()), "{text:?}");
        }
    }

    #[test]
    fn escapes() {
        let cases = [
            (r"a\=b=c", "a=b", "c"),
            (r"a\:b:c", "a:b", "c"),
            (r"a\ b c", "a b", "c"),
            (r"k=tab\there", "k", "tab\there"),
            (r"k=line\nbreak\r\f", "k", "line\nbreak\r\u{c}"),
            (r"k=\u00e9t\u00C9", "k", "étÉ"),
            (r"k=\ud83d\ude00", "k", "😀"),
            (r"k=back\\slash", "k", r"back\slash"),
            (r"k=\q", "k", "q"),
            (r"k=trailing\ ", "k", "trailing "),
            ("k=é ü", "k", "é ü"),
        ];
        for (text, k, v) in cases {
            assert_eq!(one(text), (k.to_string(), v.to_string()), "{text:?}");
        }
    }

    #[test]
    fn comments_blank_lines_and_continuations() {
        let text = "# comment\n! also a comment\n\n   \na=1\n  b = two \\\n      parts\nc=x\\\\\nd=3\\\r\n4\r\n#e=5\\\nf=6\n";
        let pairs = parse(text).unwrap();
        let want = [("a", "1"), ("b", "two parts"), ("c", r"x\"), ("d", "34"), ("f", "6")];
        let got: Vec<_> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn continuation_lines_are_not_comments_and_eof_continuation_ends() {
        let pairs = parse("a=1,\\\n  #2\nb=\\").unwrap();
        assert_eq!(pairs, [("a".to_string(), "1,#2".to_string()), ("b".to_string(), String::new())]);
    }

    #[test]
    fn later_keys_override_earlier_ones_in_place() {
        let pairs = parse("a=1\nb=2\na=3\n").unwrap();
        assert_eq!(pairs, [("a".to_string(), "3".to_string()), ("b".to_string(), "2".to_string())]);
    }

    #[test]
    fn malformed_unicode_escape_names_the_line() {
        for (text, line) in [("a=1\n\nb=\\u12", 3), ("x\\uZZZZ=1", 1), ("a=1\nb=2 \\\n  \\u00g1", 2)] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().starts_with(&format!("line {line}: malformed")), "{err}");
        }
    }
}
