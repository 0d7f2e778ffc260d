//! The CLI side of the control API: one HTTP/1.1 request per call over the Unix
//! socket; streamed actions come back as a stream of [`Event`]s.

use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::state::{DeployLock, GateChange};
use crate::wire::{
    ActionRequest, ApiError, DeployRequest, DiscardRequest, ErrorKind, Event, GateAnswer, History,
    LEASE_HEADER, LockGrant, LockRequest, LogPick, Status, Unlocked, query_escape,
};

/// Why a call to the daemon failed. Each message carries its cause; none is
/// also returned from `source()`, so `{:#}` prints it once.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the teal daemon at {}: {error} (is `teal serve` running with this state_dir?)", path.display())]
    Unreachable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("talking to the daemon: {}", with_causes(.0))]
    Transport(hyper::Error),
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
    /// The daemon refused or failed the request.
    #[error("{0}")]
    Api(ApiError),
}

impl From<hyper::Error> for ClientError {
    fn from(error: hyper::Error) -> Self {
        ClientError::Transport(error)
    }
}

/// `error` and its causes, `: `-separated. hyper keeps the I/O error that
/// explains its own in `source()`; this message is where it is printed.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl ClientError {
    /// The API's classification, when the daemon answered with one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Api(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// A handle on the daemon's control socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// The deploy-lock lease sent with every request, once this client holds one.
    lease: Option<String>,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Client {
            socket: socket.to_path_buf(),
            lease: None,
        }
    }

    /// This client, proving it holds the deploy lock with `lease` on every request.
    pub fn with_lease(mut self, lease: Option<String>) -> Self {
        self.lease = lease;
        self
    }

    /// The lease this client sends, if it holds a deploy lock.
    pub fn lease(&self) -> Option<&str> {
        self.lease.as_deref()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Takes the deploy lock of `service`; its lease is in the grant.
    pub async fn lock(&self, service: &str, req: &LockRequest) -> Result<LockGrant, ClientError> {
        let body = serde_json::to_vec(req).unwrap_or_default();
        let path = format!("/v1/services/{service}/lock");
        let answer = self.stream(Method::POST, &path, body).await?;
        read_json(answer).await
    }

    /// Renews the deploy lock held with this client's lease: it lapses one
    /// lease time from now. Answers the lock as others see it.
    pub async fn renew_lock(&self, service: &str) -> Result<DeployLock, ClientError> {
        let path = format!("/v1/services/{service}/lock");
        let answer = self.stream(Method::PUT, &path, Vec::new()).await?;
        read_json(answer).await
    }

    /// Releases the deploy lock held with this client's lease, or any with `force`.
    pub async fn unlock(&self, service: &str, force: bool) -> Result<Unlocked, ClientError> {
        let path = format!("/v1/services/{service}/lock?force={}", u8::from(force));
        let answer = self.stream(Method::DELETE, &path, Vec::new()).await?;
        read_json(answer).await
    }

    /// Stops the staged slot of `service` without switching.
    pub async fn discard(
        &self,
        service: &str,
        req: &DiscardRequest,
    ) -> Result<EventStream, ClientError> {
        let body = serde_json::to_vec(req).unwrap_or_default();
        self.stream(
            Method::POST,
            &format!("/v1/services/{service}/discard"),
            body,
        )
        .await
        .map(EventStream::new)
    }

    pub async fn ping(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/ping").await
    }

    pub async fn status(&self, service: Option<&str>) -> Result<Status, ClientError> {
        match service {
            Some(name) => self.get_json(&format!("/v1/status?service={name}")).await,
            None => self.get_json("/v1/status").await,
        }
    }

    pub async fn history(&self, service: &str) -> Result<History, ClientError> {
        self.get_json(&format!("/v1/services/{service}/history"))
            .await
    }

    pub async fn deploy(&self, req: &DeployRequest) -> Result<EventStream, ClientError> {
        self.stream(
            Method::POST,
            "/v1/deploy",
            serde_json::to_vec(req).unwrap_or_default(),
        )
        .await
        .map(EventStream::new)
    }

    pub async fn promote(&self, service: &str) -> Result<EventStream, ClientError> {
        self.stream(
            Method::POST,
            &format!("/v1/services/{service}/promote"),
            Vec::new(),
        )
        .await
        .map(EventStream::new)
    }

    /// `teal stop`: stops every instance of the service.
    pub async fn stop(&self, service: &str) -> Result<EventStream, ClientError> {
        self.stream(
            Method::POST,
            &format!("/v1/services/{service}/stop"),
            Vec::new(),
        )
        .await
        .map(EventStream::new)
    }

    pub async fn rollback(
        &self,
        service: &str,
        req: &ActionRequest,
    ) -> Result<EventStream, ClientError> {
        let body = serde_json::to_vec(req).unwrap_or_default();
        self.stream(
            Method::POST,
            &format!("/v1/services/{service}/rollback"),
            body,
        )
        .await
        .map(EventStream::new)
    }

    /// `teal maintenance`, `teal pause`, `teal resume`: one gate change.
    pub async fn change_gate(
        &self,
        service: &str,
        change: &GateChange,
    ) -> Result<GateAnswer, ClientError> {
        let body = serde_json::to_vec(change).unwrap_or_default();
        let path = format!("/v1/services/{service}/gate");
        read_json(self.stream(Method::POST, &path, body).await?).await
    }

    /// Instance output as raw text chunks.
    pub async fn logs(
        &self,
        service: &str,
        pick: &LogPick,
        follow: bool,
    ) -> Result<Incoming, ClientError> {
        let mut path = format!("/v1/services/{service}/logs?follow={}", u8::from(follow));
        match pick {
            LogPick::Live => {}
            LogPick::Slot(slot) => path.push_str(&format!("&slot={slot}")),
            LogPick::Version(v) => path.push_str(&format!("&version={}", query_escape(v))),
            LogPick::Previous => path.push_str("&previous=1"),
        }
        self.stream(Method::GET, &path, Vec::new()).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        read_json(self.stream(Method::GET, path, Vec::new()).await?).await
    }

    /// Sends one request; a non-2xx answer becomes `ClientError::Api`.
    async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Incoming, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|error| ClientError::Unreachable {
                    path: self.socket.clone(),
                    error,
                })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "teal")
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(lease) = &self.lease {
            request = request.header(LEASE_HEADER, lease);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = sender.send_request(request).await?;
        if response.status().is_success() {
            return Ok(response.into_body());
        }
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Err(match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(e) => ClientError::Api(e),
            Err(_) if status == StatusCode::NOT_FOUND => ClientError::Protocol(format!(
                "the daemon does not know {path} (is it an older teal?)"
            )),
            Err(_) => ClientError::Protocol(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            )),
        })
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming) -> Result<T, ClientError> {
    let bytes = body.collect().await?.to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// NDJSON events of a streamed action, decoded line by line.
pub struct EventStream {
    body: Incoming,
    buf: BytesMut,
}

impl EventStream {
    fn new(body: Incoming) -> Self {
        EventStream {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next event, or None when the daemon closed the stream.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(format!("bad event: {e}")));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(mut data) = frame?.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk().len();
                            self.buf.extend_from_slice(data.chunk());
                            data.advance(chunk);
                        }
                    }
                }
            }
        }
    }
}
