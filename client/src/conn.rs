//! One TCP connection to one broker, with requests pipelined on it.
//!
//! A [`Connection`] is shared (`Arc`) by every task that talks to that broker.
//! Callers encode their request into one buffer in their own task and hand it
//! to the connection's writer task; the reader task reads response frames and
//! routes each, by correlation id, to the caller waiting for it, which decodes
//! it in its own task. So encoding and decoding run on the callers' threads and
//! the two I/O tasks only move bytes. Kafka answers the requests of one
//! connection in the order it received them, which is what lets many be in
//! flight at once (`max.in.flight.requests.per.connection`).
//!
//! The connection lives until it is dropped, [`Connection::close`]d, or fails;
//! a failure fails every request waiting on it and every later one, and the
//! owner ([`crate::cluster::Cluster`]) opens a new one on the next use.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::error::{ClientError, Result};

/// The largest response frame accepted. Kafka's fetch.max.bytes defaults to
/// 50 MiB; anything past twice that is a corrupt size prefix, not a response.
pub const MAX_RESPONSE_BYTES: usize = 100 << 20;

/// Frames encoded but not yet written; callers wait (backpressure) past this.
const WRITE_QUEUE_FRAMES: usize = 64;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// ApiVersions v3 is the first flexible version, and the one every broker
/// since Kafka 2.4 answers; Kafka 4 and fjord serve 0..=4.
const API_VERSIONS_VERSION: i16 = 3;

/// A request this client can send: kafka-protocol's own `Request` trait exists
/// only with its `broker` feature (it also wants requests decodable), which a
/// client has no use for.
pub trait ApiRequest: Encodable + HeaderVersion {
    const KEY: ApiKey;
    type Response: Decodable + HeaderVersion;
}

macro_rules! api_requests {
    ($($key:ident: $req:ty => $resp:ty),* $(,)?) => {
        $(impl ApiRequest for $req {
            const KEY: ApiKey = ApiKey::$key;
            type Response = $resp;
        })*

        /// Names for `ClientError::Unsupported`.
        fn api_name(key: ApiKey) -> &'static str {
            match key {
                $(ApiKey::$key => stringify!($key),)*
                _ => "this API",
            }
        }
    };
}

api_requests! {
    ApiVersions: ApiVersionsRequest => ApiVersionsResponse,
    Metadata: MetadataRequest => MetadataResponse,
    Produce: ProduceRequest => ProduceResponse,
    Fetch: FetchRequest => FetchResponse,
    ListOffsets: ListOffsetsRequest => ListOffsetsResponse,
    CreateTopics: CreateTopicsRequest => CreateTopicsResponse,
    DeleteTopics: DeleteTopicsRequest => DeleteTopicsResponse,
    CreatePartitions: CreatePartitionsRequest => CreatePartitionsResponse,
    DescribeConfigs: DescribeConfigsRequest => DescribeConfigsResponse,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse,
    DescribeCluster: DescribeClusterRequest => DescribeClusterResponse,
    FindCoordinator: FindCoordinatorRequest => FindCoordinatorResponse,
    OffsetCommit: OffsetCommitRequest => OffsetCommitResponse,
    OffsetFetch: OffsetFetchRequest => OffsetFetchResponse,
    InitProducerId: InitProducerIdRequest => InitProducerIdResponse,
}

/// Why a connection stopped, kept so that every request that finds it closed
/// gets the same story.
#[derive(Clone, Debug)]
enum Cause {
    Eof,
    Io(std::io::ErrorKind, String),
    Protocol(String),
    Local,
}

impl Cause {
    fn error(&self, addr: &str) -> ClientError {
        let addr = addr.to_string();
        match self {
            Cause::Eof | Cause::Local => ClientError::Closed { addr },
            Cause::Io(kind, msg) => ClientError::Io { addr, source: std::io::Error::new(*kind, msg.clone()) },
            Cause::Protocol(detail) => ClientError::Protocol { addr, detail: detail.clone() },
        }
    }
}

