//! HTTP/2 with prior knowledge to the instances of an h2c service (gRPC):
//! one connection per endpoint and worker, shared by the requests of that
//! worker (streams are multiplexed on it), and replaced once it closed. Its
//! driver runs on the worker that opened it, like an HTTP/1.1 connection's,
//! and its writes fail after the send timeout (`crate::stall`).
//! Which endpoint to use, and when to try again, is `crate::retry`'s.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;

use super::UpstreamCtx;
use super::body::UpstreamBody;
use crate::error::ProxyError;
use crate::stall::Timed;

/// A sender for streams on one upstream HTTP/2 connection (clones share it).
pub(crate) type H2Sender = SendRequest<UpstreamBody>;

/// The shared connection of each worker to one endpoint.
pub(crate) struct H2Lanes {
    lanes: Box<[Lane]>,
}

/// One worker's connection, alone on its cache lines (as `idle`'s lanes).
/// Locked for a clone or a store, never across an await.
#[repr(align(128))]
struct Lane(Mutex<Option<H2Sender>>);

impl H2Lanes {
    pub(crate) fn new(lanes: usize) -> H2Lanes {
        H2Lanes {
            lanes: (0..lanes.max(1)).map(|_| Lane(Mutex::default())).collect(),
        }
    }

    fn lane(&self) -> &Mutex<Option<H2Sender>> {
        let lane = crate::workers::current_lane().min(self.lanes.len() - 1);
        &self.lanes[lane].0
    }

    /// This worker's connection, if it is still open.
    pub(crate) fn shared(&self) -> Option<H2Sender> {
        let mut lane = self.lane().lock().ok()?;
        match lane.as_ref() {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                *lane = None;
                None
            }
            None => None,
        }
    }

    /// Makes `sender` this worker's connection (a fresh one replaces the one
    /// before, which ends once its streams did).
    pub(crate) fn keep(&self, sender: &H2Sender) {
        if let Ok(mut lane) = self.lane().lock() {
            *lane = Some(sender.clone());
        }
    }

    /// Forgets every connection: each closes when its last stream ended.
    pub(crate) fn clear(&self) {
        for lane in self.lanes.iter() {
            let taken = lane.0.lock().ok().and_then(|mut l| l.take());
            drop(taken);
        }
    }
}

/// Runs hyper's HTTP/2 tasks (the connection's streams) on the calling worker,
/// tracked with the other upstream tasks.
#[derive(Clone)]
struct WorkerExec(TaskTracker);

impl<F> hyper::rt::Executor<F> for WorkerExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// Opens a fresh HTTP/2 connection (prior knowledge) to `addr` and starts its
/// driver.
pub(crate) async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<H2Sender, ProxyError> {
    let stream = super::connect(addr, ctx.connect_timeout).await?;
    let (sender, conn) = http2::Builder::new(WorkerExec(ctx.tasks.clone()))
        .max_header_list_size(super::MAX_RESPONSE_HEAD as u32)
        .handshake(TokioIo::new(Timed::new(stream, ctx.send_timeout)))
        .await
        .map_err(|error| ProxyError::Connect {
            addr,
            cause: io::Error::other(error),
        })?;
    // Runs on the calling worker; a hard stop ends it with that worker.
    ctx.tasks.spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%addr, %error, "upstream HTTP/2 connection ended");
        }
    });
    Ok(sender)
}
