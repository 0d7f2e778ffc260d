//! An HTTP/2 response body under a stall watch. hyper's HTTP/2 server asks a
//! response body for its next frame only when the client's flow-control
//! window has room: a client that keeps its connection alive (it reads, it
//! answers PINGs) but never opens one stream's window leaves that body
//! unasked, and the instance connection under it held, for as long as the
//! connection lives. `send_timeout` cuts a client that reads nothing at all
//! (`client::ClientIo`), not this one.
//!
//! So a body that handed hyper a frame and has not been asked again for
//! `send_timeout` is cut, as nginx resets such a stream after its
//! `send_timeout`: a watch task takes the upstream body out (the instance
//! connection closes, the in-flight claim ends), and when hyper asks again it
//! gets an error, which resets the stream. The task starts with the first
//! frame that is not the last (a one-frame answer costs no task) and ends with
//! the body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::body::{BodyError, Tracked};

/// Why a watched body ended without its end.
#[derive(Debug, thiserror::Error)]
#[error("the client took none of this stream's data for the send timeout")]
pub(crate) struct StreamStalled;

/// An upstream response body for an HTTP/2 client.
pub(crate) struct Watched {
    watch: Arc<Watch>,
    timeout: Duration,
    /// Where the watch task runs (the worker's tasks); taken when it starts.
    tasks: Option<TaskTracker>,
}

/// What the body and its watch task share.
struct Watch {
    state: Mutex<State>,
    /// Wakes the watch task when the body is dropped.
    dropped: Notify,
}

struct State {
    /// None once the watch cut it, or the body was dropped.
    body: Option<Tracked>,
    /// When a frame went to hyper that hyper has not come back after.
    handed_at: Option<Instant>,
}

impl Watched {
    pub(crate) fn new(body: Tracked, timeout: Duration, tasks: TaskTracker) -> Watched {
        Watched {
            watch: Arc::new(Watch {
                state: Mutex::new(State {
                    body: Some(body),
                    handed_at: None,
                }),
                dropped: Notify::new(),
            }),
            timeout,
            tasks: Some(tasks),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has a body.
        self.watch
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let mut state = this.state();
        state.handed_at = None;
        let Some(body) = state.body.as_mut() else {
            return Poll::Ready(Some(Err(StreamStalled.into())));
        };
        let frame = ready!(Pin::new(&mut *body).poll_frame(cx));
        if matches!(frame, Some(Ok(_))) && !body.is_end_stream() {
            state.handed_at = Some(Instant::now());
            drop(state);
            if let Some(tasks) = this.tasks.take() {
                tasks.spawn(watch(Arc::clone(&this.watch), this.timeout));
            }
        }
        Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)))
    }

    fn is_end_stream(&self) -> bool {
        // A cut body is not at its end: hyper asks again and resets the stream.
        self.state().body.as_ref().is_some_and(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.state()
            .body
            .as_ref()
            .map_or_else(SizeHint::default, Body::size_hint)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // The body's own drop decides: reuse (it ended) or close.
        let body = self.state().body.take();
        drop(body);
        self.watch.dropped.notify_one();
    }
}

/// Cuts the body once it has waited `timeout` for hyper to ask again.
async fn watch(watch: Arc<Watch>, timeout: Duration) {
    let mut wake = Instant::now() + timeout;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = watch.dropped.notified() => return,
        }
        let mut state = watch
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.body.is_none() {
            return;
        }
        match state.handed_at {
            Some(at) if at.elapsed() >= timeout => {
                let body = state.body.take();
                drop(state);
                drop(body);
                tracing::debug!("h2 stream: the client took none of its data for the send timeout");
                return;
            }
            Some(at) => wake = at + timeout,
            None => wake = Instant::now() + timeout,
        }
    }
}
