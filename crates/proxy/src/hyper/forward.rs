//! Forwarding one request to its pool through hyper (requests the lean path
//! hands over, and h2c): route it, send it with the shared retry loop
//! (`upstream::retry`), and hand back the response with the request's
//! in-flight claim riding on its body. Upgrades (websockets) become a
//! tunnel (`super::tunnel`) that holds the claim until it closes.
//!
//! A request body is read up to the body buffer before the request is routed
//! (`upstream::body`): a client that stalls holds no instance, and a request
//! goes to the pool that is live when it can be sent.
//!
//! Besides idempotent requests with an empty body, a request hyper hands back
//! unsent is also sent again. A request whose body the client broke (an
//! invalid chunk, a body cut short: 400) or stalled (408) is counted as the
//! client's error, never as the upstream's; an app that does not take the
//! body in time gets the request a 504, an upstream failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use tokio::sync::oneshot;

use super::body::{ProxyBody, Tracked};
use super::grpc::{self, Verdict};
use super::headers;
use super::screen::screen;
use super::serve::UpgradeSlot;
use super::tunnel::tunnel;
use super::watched::Watched;
use crate::Proxy;
use crate::access::{Outcome, failures};
use crate::client::ClientAddr;
use crate::error::ProxyError;
use crate::pool::inflight::InFlight;
use crate::pool::{Endpoint, Pool};
use crate::retry::{self, Attempt, Failure};
use crate::routes::{ListenerKind, https, request_host};
use crate::stall;
use crate::upstream::UpstreamCtx;
use crate::upstream::body::{BodyBytes, ClientFault, UpstreamBody};
use crate::upstream::h2;
use crate::upstream::idle::IdleStack;
use crate::upstream::sender::{self, Sender};

impl Proxy {
    /// Screens one request (`screen`), reads its body up to the body
    /// buffer, then routes and forwards it, or answers 400/404/408/503 itself.
    pub(crate) async fn handle(
        &self,
        mut req: Request<Incoming>,
        client: &ClientAddr,
        listener: &ListenerKind,
        upgrade: &UpgradeSlot,
    ) -> Response<ProxyBody> {
        if let Err(error) = screen(&mut req, self.opts.underscores_in_headers) {
            return self.refuse_unrouted(&error, req.version());
        }
        // An ACME challenge being validated is answered here, whatever the Host.
        let path = req.uri().path().as_bytes();
        if https::is_acme_challenge(path)
            && let Some(answer) = self.challenge_answer(listener, path)
        {
            return challenge(answer);
        }
        let max_body = if req.body().is_end_stream() {
            None
        } else {
            self.policy_for(listener, || request_host(&req))
                .and_then(|policy| policy.max_body)
        };
        let (head, body) = req.into_parts();
        let opts = &self.opts;
        let counted = head.extensions.get::<BodyBytes>().cloned();
        let read =
            UpstreamBody::read(body, opts.body_buffer, opts.body_timeout, max_body, counted).await;
        let req = Request::from_parts(head, ());
        let mut pool = self.pool_for(listener, || request_host(&req));
        if let Err(ProxyError::HttpsRedirect(port)) = pool {
            // A TLS service's: to https, but for ACME challenges.
            let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
            if https::is_acme_challenge(target.as_bytes()) {
                pool = self.pool_for(&ListenerKind::Tls, || request_host(&req));
            } else {
                let host = request_host(&req).unwrap_or_default();
                return redirect(&https::location(host.as_bytes(), port, target.as_bytes()));
            }
        }
        if let Err(ProxyError::Paused(_)) = pool {
            pool = self
                .after_pause(pool, listener, || request_host(&req))
                .await;
        }
        let logged = self.opts.access_log.is_some();
        match (pool, read) {
            (Ok(pool), Ok((body, fault))) => {
                forward(pool, req.map(|()| body), fault, client, upgrade, logged).await
            }
            (Ok(pool), Err(error)) => refuse(InFlight::start(pool), &error, req.version()).await,
            (Err(error), _) => local_page(
                &error,
                self.page_for(listener, &error, || request_host(&req)),
            ),
        }
    }
}

