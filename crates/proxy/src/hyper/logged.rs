//! hyper's path and the access log: the request id (the client's when sane,
//! else one made here when there is an access log, passed to the app as
//! `x-request-id`), and a request's line, written when its response body is
//! done (`ConnBody` counts the bytes and drops this). A body without a
//! length is counted as it is forwarded (`BodyBytes`).

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, Version};
use tokio::time::Instant;

use crate::access::{AccessLog, Line, Outcome, request_id};
use crate::client::ClientAddr;
use crate::routes::request_host;
use crate::upstream::body::BodyBytes;

static REQUEST_ID: HeaderName = HeaderName::from_static(request_id::HEADER);

/// Drops a client's `x-request-id` that is not sane (as the lean path does).
pub(crate) fn screen_request_id<B>(req: &mut Request<B>) {
    if let Some(id) = req.headers().get(&REQUEST_ID)
        && !request_id::is_sane(id.as_bytes())
    {
        req.headers_mut().remove(&REQUEST_ID);
    }
}

/// One request's line, written when dropped.
pub(crate) struct Pending {
    log: Arc<AccessLog>,
    started: Instant,
    client: ClientAddr,
    method: http::Method,
    host: String,
    path: String,
    protocol: &'static str,
    request_id: HeaderValue,
    /// The request's `Content-Length`, or 0.
    request_bytes: u64,
    /// The body's bytes as they arrived (a chunked or HTTP/2 body's length).
    body: BodyBytes,
    outcome: Outcome,
    /// Body bytes handed to hyper for the client so far.
    pub(crate) sent: u64,
}

impl Pending {
    /// Takes what the line needs from `req` before it is forwarded, and
    /// gives it a request id if it has none.
    pub(crate) fn start<B>(
        log: &Arc<AccessLog>,
        req: &mut Request<B>,
        client: &ClientAddr,
    ) -> Box<Pending> {
        screen_request_id(req);
        let request_id = match req.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let made = request_id::generate();
                let id = HeaderValue::from_bytes(&made).unwrap_or(HeaderValue::from_static(""));
                req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let request_bytes = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let body = BodyBytes::default();
        req.extensions_mut().insert(body.clone());
        Box::new(Pending {
            log: Arc::clone(log),
            started: Instant::now(),
            client: client.clone(),
            method: req.method().clone(),
            host: request_host(req).unwrap_or_default().to_owned(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
            protocol: protocol(req.version()),
            request_id,
            request_bytes,
            body,
            outcome: Outcome::default(),
            sent: 0,
        })
    }

    /// Notes the response's status, and where it came from when forwarded.
    pub(crate) fn answered<B>(&mut self, response: &mut Response<B>) {
        self.outcome = response
            .extensions_mut()
            .remove::<Outcome>()
            .unwrap_or_default();
        self.outcome.status = response.status().as_u16();
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.log.record(&Line {
            pool: self.outcome.pool.as_deref().map(|pool| &pool.label),
            instance: self.outcome.instance,
            client: self.client.text(),
            method: self.method.as_str().as_bytes(),
            host: self.host.as_bytes(),
            path: self.path.as_bytes(),
            protocol: self.protocol,
            status: self.outcome.status,
            request_bytes: self.request_bytes.max(self.body.get()),
            response_bytes: self.sent,
            total: self.started.elapsed(),
            upstream: self.outcome.upstream,
            request_id: self.request_id.as_bytes(),
        });
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
