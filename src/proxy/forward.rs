//! Forwarding one request to its pool through hyper (requests the lean path in
//! `h1/` hands over, and h2c): pick an endpoint, get a connection (reused or
//! fresh), send, retry when that is safe (`retry.rs`), and hand back the
//! response with the request's in-flight claim riding on its body. Upgrades
//! (websockets) become a byte tunnel that holds the claim until it closes.
//!
//! Besides idempotent requests with an empty body, a request hyper hands back
//! unsent is also sent again.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::body::{ProxyBody, Tracked, UpstreamBody};
use super::conn::{ClientIo, UpgradeSlot};
use super::error::ProxyError;
use super::headers::{self, ClientAddr};
use super::inflight::InFlight;
use super::pool::Pool;
use super::retry::Attempts;
use super::upstream::Sender;

/// Forwards `req` to `pool` and returns what the client gets.
pub(crate) async fn forward(
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
    let body = if replayable {
        UpstreamBody::Empty
    } else {
        UpstreamBody::Stream(body)
    };
    match send(&mut guard, Request::from_parts(head, body), replayable).await {
        Ok((response, sender)) => respond(guard, response, sender, client_upgrade),
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

/// Sends `req` on a connection to one of the pool's endpoints, with the retries
/// described in the module doc.
async fn send(
    guard: &mut InFlight,
    mut req: Request<UpstreamBody>,
    replayable: bool,
) -> Result<(Response<Incoming>, Sender), ProxyError> {
    let pool = Arc::clone(guard.pool());
    let mut attempts = Attempts::new(&pool);
    loop {
        let index = attempts.pick(&pool);
        guard.attach(index);
        let endpoint = pool.endpoint(index);
        let idle = if attempts.may_reuse() {
            endpoint.idle.take(pool.ctx.idle_timeout)
        } else {
            None
        };
        let reused = idle.is_some();
        let mut sender = match idle {
            Some(sender) => sender,
            None => match pool.ctx.connect(endpoint.addr()).await {
                Ok(sender) => sender,
                Err(error) if attempts.connect_failed(&pool, index) => {
                    tracing::debug!(%error, "connect failed: trying another endpoint");
                    continue;
                }
                Err(error) => return Err(error),
            },
        };
        let resend = attempts.may_resend(reused);
        let backup = (replayable && resend).then(|| copy_head(&req));
        let sent = tokio::time::timeout(pool.ctx.response_timeout, sender.try_send_request(req));
        let Ok(sent) = sent.await else {
            // Not resent: the app may be working on it.
            return Err(ProxyError::ResponseTimeout);
        };
        match sent {
            Ok(response) => return Ok((response, sender)),
            Err(mut failed) => {
                let again = if resend {
                    failed.take_message().or_else(|| backup.map(rebuild))
                } else {
                    None
                };
                let Some(again) = again else {
                    return Err(ProxyError::Upstream(failed.into_error()));
                };
                tracing::debug!(error = %failed.error(), reused, "resending on a fresh upstream connection");
                req = again;
                attempts.resending(&pool, index, reused);
            }
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