/// Forwards `req` to `pool` and returns what the client gets.
async fn forward(
    pool: Arc<Pool>,
    req: Request<UpstreamBody>,
    client_fault: Option<Arc<ClientFault>>,
    client: &ClientAddr,
    upgrade_slot: &UpgradeSlot,
    logged: bool,
) -> Response<ProxyBody> {
    let mut guard = InFlight::start(pool);
    let started = logged.then(tokio::time::Instant::now);
    let version = req.version();
    let upgrade = headers::is_upgrade_request(&req);
    let h2c = guard.pool().h2c;
    if h2c && upgrade {
        guard.client_error();
        return local(&ProxyError::UpgradeToH2c);
    }
    let client_upgrade = upgrade.then_some(upgrade_slot);
    let (mut head, body) = req.into_parts();
    let trailers = h2c && grpc::wants_trailers(&head.headers);
    if let Err(error) = headers::to_upstream(&mut head, client, upgrade) {
        return local(&error);
    }
    if h2c && let Err(error) = grpc::to_h2c(&mut head, trailers) {
        return local(&error);
    }
    let replayable = headers::is_replayable(&head.method, body.is_end_stream());
    let mut attempt = HyperAttempt {
        req: Some(Request::from_parts(head, body)),
        replayable,
        response_timeout: guard.pool().ctx.response_timeout,
        client_fault,
        h2c,
    };
    match retry::send(&mut guard, &mut attempt).await {
        Ok((index, sender, response)) => {
            let outcome = started.map(|started| Outcome {
                status: 0,
                response_bytes: 0,
                pool: Some(Arc::clone(guard.pool())),
                instance: Some(guard.pool().endpoint(index).addr),
                upstream: Some(started.elapsed()),
            });
            let mut response = respond(guard, response, sender, client_upgrade, version);
            if let Some(outcome) = outcome {
                response.extensions_mut().insert(outcome);
            }
            response
        }
        Err(
            error @ (ProxyError::ClientBody | ProxyError::BodyTimeout | ProxyError::BodyTooLarge),
        ) => refuse(guard, &error, version).await,
        Err(error) => {
            let instance = guard
                .endpoint_index()
                .map(|index| guard.pool().endpoint(index).addr);
            failures::upstream_failed(&error, guard.pool(), instance);
            guard.failed();
            let page = guard.pool().error_page(error.status().as_u16());
            let outcome = logged.then(|| Outcome {
                instance,
                ..Outcome::local(&error, Some(guard.pool()), page.as_deref())
            });
            let mut response = local_page(&error, page);
            if let Some(outcome) = outcome {
                response.extensions_mut().insert(outcome);
            }
            response
        }
    }
}

/// The client broke or stalled its request body (`error`): counted as a
/// client error of `guard`'s pool and answered 400 or 408. An HTTP/1.1
/// connection closes after it (what is left of the body would be read as the
/// next request), as nginx closes it.
async fn refuse(guard: InFlight, error: &ProxyError, version: Version) -> Response<ProxyBody> {
    tracing::debug!(%error, "request body not read");
    guard.client_error();
    let mut response = local(error);
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // The client's body was dropped unfinished. hyper's HTTP/1.1 connection
    // stops reading it only when it next looks at the body, and nothing
    // wakes it to look (the client sends nothing): one turn of the worker
    // before answering lets it look first, so it closes the connection after
    // this response instead of waiting for the stalled body.
    tokio::task::yield_now().await;
    response
}

/// A 308 to `location` (a TLS service's plain request).
fn redirect(location: &[u8]) -> Response<ProxyBody> {
    let mut response = local(&ProxyError::HttpsRedirect(0));
    response.headers_mut().remove(header::CONTENT_TYPE);
    match HeaderValue::from_bytes(location) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => local(&ProxyError::BadRequest),
    }
}

/// 200 with an ACME key authorization as text/plain.
fn challenge(answer: Bytes) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(answer));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A response written by the proxy itself.
pub(crate) fn local(error: &ProxyError) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(error.body()));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(error.content_type()),
    );
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The proxy's own answer for `error`: the service's error `page` (HTML)
/// when it has one for this status (`Proxy::page_for`, `Pool::error_page`),
/// else teal's text (`local`).
pub(crate) fn local_page(error: &ProxyError, page: Option<Bytes>) -> Response<ProxyBody> {
    let Some(page) = page else {
        return local(error);
    };
    let mut response = Response::new(ProxyBody::text(page));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
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
    /// Set when the client broke or stalled its streamed body: a failed
    /// exchange is then the client's error, not the upstream's.
    client_fault: Option<Arc<ClientFault>>,
    /// The service speaks HTTP/2 to its app: a worker's connection to an
    /// endpoint is shared by its requests (`upstream::h2`).
    h2c: bool,
}