#[derive(Default)]
struct Pending {
    /// Requests written or being written, by correlation id. A caller that
    /// stopped waiting leaves its entry: the answer is then read and dropped,
    /// which tells a late answer apart from a correlation id the broker made up.
    waiters: HashMap<i32, oneshot::Sender<Bytes>>,
    closed: Option<Cause>,
}

/// What the I/O tasks and the callers share.
struct Shared {
    addr: String,
    pending: Mutex<Pending>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves only a map of senders behind; keep going.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed, fails everything waiting (dropping a
    /// waiter's sender wakes it with the closed error) and stops both tasks.
    fn close(&self, cause: Cause) {
        let waiters = {
            let mut p = self.lock();
            if p.closed.is_none() {
                p.closed = Some(cause);
            }
            std::mem::take(&mut p.waiters)
        };
        drop(waiters);
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    fn closed_error(&self) -> ClientError {
        self.lock().closed.clone().unwrap_or(Cause::Local).error(&self.addr)
    }
}

/// One connection to one broker; see the module doc. Shared by `Arc`; every
/// method takes `&self` and may be called from any task.
pub struct Connection {
    shared: Arc<Shared>,
    client_id: StrBytes,
    next_correlation_id: AtomicI32,
    writer: mpsc::Sender<Bytes>,
    /// The broker's ApiVersions answer: api key -> (min, max).
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Opens a connection, starts its I/O tasks and asks the broker which API
    /// versions it serves.
    pub async fn connect(addr: &str, client_id: &str) -> Result<Arc<Connection>> {
        let connect_err = |source| ClientError::Connect { addr: addr.to_string(), source };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(s) => s.map_err(connect_err)?,
            Err(_) => return Err(connect_err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))),
        };
        // Produce and fetch requests are written whole; Nagle would only hold back the last segment.
        stream.set_nodelay(true).map_err(connect_err)?;
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared { addr: addr.to_string(), pending: Mutex::default(), tasks: Mutex::default() });
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_FRAMES);
        let reader = tokio::spawn(read_loop(shared.clone(), read)).abort_handle();
        let writer = tokio::spawn(write_loop(shared.clone(), write, rx)).abort_handle();
        shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend([reader, writer]);
        let mut conn = Connection {
            shared,
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation_id: AtomicI32::new(0),
            writer: tx,
            versions: HashMap::new(),
        };
        conn.versions = conn.api_versions().await?;
        Ok(Arc::new(conn))
    }

    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        // Kafka checks these against [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? and
        // refuses an empty name with INVALID_REQUEST.
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("fjord-bench"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = self.call(req, API_VERSIONS_VERSION).await?;
        if resp.error_code != 0 {
            let err = ClientError::from_code(resp.error_code, format!("ApiVersions to {}", self.addr()));
            self.close();
            return Err(err);
        }
        Ok(resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect())
    }

    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection failed or was closed; a closed one stays closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Closes the connection: every request waiting on it fails with `Closed`.
    /// Used after a request timed out, since its answer may still come and the
    /// broker may be stuck (the Java client disconnects the same way).
    pub fn close(&self) {
        self.shared.close(Cause::Local);
    }

    /// Highest version of `api_key` both sides support, or ClientError::Unsupported.
    pub fn version(&self, api_key: ApiKey, ours: RangeInclusive<i16>) -> Result<i16> {
        let unsupported = || ClientError::Unsupported { addr: self.addr().to_string(), api: api_name(api_key) };
        let &(min, max) = self.versions.get(&(api_key as i16)).ok_or_else(unsupported)?;
        let best = max.min(*ours.end());
        if best < min.max(*ours.start()) { Err(unsupported()) } else { Ok(best) }
    }

    /// Sends one request and waits for its response (pipelined with others).
    /// Never for a Produce with acks=0, which has no response: see
    /// [`Connection::send_no_response`].
    pub async fn call<R: ApiRequest>(&self, req: R, version: i16) -> Result<R::Response> {
        self.send(req, version).await?.response().await
    }

    /// Queues one request for writing and returns what waits for its answer.
    /// Requests are written in the order their `send`s return, which is what a
    /// producer needs to keep a partition's batches in order across requests.
    pub async fn send<R: ApiRequest>(&self, req: R, version: i16) -> Result<InFlight<R>> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(&req, version, correlation_id)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.lock();
            if let Some(cause) = &p.closed {
                return Err(cause.error(self.addr()));
            }
            // Registered before the frame is queued, so the answer cannot beat it.
            p.waiters.insert(correlation_id, tx);
        }
        let mut unsent = Unsent { shared: &self.shared, correlation_id: Some(correlation_id) };
        self.enqueue(frame).await?;
        unsent.correlation_id = None;
        Ok(InFlight { shared: self.shared.clone(), rx, version, request: PhantomData })
    }

    /// Sends a request the broker does not answer (Produce with acks=0).
    /// Returns once the frame is queued for writing; a failure to write it
    /// shows only as the connection closing.
    pub async fn send_no_response<R: ApiRequest>(&self, req: R, version: i16) -> Result<()> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(&req, version, correlation_id)?;
        if let Some(cause) = &self.shared.lock().closed {
            return Err(cause.error(self.addr()));
        }
        self.enqueue(frame).await
    }

    async fn enqueue(&self, frame: Bytes) -> Result<()> {
        self.writer.send(frame).await.map_err(|_| self.shared.closed_error())
    }

    /// Size prefix, header and body in one buffer, sized up front.
    fn encode<R: ApiRequest>(&self, req: &R, version: i16, correlation_id: i32) -> Result<Bytes> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = R::header_version(version);
        let encoding_failed = |e: String| ClientError::Other(format!("encoding {:?} v{version}: {e}", R::KEY));
        let header_size = header.compute_size(header_version).map_err(|e| encoding_failed(e.to_string()))?;
        let size = header_size + req.compute_size(version).map_err(|e| encoding_failed(e.to_string()))?;
        let size_prefix = i32::try_from(size).map_err(|_| ClientError::Other(format!("request of {size} bytes is too large")))?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size_prefix);
        header.encode(&mut buf, header_version).map_err(|e| encoding_failed(e.to_string()))?;
        req.encode(&mut buf, version).map_err(|e| encoding_failed(e.to_string()))?;
        debug_assert_eq!(buf.len(), 4 + size, "compute_size disagrees with encode");
        Ok(buf.freeze())
    }
}

