//! The wire format between two brokers' raft transports. Big-endian, hand
//! written so that what a frame is can be read here; message bodies are
//! openraft's own types in postcard.
//!
//! ```text
//! frame     = length u32 (of what follows) | type u8 | payload
//! HELLO     = magic "FJRT" | version u8 | node id u64
//! DIAL_BACK = magic "FJRT" | version u8 | node id u64 | address length u16 | address (UTF-8)
//! ENVELOPE  = count u32 | message * count
//! message   = kind u8 | topic id [16] | partition i32 | request id u64 | body length u32 | body
//! ```
//!
//! A request kind is an [`Rpc`] code; its answer has the same code with
//! [`RESPONSE_BIT`]; [`FAILURE`] answers any request with a UTF-8 reason.
//! Request ids are per direction of a connection: each side numbers its own
//! requests, and an answer carries the id of the request it answers.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::registry::GroupId;

pub const MAGIC: [u8; 4] = *b"FJRT";
pub const VERSION: u8 = 1;
const FRAME_HELLO: u8 = 1;
const FRAME_ENVELOPE: u8 = 2;
const FRAME_DIAL_BACK: u8 = 3;
/// Bytes of a frame's length prefix and type.
pub const FRAME_HEADER_BYTES: usize = 5;
/// Bytes of a message before its body.
pub const MESSAGE_HEADER_BYTES: usize = 1 + 16 + 4 + 8 + 4;
const HELLO_BYTES: usize = 4 + 1 + 8;
pub const RESPONSE_BIT: u8 = 0x80;
pub const FAILURE: u8 = 0xFF;

/// The RPCs one group sends another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rpc {
    Append = 1,
    Vote = 2,
    PreVote = 3,
    Snapshot = 4,
    TransferLeader = 5,
    /// An AppendEntries from a group's heartbeat client: the same body as
    /// [`Rpc::Append`], but it and its answer may linger for company. Kept
    /// apart because an empty AppendEntries from the replication client
    /// carries a commit index that the next write waits for.
    Heartbeat = 6,
    /// A request for the broker above raft (cluster control: registration,
    /// heartbeats, forwarded metadata writes, leadership moves); the body is
    /// the broker's, opaque here. See [`crate::registry::ControlHandler`].
    Control = 7,
}

impl Rpc {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Rpc::Append,
            2 => Rpc::Vote,
            3 => Rpc::PreVote,
            4 => Rpc::Snapshot,
            5 => Rpc::TransferLeader,
            6 => Rpc::Heartbeat,
            7 => Rpc::Control,
            _ => return None,
        })
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request(Rpc),
    Response(Rpc),
    Failure,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Request(r) => r as u8,
            Kind::Response(r) => r as u8 | RESPONSE_BIT,
            Kind::Failure => FAILURE,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        if code == FAILURE {
            return Some(Kind::Failure);
        }
        let rpc = Rpc::from_code(code & !RESPONSE_BIT)?;
        Some(if code & RESPONSE_BIT != 0 { Kind::Response(rpc) } else { Kind::Request(rpc) })
    }
}

/// A message's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub group: GroupId,
    pub request_id: u64,
}

/// One decoded message; the body still in postcard (or UTF-8 for a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Bytes,
}