impl HyperAttempt {
    fn client_fault(&self) -> Option<ProxyError> {
        self.client_fault.as_ref().and_then(|fault| fault.error())
    }
}

/// What a failed exchange on an upstream connection was: the app not taking
/// the request within the send timeout (504), or another failure (502).
fn upstream_error(error: hyper::Error) -> ProxyError {
    if stall::is_send_timeout(&error) {
        ProxyError::SendTimeout
    } else {
        ProxyError::Upstream(error)
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

    fn reuse(&self, endpoint: &Endpoint, idle_timeout: Duration) -> Option<Sender> {
        if self.h2c {
            endpoint.h2.shared().map(Sender::Http2)
        } else {
            endpoint.idle.take(idle_timeout)
        }
    }

    async fn open(&self, ctx: &UpstreamCtx, endpoint: &Endpoint) -> Result<Sender, ProxyError> {
        if !self.h2c {
            return sender::connect(ctx, endpoint.addr()).await;
        }
        let sender = h2::connect(ctx, endpoint.addr()).await?;
        endpoint.h2.keep(&sender);
        Ok(Sender::Http2(sender))
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
            Err(failed) => match self.client_fault() {
                Some(error) => return Err(Failure::Fatal(error)),
                None => failed,
            },
        };
        let again = if may_resend {
            failed.take_message().or_else(|| backup.map(rebuild))
        } else {
            None
        };
        match again {
            Some(again) => {
                self.req = Some(again);
                Err(Failure::Resend(upstream_error(failed.into_error())))
            }
            None => Err(Failure::Fatal(upstream_error(failed.into_error()))),
        }
    }
}

fn copy_head(req: &Request<UpstreamBody>) -> (Method, Uri, HeaderMap, Version) {
    (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
        req.version(),
    )
}

fn rebuild(
    (method, uri, headers, version): (Method, Uri, HeaderMap, Version),
) -> Request<UpstreamBody> {
    let mut req = Request::new(UpstreamBody::empty());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    *req.version_mut() = version;
    req
}

/// Turns the upstream response into the client's, keeping `guard` alive until
/// the body ends (or the tunnel closes, for an upgrade).
fn respond(
    guard: InFlight,
    mut response: Response<Incoming>,
    sender: Sender,
    client_upgrade: Option<&UpgradeSlot>,
    version: Version,
) -> Response<ProxyBody> {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            let instance = guard
                .endpoint_index()
                .map(|index| guard.pool().endpoint(index).addr);
            failures::upstream_failed(&ProxyError::UnexpectedUpgrade, guard.pool(), instance);
            guard.failed();
            return local(&ProxyError::UnexpectedUpgrade);
        };
        guard.answered(false);
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        // The upstream connection now belongs to the tunnel.
        drop(sender);
        let (mut parts, _) = response.into_parts();
        let websocket = headers::is_websocket(&parts.headers);
        headers::strip_hop_by_hop(&mut parts.headers, true);
        // The client socket comes once hyper has written this 101 and let go.
        let (give, client) = oneshot::channel();
        if let Ok(mut slot) = client_upgrade.lock() {
            *slot = Some(give);
        }
        // On this worker: a hard stop ends the tunnel with the worker.
        let tasks = guard.pool().ctx.tasks.clone();
        tasks.spawn(tunnel(guard, upstream_upgrade, client, websocket));
        return Response::from_parts(parts, ProxyBody::empty());
    }
    let in_trailers = if guard.pool().h2c {
        match grpc::verdict(status.is_server_error(), response.headers()) {
            Verdict::Now(error) => {
                guard.answered(error);
                false
            }
            Verdict::InTrailers => true,
        }
    } else {
        guard.answered(status.is_server_error());
        false
    };
    let ctx = &guard.pool().ctx;
    let watch = (version == Version::HTTP_2).then(|| (ctx.send_timeout, ctx.tasks.clone()));
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    if in_trailers && version < Version::HTTP_2 {
        grpc::declare_trailers(&mut parts.headers);
    }
    let body = Tracked::new(body, guard, sender, in_trailers);
    let body = match watch {
        // hyper's HTTP/2 asks for frames only while the client's window is open.
        Some((timeout, tasks)) => ProxyBody::Watched(Watched::new(body, timeout, tasks)),
        None => ProxyBody::Upstream(body),
    };
    Response::from_parts(parts, body)
}
