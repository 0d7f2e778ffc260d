//! A test app that streams its answer slowly, and counts how many answers are
//! in progress at once: `/drip?chunks=N&ms=M` sends N lines (`chunk 0\n` ...)
//! M ms apart, as a body without a length (chunked on HTTP/1.1).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::loopback;

type Chunks =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>;

/// The app, on 127.0.0.1; stops when dropped.
pub struct DripBackend {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Counts {
    /// Requests received, ever.
    started: AtomicUsize,
    /// Answers in progress now (from the request's arrival to its last chunk
    /// or its cancellation).
    open: AtomicUsize,
    /// The most answers ever in progress at once.
    most_open: AtomicUsize,
    /// Answers whose last chunk was produced.
    finished: AtomicUsize,
}

impl DripBackend {
    pub async fn start() -> DripBackend {
        let listener = TcpListener::bind(loopback()).await.expect("bind backend");
        let backend = DripBackend {
            addr: listener.local_addr().expect("backend addr"),
            counts: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (counts, stop) = (backend.counts.clone(), backend.stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let counts = counts.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(counts.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        backend
    }

    pub fn started(&self) -> usize {
        self.counts.started.load(Ordering::SeqCst)
    }

    pub fn most_open(&self) -> usize {
        self.counts.most_open.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> usize {
        self.counts.finished.load(Ordering::SeqCst)
    }
}

impl Drop for DripBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The body a `/drip?chunks=N&ms=M` request gets, for comparison.
pub fn drip_body(chunks: usize) -> String {
    (0..chunks).map(|i| format!("chunk {i}\n")).collect()
}

/// Holds `open` up while an answer is in progress.
struct Open(Arc<Counts>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    counts: Arc<Counts>,
    req: Request<Incoming>,
) -> Result<Response<StreamBody<Chunks>>, Infallible> {
    counts.started.fetch_add(1, Ordering::SeqCst);
    let now = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
    counts.most_open.fetch_max(now, Ordering::SeqCst);
    let open = Open(counts);
    let param = |name: &str| {
        req.uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let chunks = param("chunks").unwrap_or(1);
    let pause = Duration::from_millis(param("ms").unwrap_or(100));
    let stream = futures_util::stream::unfold((0, open), move |(i, open)| async move {
        if i == chunks {
            open.0.finished.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        tokio::time::sleep(pause).await;
        let line = Bytes::from(format!("chunk {i}\n"));
        Some((Ok(Frame::data(line)), (i + 1, open)))
    });
    let body: Chunks = Box::pin(stream);
    Ok(Response::new(StreamBody::new(body)))
}