/// A request written (or queued to be) whose answer has not been read yet.
/// Dropping it abandons the answer, not the request.
pub struct InFlight<R: ApiRequest> {
    shared: Arc<Shared>,
    rx: oneshot::Receiver<Bytes>,
    version: i16,
    request: PhantomData<fn() -> R>,
}

impl<R: ApiRequest> InFlight<R> {
    /// Waits for the answer and decodes it. An answer that does not decode is
    /// the broker's fault and leaves the stream in doubt: the connection closes.
    pub async fn response(self) -> Result<R::Response> {
        let shared = self.shared;
        let version = self.version;
        let mut body = self.rx.await.map_err(|_| shared.closed_error())?;
        let result =
            ResponseHeader::decode(&mut body, R::Response::header_version(version)).and_then(|_| R::Response::decode(&mut body, version));
        result.map_err(|e| {
            let detail = format!("{:?} v{version} response does not decode: {e}", R::KEY);
            shared.close(Cause::Protocol(detail.clone()));
            ClientError::Protocol { addr: shared.addr.clone(), detail }
        })
    }
}

/// Removes a waiter whose frame never reached the write queue (the caller
/// was cancelled while the queue was full, or the connection closed).
struct Unsent<'a> {
    shared: &'a Shared,
    correlation_id: Option<i32>,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.correlation_id {
            self.shared.lock().waiters.remove(&id);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(Cause::Local);
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).finish_non_exhaustive()
    }
}

/// Writes queued frames in order; coalesces what is queued into one write.
async fn write_loop(shared: Arc<Shared>, mut sock: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(WRITE_QUEUE_FRAMES);
    while rx.recv_many(&mut batch, WRITE_QUEUE_FRAMES).await > 0 {
        for frame in batch.drain(..) {
            if let Err(e) = sock.write_all(&frame).await {
                shared.close(Cause::Io(e.kind(), e.to_string()));
                return;
            }
        }
    }
    // Every sender is gone: the connection was dropped.
    let _ = sock.shutdown().await;
}