/// Why bytes from a peer are not a valid frame. Any of these closes the
/// connection they came on, nothing else.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds raft.transport.max.frame.bytes ({max})")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame type {0}")]
    UnknownFrame(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("truncated frame: {0}")]
    Truncated(&'static str),
    #[error("{0} bytes after the last message of an envelope")]
    Trailing(usize),
    #[error("not a fjord raft peer (magic {0:?})")]
    BadMagic([u8; 4]),
    #[error("unsupported transport version {0}")]
    BadVersion(u8),
    #[error("expected a {0} frame")]
    Unexpected(&'static str),
    #[error("undecodable {what}: {detail}")]
    Body { what: &'static str, detail: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one message (header and body) ready to be put in an envelope.
pub fn encode_message(header: &Header, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(MESSAGE_HEADER_BYTES + body.len());
    b.put_u8(header.kind.code());
    b.put_slice(&header.group.topic_id);
    b.put_i32(header.group.partition);
    b.put_u64(header.request_id);
    b.put_u32(u32::try_from(body.len()).expect("a message body above 4 GiB"));
    b.put_slice(body);
    b.freeze()
}

/// The frame header of an envelope of `count` messages totalling `bytes`.
pub fn envelope_header(count: usize, bytes: usize) -> [u8; FRAME_HEADER_BYTES + 4] {
    let len = u32::try_from(1 + 4 + bytes).expect("envelopes are bounded well below 4 GiB");
    let mut h = [0u8; FRAME_HEADER_BYTES + 4];
    h[..4].copy_from_slice(&len.to_be_bytes());
    h[4] = FRAME_ENVELOPE;
    h[5..].copy_from_slice(&u32::try_from(count).expect("message count").to_be_bytes());
    h
}

/// Splits an envelope's payload (after the frame type) into its messages.
/// The bodies are slices of `payload`, no copy.
pub fn decode_envelope(mut payload: Bytes) -> Result<Vec<Message>, FrameError> {
    if payload.len() < 4 {
        return Err(FrameError::Truncated("envelope count"));
    }
    let count = payload.get_u32() as usize;
    // Every message takes at least its header, so a count the bytes cannot hold is a lie.
    if count > payload.len() / MESSAGE_HEADER_BYTES {
        return Err(FrameError::Truncated("fewer bytes than the message count needs"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if payload.len() < MESSAGE_HEADER_BYTES {
            return Err(FrameError::Truncated("message header"));
        }
        let code = payload.get_u8();
        let kind = Kind::from_code(code).ok_or(FrameError::UnknownKind(code))?;
        let mut topic_id = [0u8; 16];
        payload.copy_to_slice(&mut topic_id);
        let partition = payload.get_i32();
        let request_id = payload.get_u64();
        let len = payload.get_u32() as usize;
        if payload.len() < len {
            return Err(FrameError::Truncated("message body"));
        }
        let body = payload.split_to(len);
        out.push(Message { header: Header { kind, group: GroupId { topic_id, partition }, request_id }, body });
    }
    if !payload.is_empty() {
        return Err(FrameError::Trailing(payload.len()));
    }
    debug_assert_eq!(out.len(), count);
    Ok(out)
}

/// A frame as read: its type's meaning.
#[derive(Debug)]
pub enum Frame {
    Hello {
        node_id: u64,
    },
    /// The sender (a higher id) needs the connection: the receiver should dial `addr`.
    DialBack {
        node_id: u64,
        addr: String,
    },
    Envelope(Vec<Message>),
}

/// The first frame of a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    Hello { node_id: u64 },
    DialBack { node_id: u64, addr: String },
}

/// The largest handshake frame: a dial-back with a long address.
const MAX_HANDSHAKE_BYTES: usize = 1 + HELLO_BYTES + 2 + u16::MAX as usize;

/// Reads one frame of at most `max_bytes` (length prefix excluded).
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max_bytes: usize) -> Result<Frame, FrameError> {
    let len = r.read_u32().await? as usize;
    if len > max_bytes {
        return Err(FrameError::TooLarge { len, max: max_bytes });
    }
    if len == 0 {
        return Err(FrameError::Truncated("frame type"));
    }
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await?;
    let mut buf = buf.freeze();
    match buf.get_u8() {
        FRAME_HELLO => decode_hello(&buf),
        FRAME_DIAL_BACK => decode_dial_back(&buf),
        FRAME_ENVELOPE => Ok(Frame::Envelope(decode_envelope(buf)?)),
        t => Err(FrameError::UnknownFrame(t)),
    }
}

fn decode_dial_back(b: &[u8]) -> Result<Frame, FrameError> {
    let (hello, mut rest) = b.split_at_checked(HELLO_BYTES).ok_or(FrameError::Truncated("dial-back"))?;
    let Frame::Hello { node_id } = decode_hello(hello)? else { unreachable!("decode_hello makes hellos") };
    if rest.len() < 2 {
        return Err(FrameError::Truncated("dial-back address length"));
    }
    let len = rest.get_u16() as usize;
    if rest.len() != len {
        return Err(FrameError::Truncated("dial-back address"));
    }
    let addr =
        String::from_utf8(rest.to_vec()).map_err(|_| FrameError::Body { what: "dial-back", detail: "address is not UTF-8".into() })?;
    Ok(Frame::DialBack { node_id, addr })
}

fn decode_hello(mut b: &[u8]) -> Result<Frame, FrameError> {
    if b.len() != HELLO_BYTES {
        return Err(FrameError::Truncated("hello"));
    }
    let mut magic = [0u8; 4];
    b.copy_to_slice(&mut magic);
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let version = b.get_u8();
    if version != VERSION {
        return Err(FrameError::BadVersion(version));
    }
    Ok(Frame::Hello { node_id: b.get_u64() })
}

/// Writes the handshake frame that names this node.
pub async fn write_hello<W: AsyncWrite + Unpin>(w: &mut W, node_id: u64) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(FRAME_HEADER_BYTES + HELLO_BYTES);
    b.put_u32(1 + HELLO_BYTES as u32);
    b.put_u8(FRAME_HELLO);
    b.put_slice(&MAGIC);
    b.put_u8(VERSION);
    b.put_u64(node_id);
    w.write_all(&b).await?;
    w.flush().await
}

/// Writes the frame that asks a lower-id node to dial this one at `addr`.
pub async fn write_dial_back<W: AsyncWrite + Unpin>(w: &mut W, node_id: u64, addr: &str) -> std::io::Result<()> {
    let len = u16::try_from(addr.len()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "address too long"))?;
    let mut b = Vec::with_capacity(FRAME_HEADER_BYTES + HELLO_BYTES + 2 + addr.len());
    b.put_u32((1 + HELLO_BYTES + 2 + addr.len()) as u32);
    b.put_u8(FRAME_DIAL_BACK);
    b.put_slice(&MAGIC);
    b.put_u8(VERSION);
    b.put_u64(node_id);
    b.put_u16(len);
    b.put_slice(addr.as_bytes());
    w.write_all(&b).await?;
    w.flush().await
}

/// Reads the first frame of a connection.
pub async fn read_handshake<R: AsyncRead + Unpin>(r: &mut R) -> Result<Handshake, FrameError> {
    match read_frame(r, MAX_HANDSHAKE_BYTES).await? {
        Frame::Hello { node_id } => Ok(Handshake::Hello { node_id }),
        Frame::DialBack { node_id, addr } => Ok(Handshake::DialBack { node_id, addr }),
        Frame::Envelope(_) => Err(FrameError::Unexpected("hello")),
    }
}

/// Reads the peer's hello (the answer to ours).
pub async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<u64, FrameError> {
    match read_frame(r, FRAME_HEADER_BYTES + HELLO_BYTES).await? {
        Frame::Hello { node_id } => Ok(node_id),
        _ => Err(FrameError::Unexpected("hello")),
    }
}

/// Encodes a body in postcard.
pub fn encode_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // postcard fails only on types it cannot express (maps with unknown
    // length, `deserialize_any`), which openraft's messages do not use.
    postcard::to_allocvec(value).expect("openraft messages serialize with postcard")
}

