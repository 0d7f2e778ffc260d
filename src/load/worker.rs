//! One load worker: a loop of requests, each on the worker's kept-alive connection
//! or on a fresh one, each counted as exactly one outcome.
//!
//! A broken connection is counted against the request that was on it and replaced
//! for the next request; the failed request is never sent again. Errors are
//! classified from `io::ErrorKind` and `hyper::Error` predicates, never from text.

use std::error::Error as StdError;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio_util::sync::CancellationToken;

use super::LoadSpec;
use super::connect::{Sender, connect};
use super::report::{ErrorKind, Outcome, Tally};

/// Bodies larger than this are an error: the client's memory stays bounded.
const MAX_BODY: usize = 4 << 20;

/// State every worker of one load shares.
pub(super) struct Shared {
    pub spec: LoadSpec,
    /// Requests started so far. Also the `max_requests` budget: a worker takes a
    /// request from it before starting one, so it never exceeds the bound.
    pub sent: AtomicU64,
    /// Outcomes of finished requests. Held only to count one outcome or to copy.
    pub tally: Mutex<Tally>,
    /// Connections the keep-alive workers opened: one each, plus one per
    /// connection the server closed (or broke) under them.
    pub keepalive_connects: AtomicU64,
    /// TLS connections that resumed a session (a shorter handshake).
    pub tls_resumed: AtomicU64,
    /// Set by `Load::stop`: no new request starts, in-flight ones finish.
    pub stop: CancellationToken,
    pub started: Instant,
    /// `started + max_duration`: no request starts after it.
    pub deadline: Instant,
}

impl Shared {
    /// Takes one request from the budget; false when the load must end.
    fn take_request(&self) -> bool {
        if self.stop.is_cancelled() || Instant::now() >= self.deadline {
            return false;
        }
        let max = self.spec.max_requests;
        self.sent
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs requests until the stop flag, `max_requests` or `max_duration` ends it.
pub(super) async fn run(shared: std::sync::Arc<Shared>, keepalive: bool) {
    let spec = &shared.spec;
    let mut conn = None;
    while shared.take_request() {
        let outcome = match tokio::time::timeout(
            spec.request_timeout,
            request(&shared, &mut conn, keepalive),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::Error(ErrorKind::Timeout),
        };
        // After an error (or a timeout) the connection's state is unknown.
        if !keepalive || matches!(outcome, Outcome::Error(_)) {
            conn = None;
        }
        shared.tally().record(outcome);
        if !spec.pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(spec.pause) => {}
                () = shared.stop.cancelled() => break,
            }
        }
    }
}

/// One request, on `conn` if it is still usable, else on a new connection.
async fn request(shared: &Shared, conn: &mut Option<Sender>, keepalive: bool) -> Outcome {
    let spec = &shared.spec;
    let started = Instant::now();
    // A connection the server closed while idle is replaced before sending: no
    // request was on it, so there is nothing to count.
    if let Some(sender) = conn
        && sender.ready().await.is_err()
    {
        *conn = None;
    }
    let sender = match conn {
        Some(sender) => sender,
        None => match connect(spec.target, spec.tls.as_ref()).await {
            Ok((sender, resumed)) => {
                if resumed {
                    shared.tls_resumed.fetch_add(1, Ordering::Relaxed);
                }
                if keepalive {
                    shared.keepalive_connects.fetch_add(1, Ordering::Relaxed);
                }
                conn.insert(sender)
            }
            Err(kind) => return Outcome::Error(kind),
        },
    };

    let host = spec.host.clone().unwrap_or_else(|| spec.target.to_string());
    let request = match sender.request(&host, &spec.path, !keepalive) {
        Ok(request) => request,
        Err(e) => return Outcome::Error(ErrorKind::Other(format!("invalid request: {e}"))),
    };
    let response = match sender.send(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Error(classify_hyper(&e)),
    };
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY).collect().await;
    let latency = started.elapsed();
    if !status.is_success() {
        if body.is_err() {
            *conn = None; // the status is the outcome, but the connection is spent
        }
        return Outcome::Status {
            status: status.as_u16(),
            latency,
        };
    }
    match body {
        Ok(body) => Outcome::Ok {
            version: version_of(&body.to_bytes()),
            latency,
        },
        Err(e) => Outcome::Error(classify_body(e.as_ref())),
    }
}

/// The `"version"` field of a JSON body, if any.
fn version_of(body: &Bytes) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("version")? {
        serde_json::Value::String(version) => Some(version.clone()),
        other => Some(other.to_string()),
    }
}

pub(super) fn classify_io(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        io::ErrorKind::UnexpectedEof => ErrorKind::Incomplete,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        kind => ErrorKind::Other(kind.to_string()),
    }
}

pub(super) fn classify_hyper(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if let Some(io) = source_of::<io::Error>(e) {
        classify_io(io)
    } else if e.is_incomplete_message() {
        ErrorKind::Incomplete
    } else if e.is_canceled() || e.is_closed() {
        ErrorKind::Closed
    } else {
        ErrorKind::Other(e.to_string())
    }
}

fn classify_body(e: &(dyn StdError + Send + Sync + 'static)) -> ErrorKind {
    if let Some(e) = e.downcast_ref::<hyper::Error>() {
        classify_hyper(e)
    } else if e.downcast_ref::<LengthLimitError>().is_some() {
        ErrorKind::Other(format!("body larger than {MAX_BODY} bytes"))
    } else {
        ErrorKind::Other(e.to_string())
    }
}

/// The first error of type `T` in `e`'s source chain.
fn source_of<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = e.source();
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}