/// Reads response frames and hands each to its waiter.
async fn read_loop(shared: Arc<Shared>, sock: OwnedReadHalf) {
    let mut sock = BufReader::with_capacity(64 * 1024, sock);
    let cause = loop {
        match read_frame(&mut sock).await {
            Ok(body) => {
                if let Err(cause) = dispatch(&shared, body) {
                    break cause;
                }
            }
            Err(cause) => break cause,
        }
    };
    shared.close(cause);
}

async fn read_frame(sock: &mut BufReader<OwnedReadHalf>) -> std::result::Result<Bytes, Cause> {
    let io =
        |e: std::io::Error| if e.kind() == std::io::ErrorKind::UnexpectedEof { Cause::Eof } else { Cause::Io(e.kind(), e.to_string()) };
    let size = sock.read_i32().await.map_err(io)?;
    let size = usize::try_from(size).ok().filter(|&s| (4..=MAX_RESPONSE_BYTES).contains(&s));
    let size = size.ok_or_else(|| Cause::Protocol(format!("response frame size outside 4..={MAX_RESPONSE_BYTES}")))?;
    let mut body = vec![0u8; size];
    sock.read_exact(&mut body).await.map_err(io)?;
    Ok(Bytes::from(body))
}

fn dispatch(shared: &Shared, body: Bytes) -> std::result::Result<(), Cause> {
    // Every response header version starts with the correlation id.
    let correlation_id = (&body[..4]).get_i32();
    match shared.lock().waiters.remove(&correlation_id) {
        Some(tx) => {
            // Err: nobody waits any more (timed out); the answer is dropped.
            let _ = tx.send(body);
            Ok(())
        }
        None => Err(Cause::Protocol(format!("response to correlation id {correlation_id}, which no request has"))),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use kafka_protocol::messages::produce_request::TopicProduceData;
    use tokio::net::TcpListener;

    use super::*;

    /// An ApiVersions v3 answer: header v0, then error code, the (key, min,
    /// max) list as a compact array, throttle time, no tagged fields.
    fn api_versions_answer(correlation_id: i32, apis: &[(i16, i16, i16)]) -> Vec<u8> {
        let mut body = correlation_id.to_be_bytes().to_vec();
        body.extend(0i16.to_be_bytes());
        body.push(apis.len() as u8 + 1);
        for (key, min, max) in apis {
            body.extend(key.to_be_bytes());
            body.extend(min.to_be_bytes());
            body.extend(max.to_be_bytes());
            body.push(0);
        }
        body.extend(0i32.to_be_bytes());
        body.push(0);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend(body);
        frame
    }

    /// Reads one request frame; returns (api key, correlation id).
    async fn read_request(s: &mut TcpStream) -> (i16, i32) {
        let n = s.read_i32().await.expect("a request") as usize;
        let mut frame = vec![0; n];
        s.read_exact(&mut frame).await.expect("a whole request");
        (i16::from_be_bytes([frame[0], frame[1]]), i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]))
    }

    const APIS: [(i16, i16, i16); 3] = [(0, 3, 9), (1, 4, 17), (18, 0, 4)];

    /// A broker on a free port that answers the connection's ApiVersions with
    /// `APIS`, then hands the socket to `then`.
    async fn fake_broker<F, Fut>(then: F) -> String
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (key, id) = read_request(&mut s).await;
            assert_eq!(key, ApiKey::ApiVersions as i16);
            s.write_all(&api_versions_answer(id, &APIS)).await.unwrap();
            then(s).await;
        });
        addr
    }

    #[tokio::test]
    async fn version_is_the_highest_both_sides_speak() {
        let addr = fake_broker(|s| async move {
            std::future::pending::<()>().await;
            drop(s)
        })
        .await;
        let conn = Connection::connect(&addr, "t").await.expect("connect");
        // (api, ours, expected)
        let cases = [
            (ApiKey::Produce, 3..=12, Some(9)),
            (ApiKey::Produce, 0..=5, Some(5)),
            (ApiKey::Produce, 10..=12, None),
            (ApiKey::Produce, 0..=2, None),
            (ApiKey::Fetch, 4..=12, Some(12)),
            (ApiKey::Metadata, 0..=12, None),
        ];
        for (api, ours, expected) in cases {
            let got = conn.version(api, ours.clone());
            assert_eq!(got.as_ref().ok().copied(), expected, "{api:?} {ours:?}: {got:?}");
            if expected.is_none() {
                assert!(matches!(got, Err(ClientError::Unsupported { .. })));
            }
        }
    }

    #[tokio::test]
    async fn answers_in_any_order_reach_their_callers() {
        let addr = fake_broker(|mut s| async move {
            let (_, first) = read_request(&mut s).await;
            let (_, second) = read_request(&mut s).await;
            // Tells each caller its own id back, the later request's first.
            s.write_all(&api_versions_answer(second, &[(0, 0, second as i16)])).await.unwrap();
            s.write_all(&api_versions_answer(first, &[(0, 0, first as i16)])).await.unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        let conn = Connection::connect(&addr, "t").await.expect("connect");
        let a = conn.send(ApiVersionsRequest::default(), 3).await.expect("send a");
        let b = conn.send(ApiVersionsRequest::default(), 3).await.expect("send b");
        let (b, a) = (b.response().await.expect("b"), a.response().await.expect("a"));
        assert!(a.api_keys[0].max_version < b.api_keys[0].max_version, "a got {:?}, b got {:?}", a.api_keys, b.api_keys);
    }

    #[tokio::test]
    async fn acks_zero_produce_waits_for_nothing() {
        let addr = fake_broker(|mut s| async move {
            let (key, _) = read_request(&mut s).await;
            assert_eq!(key, ApiKey::Produce as i16);
            let (_, id) = read_request(&mut s).await;
            s.write_all(&api_versions_answer(id, &APIS)).await.unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        let conn = Connection::connect(&addr, "t").await.expect("connect");
        let produce = ProduceRequest::default().with_acks(0).with_topic_data(vec![TopicProduceData::default()]);
        conn.send_no_response(produce, 9).await.expect("produce");
        let resp = conn.call(ApiVersionsRequest::default(), 3).await.expect("the next answer is the next request's");
        assert_eq!(resp.api_keys.len(), APIS.len());
        assert!(conn.shared.lock().waiters.is_empty());
    }

    /// Each bad answer fails the waiting call, closes the connection, and fails later calls.
    #[tokio::test]
    async fn bad_answers_close_the_connection() {
        let oversized = ((MAX_RESPONSE_BYTES + 1) as i32).to_be_bytes().to_vec();
        let stranger = api_versions_answer(4242, &APIS);
        let garbage = [0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0xff].to_vec();
        // (what the broker answers, whether it then hangs up, what the caller gets)
        type Expect = fn(&ClientError) -> bool;
        let cases: [(Vec<u8>, bool, Expect); 4] = [
            (oversized, false, |e| matches!(e, ClientError::Protocol { .. })),
            (stranger, false, |e| matches!(e, ClientError::Protocol { .. })),
            (garbage, false, |e| matches!(e, ClientError::Protocol { .. })),
            (Vec::new(), true, |e| matches!(e, ClientError::Closed { .. })),
        ];
        for (answer, hang_up, expected) in cases {
            let addr = fake_broker(move |mut s| async move {
                read_request(&mut s).await;
                s.write_all(&answer).await.unwrap();
                if !hang_up {
                    std::future::pending::<()>().await;
                }
            })
            .await;
            let conn = Connection::connect(&addr, "t").await.expect("connect");
            let err = conn.call(ApiVersionsRequest::default(), 3).await.expect_err("a bad answer");
            assert!(expected(&err), "got {err:?}");
            assert!(conn.is_closed());
            assert!(conn.call(ApiVersionsRequest::default(), 3).await.is_err(), "a closed connection stays closed");
        }
    }
}
