//! Kafka's zigzag varints (`ByteUtils`), for the few record fields the
//! cleaner rewrites. Reading is only done on records `records.rs` has
//! already decoded, so a failure here means a bug, reported as `None`.

pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads a zigzag varlong from the front of `b`: its value and length.
pub(crate) fn read_varlong(b: &[u8]) -> Option<(i64, usize)> {
    let mut raw = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, 300, -300, i64::from(i32::MAX), i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(read_varlong(&b), Some((v, b.len())), "{v}");
        }
        assert_eq!(read_varlong(&[0x80]), None);
    }
}
