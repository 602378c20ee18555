//! Framing: a 4-byte big-endian size, then the request. The size is checked
//! against `socket.request.max.bytes` before a byte of the body is read, and
//! the header is parsed by hand far enough to know the correlation id before
//! kafka-protocol sees it (its header decoder fails on an unknown API key
//! before reading the correlation id, and slices without a length check:
//! shared/notes/openraft-and-kafka-protocol.md, pitfall 14).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection is closed instead of answered. Kafka closes the socket in
/// each of these cases (`SocketServer.processCompletedReceives`).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: i32, max: i32 },
    #[error("request of {len} bytes is shorter than a request header")]
    ShortHeader { len: usize },
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("malformed request header for api key {api_key} v{api_version}: {detail}")]
    BadHeader { api_key: i16, api_version: i16, detail: String },
    #[error("malformed {api:?} v{version} request body: {detail}")]
    BadBody { api: ApiKey, version: i16, detail: String },
    #[error("encoding response: {0}")]
    Encode(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max_bytes: i32) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    if size > max_bytes {
        return Err(FrameError::TooLarge { size, max: max_bytes });
    }
    let mut body = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut body).await?;
    Ok(Some(body.freeze()))
}

/// A parsed request header and the body after it (a zero-copy slice).
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// Splits a frame into header and body. The body stays a slice of the frame,
/// so record batches decoded from it are not copied.
pub fn parse_request(mut frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::ShortHeader { len: frame.len() });
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey { api_key: raw_key, correlation_id })?;
    // Header v0 is gone in Kafka 4; every request is v1 or v2 (flexible).
    let header_version = api_key.request_header_version(api_version).max(1);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| FrameError::BadHeader {
        api_key: raw_key,
        api_version,
        detail: e.to_string(),
    })?;
    debug_assert_eq!(header.correlation_id, correlation_id);
    Ok(Request { api_key, header, body: frame })
}

/// Decodes a request body at `version`. Bytes after the body are ignored, as
/// Kafka's `AbstractRequest.parseRequest` ignores them (librdkafka's Metadata
/// v13 carries some).
pub fn decode_body<T: Decodable>(api: ApiKey, version: i16, mut body: Bytes) -> Result<T, FrameError> {
    T::decode(&mut body, version).map_err(|e| FrameError::BadBody { api, version, detail: e.to_string() })
}

/// Encodes a whole response frame: size, header (version by the response
/// type, so ApiVersions gets v0 as KIP-511 wants), body.
pub fn encode_response<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, response: &R) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, R::header_version(version)).map_err(|e| FrameError::Encode(e.to_string()))?;
    response.encode(&mut buf, version).map_err(|e| FrameError::Encode(e.to_string()))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(key: i16, version: i16, correlation: i32, rest: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(correlation);
        b.put_slice(rest);
        b.freeze()
    }

    #[test]
    fn short_and_unknown_headers_are_errors_not_panics() {
        for len in 0..8 {
            let f = Bytes::from(vec![0u8; len]);
            assert!(matches!(parse_request(f), Err(FrameError::ShortHeader { .. })));
        }
        let err = parse_request(frame(9999, 0, 77, &[0, 0])).unwrap_err();
        assert!(matches!(err, FrameError::UnknownApiKey { api_key: 9999, correlation_id: 77 }));
        // A client id length that runs past the end.
        let err = parse_request(frame(3, 1, 5, &[0, 50, b'a'])).unwrap_err();
        assert!(matches!(err, FrameError::BadHeader { .. }), "{err}");
    }

    #[test]
    fn header_and_body_split() {
        let r = parse_request(frame(18, 2, 42, &[0, 3, b'c', b'l', b'i', 9, 9])).unwrap();
        assert_eq!(r.api_key, ApiKey::ApiVersions);
        assert_eq!(r.header.correlation_id, 42);
        assert_eq!(r.header.client_id.as_deref(), Some("cli"));
        assert_eq!(&r.body[..], &[9, 9]);
    }

    #[tokio::test]
    async fn frame_sizes_are_capped_before_reading() {
        let mut neg: &[u8] = &(-1i32).to_be_bytes();
        assert!(matches!(read_frame(&mut neg, 100).await, Err(FrameError::NegativeSize { .. })));
        let mut big: &[u8] = &101i32.to_be_bytes();
        assert!(matches!(read_frame(&mut big, 100).await, Err(FrameError::TooLarge { .. })));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 100).await.unwrap().is_none());
        let mut ok: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert_eq!(&read_frame(&mut ok, 100).await.unwrap().unwrap()[..], &[7, 8]);
    }
}
