//! Opening one load connection: TCP, then TLS when the load asks for it, then
//! HTTP/1.1, or HTTP/2 when TLS's ALPN chose `h2`.
//!
//! A connection is opened for a request and counted against it when opening
//! fails: there is no retry here either.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::report::ErrorKind;
use super::worker::{classify_hyper, classify_io};

/// TLS for every connection of a load.
#[derive(Debug, Clone)]
pub struct LoadTls {
    /// The client's settings: the roots it trusts, the ALPN protocols it offers
    /// (`h2` first makes the load speak HTTP/2 where the server agrees) and
    /// its session resumption (rustls resumes by default).
    pub config: Arc<rustls::ClientConfig>,
    /// The name sent as SNI and checked against the server's certificate.
    pub server_name: ServerName<'static>,
}

/// A connection ready for requests, one at a time.
pub(super) enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// Waits until the connection can take a request; an error means the
    /// server closed it (or it broke) while it was idle.
    pub async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Sender::Http1(sender) => sender.ready().await,
            Sender::Http2(sender) => sender.ready().await,
        }
    }

    pub async fn send(
        &mut self,
        request: Request<Empty<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Sender::Http1(sender) => sender.send_request(request).await,
            Sender::Http2(sender) => sender.send_request(request).await,
        }
    }

    /// `GET path` for `host`, in this connection's protocol: HTTP/1.1 with a
    /// Host header (and `Connection: close` when `close`), HTTP/2 with the
    /// `https` scheme and `host` as `:authority` (it refuses connection headers:
    /// the worker drops the connection instead).
    pub fn request(
        &self,
        host: &str,
        path: &str,
        close: bool,
    ) -> Result<Request<Empty<Bytes>>, http::Error> {
        let request = match self {
            Sender::Http1(_) => {
                let request = Request::get(path).header(HOST, host);
                if close {
                    request.header(CONNECTION, "close")
                } else {
                    request
                }
            }
            Sender::Http2(_) => Request::get(format!("https://{host}{path}")),
        };
        request.header(USER_AGENT, "teal-load").body(Empty::new())
    }
}

/// A new connection to `target`, over TLS when `tls` is set; true when its
/// TLS handshake resumed a session.
pub(super) async fn connect(
    target: SocketAddr,
    tls: Option<&LoadTls>,
) -> Result<(Sender, bool), ErrorKind> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| classify_io(&e))?;
    // Small requests must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok((http1_over(stream).await?, false));
    };
    let stream = TlsConnector::from(Arc::clone(&tls.config))
        .connect(tls.server_name.clone(), stream)
        .await
        .map_err(|e| classify_handshake(&e))?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    let sender = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| classify_hyper(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Sender::Http2(sender)
    } else {
        http1_over(stream).await?
    };
    Ok((sender, resumed))
}

async fn http1_over<S>(stream: S) -> Result<Sender, ErrorKind>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| classify_hyper(&e))?;
    // The connection task ends when the server closes or the worker drops
    // `sender`; its errors also reach the request that was on it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Sender::Http1(sender))
}

/// A failed TLS handshake: what TLS refused (a certificate, a name, a
/// protocol), or the transport error under it.
fn classify_handshake(e: &std::io::Error) -> ErrorKind {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ErrorKind::Handshake(tls.to_string()),
        None => classify_io(e),
    }
}
