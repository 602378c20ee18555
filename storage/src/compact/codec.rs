//! Compression for batches the cleaner rewrites: each codec as Kafka's Java
//! producer writes it, so every client that reads a producer's batches reads
//! a cleaned one (the decoders are in `records.rs`).

use std::io::{self, Write};

use crate::records::Compression;

/// snappy-java's `SnappyOutputStream`: the xerial header (magic, version 1,
/// compatible version 1), then blocks of at most 32 KiB, each a big-endian
/// length and one raw snappy block.
const XERIAL_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// zstd-jni's and Kafka's default level.
const ZSTD_LEVEL: i32 = 3;

/// `records` compressed with `codec` (`None`: as they are).
pub(crate) fn compress(codec: Compression, records: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(records.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(records)?;
            e.finish()
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER.len() + records.len() / 2);
            out.extend_from_slice(&XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK_BYTES) {
                let compressed = encoder.compress_vec(block).map_err(io::Error::other)?;
                let len = i32::try_from(compressed.len()).map_err(io::Error::other)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            // Kafka's `Lz4BlockInputStream` refuses linked blocks; 64 KiB blocks
            // as its `Lz4BlockOutputStream` writes them.
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
            let mut e = FrameEncoder::with_frame_info(info, Vec::new());
            e.write_all(records)?;
            e.finish().map_err(io::Error::other)
        }
        Compression::Zstd => zstd::bulk::compress(records, ZSTD_LEVEL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each codec's output read back by `records.rs`'s decoder, through a
    /// batch, with data large enough for several snappy and lz4 blocks.
    #[test]
    fn every_codec_round_trips_through_the_record_decoder() {
        use crate::batch::build;
        let mut records = Vec::new();
        let n = 3000;
        for i in 0..n {
            // One record: attributes, ts delta, offset delta, key, value, no headers.
            let key = format!("key-{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 50));
            let mut body = vec![0u8];
            put_varint(&mut body, 0);
            put_varint(&mut body, i as i64);
            put_varint(&mut body, key.len() as i64);
            body.extend_from_slice(key.as_bytes());
            put_varint(&mut body, value.len() as i64);
            body.extend_from_slice(value.as_bytes());
            put_varint(&mut body, 0);
            put_varint(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        assert!(records.len() > 2 * XERIAL_BLOCK_BYTES);
        for (codec, id) in
            [(Compression::None, 0), (Compression::Gzip, 1), (Compression::Snappy, 2), (Compression::Lz4, 3), (Compression::Zstd, 4)]
        {
            let payload = compress(codec, &records).unwrap();
            let batch = build(0, 0, id, n as i32 - 1, 0, 0, -1, n as i32, &payload);
            let mut seen = 0;
            crate::records::for_each_record(&batch, 1 << 24, |r| {
                assert_eq!(r.key, Some(format!("key-{seen}").as_bytes()));
                seen += 1;
                std::ops::ControlFlow::Continue(())
            })
            .unwrap_or_else(|e| panic!("{codec}: {e}"));
            assert_eq!(seen, n, "{codec}");
        }
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        super::super::varint::put_varlong(out, v);
    }
}
