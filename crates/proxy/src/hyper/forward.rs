//! Forwarding one request to its pool through hyper (requests the lean path
//! hands over, and h2c): route it, send it with the shared retry loop
//! (`upstream::retry`), and hand back the response with the request's
//! in-flight claim riding on its body. Upgrades (websockets) become a byte
//! tunnel that holds the claim until it closes.
//!
//! Besides idempotent requests with an empty body, a request hyper hands back
//! unsent is also sent again. A request whose body the client broke (an
//! invalid chunk, a body cut short) is answered 400 and counted as the
//! client's error, never as the upstream's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::body::{ProxyBody, Tracked};
use super::headers;
use super::screen::screen;
use super::serve::UpgradeSlot;
use crate::Proxy;
use crate::client::{ClientAddr, ClientIo};
use crate::error::ProxyError;
use crate::pool::inflight::InFlight;
use crate::pool::{Endpoint, Pool};
use crate::retry::{self, Attempt, Failure};
use crate::routes::{ListenerKind, request_host};
use crate::upstream::UpstreamCtx;
use crate::upstream::idle::IdleStack;
use crate::upstream::sender::{self, Sender, UpstreamBody};

impl Proxy {
    /// Screens one request (`screen`), routes it and forwards it, or answers
    /// 400/404/503 itself.
    pub(crate) async fn handle(
        &self,
        mut req: Request<Incoming>,
        client: &ClientAddr,
        listener: &ListenerKind,
        upgrade: &UpgradeSlot,
    ) -> Response<ProxyBody> {
        if let Err(error) = screen(&mut req, self.opts.underscores_in_headers) {
            return self.refuse(&error, req.version());
        }
        match self.pool_for(listener, || request_host(&req)) {
            Ok(pool) => forward(pool, req, client, upgrade).await,
            Err(error) => local(&error),
        }
    }
}

/// Forwards `req` to `pool` and returns what the client gets.
async fn forward(
    pool: Arc<Pool>,
    req: Request<Incoming>,
    client: &ClientAddr,
    upgrade_slot: &UpgradeSlot,
) -> Response<ProxyBody> {
    let mut guard = InFlight::start(pool);
    let upgrade = headers::is_upgrade_request(&req);
    let client_upgrade = upgrade.then_some(upgrade_slot);
    let (mut head, body) = req.into_parts();
    if let Err(error) = headers::to_upstream(&mut head, client, upgrade) {
        return local(&error);
    }
    let replayable = headers::is_replayable(&head.method, body.is_end_stream());
    let (body, client_broke) = if replayable {
        (UpstreamBody::Empty, None)
    } else {
        let (body, broken) = UpstreamBody::stream(body);
        (body, Some(broken))
    };
    let mut attempt = HyperAttempt {
        req: Some(Request::from_parts(head, body)),
        replayable,
        response_timeout: guard.pool().ctx.response_timeout,
        client_broke,
    };
    match retry::send(&mut guard, &mut attempt).await {
        Ok((_, sender, response)) => respond(guard, response, sender, client_upgrade),
        Err(error @ ProxyError::ClientBody) => {
            tracing::debug!(%error, "request ended by the client");
            guard.client_error();
            local(&error)
        }
        Err(error) => {
            tracing::debug!(%error, "upstream request failed");
            guard.failed();
            local(&error)
        }
    }
}

/// A response written by the proxy itself.
pub(crate) fn local(error: &ProxyError) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(error.body()));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// One request on hyper's upstream connections. A request hyper hands back
/// unsent is sent again as it is; a replayable one (no body) is rebuilt from
/// a copy of its head.
struct HyperAttempt {
    /// Taken by each send; put back when it is to go again.
    req: Option<Request<UpstreamBody>>,
    replayable: bool,
    /// How long a sent request waits for its response head.
    response_timeout: Duration,
    /// Set when the client broke its streamed body: a failed exchange is
    /// then the client's error, not the upstream's.
    client_broke: Option<Arc<AtomicBool>>,
}

impl HyperAttempt {
    fn client_broke(&self) -> bool {
        self.client_broke
            .as_ref()
            .is_some_and(|broken| broken.load(Ordering::Acquire))
    }
}

impl Attempt for HyperAttempt {
    type Conn = Sender;
    type Answer = Response<Incoming>;
    type Error = ProxyError;