/// Decodes a postcard body; `what` names it in the error.
pub fn decode_body<T: serde::de::DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(|e| FrameError::Body { what, detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: Kind, partition: i32, id: u64, body: &[u8]) -> Bytes {
        let group = GroupId { topic_id: [7; 16], partition };
        encode_message(&Header { kind, group, request_id: id }, body)
    }

    fn envelope(messages: &[Bytes]) -> Vec<u8> {
        let bytes: usize = messages.iter().map(|m| m.len()).sum();
        let mut out = envelope_header(messages.len(), bytes).to_vec();
        for m in messages {
            out.extend_from_slice(m);
        }
        out
    }

    async fn read(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, 1 << 20).await
    }

    #[tokio::test]
    async fn envelopes_round_trip() {
        let kinds = [Kind::Request(Rpc::Append), Kind::Response(Rpc::Vote), Kind::Failure, Kind::Request(Rpc::TransferLeader)];
        let msgs: Vec<Bytes> =
            kinds.iter().enumerate().map(|(i, k)| message(*k, i as i32 - 1, i as u64 * 1000, &vec![i as u8; i * 3])).collect();
        let Frame::Envelope(got) = read(&envelope(&msgs)).await.unwrap() else { panic!("not an envelope") };
        assert_eq!(got.len(), 4);
        for (i, (m, k)) in got.iter().zip(kinds).enumerate() {
            assert_eq!((m.header.kind, m.header.group.partition, m.header.request_id), (k, i as i32 - 1, i as u64 * 1000));
            assert_eq!(&m.body[..], &vec![i as u8; i * 3][..]);
        }
        let mut hello = Vec::new();
        write_hello(&mut hello, 42).await.unwrap();
        assert_eq!(read_hello(&mut &hello[..]).await.unwrap(), 42);
        let mut back = Vec::new();
        write_dial_back(&mut back, 7, "10.0.0.1:9093").await.unwrap();
        assert_eq!(read_handshake(&mut &back[..]).await.unwrap(), Handshake::DialBack { node_id: 7, addr: "10.0.0.1:9093".into() });
        for cut in 1..back.len() - 4 {
            let mut f = back[..4 + cut].to_vec();
            f[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            assert!(read_handshake(&mut &f[..]).await.is_err(), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let msgs = [message(Kind::Request(Rpc::Vote), 3, 9, b"body"), message(Kind::Response(Rpc::Append), 4, 10, b"")];
        let good = envelope(&msgs);
        for cut in 0..good.len() {
            // A cut frame with its length fixed up, so the parser, not the reader, sees the cut.
            let mut f = good[..cut.max(4)].to_vec();
            let len = (f.len() - 4) as u32;
            f[..4].copy_from_slice(&len.to_be_bytes());
            assert!(read(&f).await.is_err() || cut == good.len(), "cut at {cut}");
        }
        for i in 4..good.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut f = good.clone();
                f[i] ^= flip;
                let _ = read(&f).await; // must not panic
            }
        }
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read(&huge).await, Err(FrameError::TooLarge { .. })));
        let mut bad_kind = good.clone();
        bad_kind[9] = 0x42;
        assert!(matches!(read(&bad_kind).await, Err(FrameError::UnknownKind(0x42))));
        let mut bad_magic = Vec::new();
        write_hello(&mut bad_magic, 1).await.unwrap();
        bad_magic[5] = b'X';
        assert!(matches!(read_hello(&mut &bad_magic[..]).await, Err(FrameError::BadMagic(_))));
    }
}
