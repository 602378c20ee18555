//! Writing a frame made of many `Bytes` chunks (a Fetch response: encoded fields interleaved
//! with mmap'd record slices, see [`super::fetch_response`]) without joining them first.

use std::io::{self, IoSlice};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The most buffers handed to one `writev`: Linux's `IOV_MAX` (`UIO_MAXIOV`) is 1024, and
/// more fails with EINVAL.
pub const MAX_IO_SLICES: usize = 1024;

/// For a writer without vectored writes (TLS), small chunks are gathered into one write of at
/// most this many bytes: the payload of one TLS record, so a 20-byte field does not become a
/// record (and a syscall) of its own.
pub const COALESCE_BYTES: usize = 16 * 1024;

/// Writes all of `chunks`, in order, to `w`: with `write_vectored` (at most
/// [`MAX_IO_SLICES`] buffers per call, resuming after partial writes) when `w` supports it,
/// otherwise with plain writes that gather small chunks (up to [`COALESCE_BYTES`]) and write
/// large ones from where they are.
///
/// Does not flush. Not cancellation safe: if the future is dropped, an unknown prefix of the
/// frame has been written and the connection must be closed.
pub async fn write_all_vectored<W>(w: &mut W, chunks: &[Bytes]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    if w.is_write_vectored() { write_gathered(w, chunks).await } else { write_coalesced(w, chunks).await }
}

async fn write_gathered<W>(w: &mut W, chunks: &[Bytes]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    // The first chunk not yet fully written, and how much of it has been.
    let mut index = 0;
    let mut offset = 0;
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(chunks.len().min(MAX_IO_SLICES));
    loop {
        while index < chunks.len() && offset == chunks[index].len() {
            index += 1;
            offset = 0;
        }
        let Some(first) = chunks.get(index) else {
            return Ok(());
        };
        slices.clear();
        slices.push(IoSlice::new(&first[offset..]));
        let rest = chunks[index + 1..].iter().filter(|c| !c.is_empty());
        slices.extend(rest.take(MAX_IO_SLICES - 1).map(|c| IoSlice::new(c)));
        debug_assert!(slices.len() <= MAX_IO_SLICES);

        let written = w.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        advance(chunks, &mut index, &mut offset, written);
    }
}

/// Moves (`index`, `offset`) forward over `written` bytes of `chunks`.
fn advance(chunks: &[Bytes], index: &mut usize, offset: &mut usize, mut written: usize) {
    while written > 0 {
        let chunk = chunks.get(*index).expect("writer reported more bytes written than it was given");
        let left = chunk.len() - *offset;
        if written < left {
            *offset += written;
            return;
        }
        written -= left;
        *index += 1;
        *offset = 0;
    }
}

async fn write_coalesced<W>(w: &mut W, chunks: &[Bytes]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut pending: Vec<u8> = Vec::new();
    for chunk in chunks {
        if pending.len() + chunk.len() <= COALESCE_BYTES {
            pending.extend_from_slice(chunk);
            continue;
        }
        if !pending.is_empty() {
            w.write_all(&pending).await?;
            pending.clear();
        }
        if chunk.len() <= COALESCE_BYTES {
            pending.extend_from_slice(chunk);
        } else {
            w.write_all(chunk).await?;
        }
    }
    if !pending.is_empty() {
        w.write_all(&pending).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A writer that takes at most `per_call_bytes` per call and records what it was given.
    struct Trickle {
        written: Vec<u8>,
        per_call_bytes: usize,
        vectored: bool,
        calls: usize,
        most_slices: usize,
    }

    impl Trickle {
        fn new(per_call_bytes: usize, vectored: bool) -> Self {
            Trickle { written: Vec::new(), per_call_bytes, vectored, calls: 0, most_slices: 0 }
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.per_call_bytes);
            self.written.extend_from_slice(&buf[..n]);
            self.calls += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            assert!(self.vectored, "vectored write on a writer that does not support it");
            self.calls += 1;
            self.most_slices = self.most_slices.max(bufs.len());
            let mut budget = self.per_call_bytes;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(budget);
                self.written.extend_from_slice(&buf[..take]);
                budget -= take;
                n += take;
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Chunks of many sizes, empty ones included, more of them than one `writev` takes.
    fn chunks() -> Vec<Bytes> {
        let data = Bytes::from((0..=255u8).cycle().take(200_000).collect::<Vec<u8>>());
        let mut chunks = Vec::new();
        let mut start = 0;
        for i in 0..3000usize {
            let len = match i % 5 {
                0 => 0,
                1 => 1,
                2 => 17,
                3 => 3,
                _ => 40,
            };
            chunks.push(data.slice(start..start + len));
            start += len;
        }
        chunks.push(data.slice(start..start + 50_000));
        chunks.push(Bytes::new());
        chunks
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[tokio::test]
    async fn vectored_writes_survive_partial_writes_and_respect_iov_max() {
        let chunks = chunks();
        for per_call_bytes in [1, 7, 4096, usize::MAX] {
            let mut w = Trickle::new(per_call_bytes, true);
            write_all_vectored(&mut w, &chunks).await.unwrap();
            assert_eq!(w.written, concat(&chunks), "{per_call_bytes} bytes per call");
            assert!(w.most_slices <= MAX_IO_SLICES);
        }
        let mut w = Trickle::new(usize::MAX, true);
        write_all_vectored(&mut w, &chunks).await.unwrap();
        // 2400 non-empty chunks: three calls of at most 1024 slices.
        assert_eq!(w.calls, 3);
        assert_eq!(w.most_slices, MAX_IO_SLICES);
    }

    #[tokio::test]
    async fn plain_writes_coalesce_small_chunks_and_survive_partial_writes() {
        let chunks = chunks();
        for per_call_bytes in [1, 7, 4096, usize::MAX] {
            let mut w = Trickle::new(per_call_bytes, false);
            write_all_vectored(&mut w, &chunks).await.unwrap();
            assert_eq!(w.written, concat(&chunks), "{per_call_bytes} bytes per call");
        }
        // 36,600 bytes of small chunks go out in three gathered writes (at most 16 KiB each),
        // the 50 KB chunk in one of its own.
        let mut w = Trickle::new(usize::MAX, false);
        write_all_vectored(&mut w, &chunks).await.unwrap();
        assert_eq!(w.calls, 4);
    }

    #[tokio::test]
    async fn nothing_to_write_writes_nothing() {
        for vectored in [true, false] {
            let mut w = Trickle::new(usize::MAX, vectored);
            write_all_vectored(&mut w, &[]).await.unwrap();
            write_all_vectored(&mut w, &[Bytes::new(), Bytes::new()]).await.unwrap();
            assert_eq!(w.calls, 0);
        }
    }

    #[tokio::test]
    async fn a_writer_that_takes_nothing_is_an_error() {
        for vectored in [true, false] {
            let mut w = Trickle::new(0, vectored);
            let err = write_all_vectored(&mut w, &chunks()).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        }
    }

    #[tokio::test]
    async fn writes_to_a_tcp_socket_arrive_whole() {
        use tokio::io::AsyncReadExt;
        use tokio::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(client.is_write_vectored());
        // More than a socket buffer holds, so the kernel takes it in partial writes.
        let mut chunks = chunks();
        chunks.push(Bytes::from(vec![0x5A; 8 << 20]));
        chunks.extend(self::chunks());
        let expected = concat(&chunks);
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            server.read_to_end(&mut received).await.unwrap();
            received
        });
        write_all_vectored(&mut client, &chunks).await.unwrap();
        drop(client);
        assert_eq!(reader.await.unwrap(), expected);
    }
}
