//! Memory footprint under idle connections: open N HTTP/1.1 keep-alive connections,
//! send one request on each, keep them open, and read the proxy's RSS.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the connections stay idle before RSS is read, for both proxies:
/// long enough for teal to park them (`proxy::conn`, 1 to 2 s).
pub const SETTLE: Duration = Duration::from_millis(2500);

/// Opens `n` connections to `target`, each having completed one request, and
/// returns them (still open). Connections that failed are counted, not retried.
pub async fn open_idle(target: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    // Batches keep the accept queues short without serializing everything.
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let batch = futures_util::future::join_all(chunk.iter().map(|_| one(target))).await;
        for conn in batch {
            match conn {
                Some(c) => open.push(c),
                None => failed += 1,
            }
        }
    }
    (open, failed)
}

async fn one(target: SocketAddr) -> Option<TcpStream> {
    let work = async { first_answer(TcpStream::connect(target).await.ok()?).await };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .ok()
        .flatten()
}

/// `stream` once a `GET /` on it was answered 200 (the start of the answer
/// read; a ~100 B answer is read whole); None otherwise.
pub async fn first_answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> Option<S> {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.ok()?;
    (n > 0 && buf.starts_with(b"HTTP/1.1 200")).then_some(stream)
}