    fn idle(endpoint: &Endpoint) -> &IdleStack<Sender> {
        &endpoint.idle
    }

    async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Sender, ProxyError> {
        sender::connect(ctx, addr).await
    }

    async fn send(
        &mut self,
        sender: &mut Sender,
        may_resend: bool,
    ) -> Result<Response<Incoming>, Failure<ProxyError>> {
        let Some(req) = self.req.take() else {
            return Err(Failure::Fatal(ProxyError::BadRequest));
        };
        let backup = (self.replayable && may_resend).then(|| copy_head(&req));
        let sent = tokio::time::timeout(self.response_timeout, sender.try_send_request(req));
        let Ok(sent) = sent.await else {
            // Not resent: the app may be working on it.
            return Err(Failure::Fatal(ProxyError::ResponseTimeout));
        };
        let mut failed = match sent {
            Ok(response) => return Ok(response),
            Err(_) if self.client_broke() => return Err(Failure::Fatal(ProxyError::ClientBody)),
            Err(failed) => failed,
        };
        let again = if may_resend {
            failed.take_message().or_else(|| backup.map(rebuild))
        } else {
            None
        };
        match again {
            Some(again) => {
                self.req = Some(again);
                Err(Failure::Resend(ProxyError::Upstream(failed.into_error())))
            }
            None => Err(Failure::Fatal(ProxyError::Upstream(failed.into_error()))),
        }
    }
}

fn copy_head(req: &Request<UpstreamBody>) -> (Method, Uri, HeaderMap) {
    (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    )
}

fn rebuild((method, uri, headers): (Method, Uri, HeaderMap)) -> Request<UpstreamBody> {
    let mut req = Request::new(UpstreamBody::Empty);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    *req.version_mut() = Version::HTTP_11;
    req
}

/// Turns the upstream response into the client's, keeping `guard` alive until
/// the body ends (or the tunnel closes, for an upgrade).
fn respond(
    guard: InFlight,
    mut response: Response<Incoming>,
    sender: Sender,
    client_upgrade: Option<&UpgradeSlot>,
) -> Response<ProxyBody> {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            guard.failed();
            return local(&ProxyError::UnexpectedUpgrade);
        };
        guard.answered(false);
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        // The upstream connection now belongs to the tunnel.
        drop(sender);
        let (mut parts, _) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        // The client socket comes once hyper has written this 101 and let go.
        let (give, client) = oneshot::channel();
        if let Ok(mut slot) = client_upgrade.lock() {
            *slot = Some(give);
        }
        // On this worker: a hard stop ends the tunnel with the worker.
        let tasks = guard.pool().ctx.tasks.clone();
        tasks.spawn(tunnel(guard, upstream_upgrade, client));
        return Response::from_parts(parts, ProxyBody::empty());
    }
    guard.answered(status.is_server_error());
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(
        parts,
        ProxyBody::Upstream(Tracked::new(body, guard, sender)),
    )
}

/// Copies bytes both ways between the upgraded client and upstream connections
/// until either side is done; the in-flight claim ends with it. Like nginx, the
/// tunnel ends when one side closes: a peer that never closes its half (a client
/// that finished the websocket close handshake but kept the socket) must not hold
/// the slot's drain open forever.
async fn tunnel(guard: InFlight, upstream: OnUpgrade, client: oneshot::Receiver<ClientIo>) {
    let (upstream, client) = tokio::join!(upstream, client);
    let client = client.map_err(|_| "the client connection ended before its upgrade");
    match (
        upstream.map_err(|e| e.to_string()),
        client.map_err(str::to_string),
    ) {
        (Ok(upstream), Ok(client)) => {
            let (mut client_read, mut client_write) = tokio::io::split(client);
            let (mut upstream_read, mut upstream_write) = tokio::io::split(TokioIo::new(upstream));
            let to_upstream = async {
                let copied = tokio::io::copy(&mut client_read, &mut upstream_write).await;
                let _ = upstream_write.shutdown().await;
                copied
            };
            let to_client = async {
                let copied = tokio::io::copy(&mut upstream_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
                copied
            };
            let ended = tokio::select! {
                r = to_upstream => r,
                r = to_client => r,
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "upgraded connection ended");
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "upgrade failed");
        }
    }
    drop(guard);
}
