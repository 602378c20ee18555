//! The topics of a consumer-protocol subscription (`ConsumerProtocolSubscription`,
//! not flexible in any version): OffsetDelete refuses to delete offsets of a
//! topic the group still consumes, and expiry keeps them.

use bytes::Buf;

/// The subscribed topic names, or None when the bytes do not parse.
pub fn topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    if buf.remaining() < 6 {
        return None;
    }
    let version = buf.get_i16();
    let count = buf.get_i32();
    if version < 0 || count < 0 {
        return None;
    }
    let mut topics = Vec::new();
    for _ in 0..count {
        if buf.remaining() < 2 {
            return None;
        }
        let len = buf.get_i16();
        let len = usize::try_from(len).ok().filter(|l| *l <= buf.remaining())?;
        topics.push(String::from_utf8(buf[..len].to_vec()).ok()?);
        buf.advance(len);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    fn encode(version: i16, topics: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(version);
        b.put_i32(topics.len() as i32);
        for t in topics {
            b.put_i16(t.len() as i16);
            b.put_slice(t.as_bytes());
        }
        b.put_i32(-1); // user data, null
        b
    }

    #[test]
    fn reads_topics_of_any_version_and_refuses_garbage() {
        assert_eq!(topics(&encode(3, &["a", "bb"])), Some(vec!["a".to_string(), "bb".to_string()]));
        assert_eq!(topics(&encode(0, &[])), Some(vec![]));
        let good = encode(1, &["orders"]);
        for cut in 0..8 {
            assert_eq!(topics(&good[..cut]), None, "cut at {cut}");
        }
        assert_eq!(topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None, "a count larger than the bytes");
    }
}
