//! The new daemon's half of an upgrade (`teal serve --upgrade`): ask the
//! running daemon on the same state directory for what it holds, start on
//! it, say `Ready`, then serve the client connections it passes on.
//!
//! Nothing the predecessor holds changes until `Ready`: a successor that fails
//! before (a bad config, a crash) only drops the connection, and the
//! predecessor goes on serving.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use teal_proxy::{HandedConn, Listening, Proxy};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use super::channel::FdChannel;
use super::protocol::{Message, PROTOCOL};
use crate::metrics::{Carried, SlotCounts};

/// Why an upgrade could not begin.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("no teal daemon answers on {path}: {error} (start one with `teal serve`)")]
    NoDaemon { path: String, error: std::io::Error },
    #[error("the running daemon refused the upgrade: {0}")]
    Refused(String),
    #[error("the hand-over broke: {0}")]
    Broken(String),
}

/// What the running daemon handed over, before this daemon starts on it.
pub struct Inheritance {
    pub listeners: Vec<Listening>,
    pub admin: Option<std::net::TcpListener>,
    /// The state directory's lock file (already locked).
    pub lock: OwnedFd,
    /// Who handed it over, for the log.
    pub from: String,
    /// The predecessor's metrics counters when it handed over.
    pub counters: Vec<SlotCounts>,
    channel: FdChannel,
}

/// Asks the daemon on the control socket at `control` for its sockets.
pub async fn request(control: &Path) -> Result<Inheritance, UpgradeError> {
    let broken =
        |what: &str, e: &dyn std::fmt::Display| UpgradeError::Broken(format!("{what}: {e}"));
    let stream = UnixStream::connect(control)
        .await
        .map_err(|error| UpgradeError::NoDaemon {
            path: control.display().to_string(),
            error,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| broken("the control connection", &e))?;
    let conn = tokio::spawn(conn.with_upgrades());
    let req = Request::post("/v1/upgrade")
        .header(header::HOST, "teal")
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, PROTOCOL)
        .body(Empty::<Bytes>::new())
        .map_err(|e| broken("the upgrade request", &e))?;
    let response = sender
        .send_request(req)
        .await
        .map_err(|e| broken("the upgrade request", &e))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let text = body.map(|b| String::from_utf8_lossy(&b).trim().to_string());
        return Err(UpgradeError::Refused(match text {
            Ok(text) if !text.is_empty() => api_message(&text),
            _ => format!("HTTP {status}"),
        }));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| broken("upgrading the control connection", &e))?;
    drop(conn);
    let parts = upgraded
        .downcast::<TokioIo<UnixStream>>()
        .map_err(|_| UpgradeError::Broken("the upgraded connection is not a Unix socket".into()))?;
    if !parts.read_buf.is_empty() {
        return Err(UpgradeError::Broken(
            "the daemon spoke before it was asked".into(),
        ));
    }
    let mut channel = FdChannel::new(parts.io.into_inner());
    let hello = Message::Hello {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
    };
    channel
        .send(&hello, &[])
        .await
        .map_err(|e| broken("asking for the sockets", &e))?;
    let (message, mut fds) = channel
        .recv::<Message>()
        .await
        .map_err(|e| broken("receiving the sockets", &e))?
        .ok_or_else(|| UpgradeError::Broken("the daemon closed the hand-over".into()))?;
    let Message::Sockets {
        listeners,
        admin,
        version,
        pid,
        counters,
    } = message
    else {
        return Err(UpgradeError::Broken(format!(
            "expected the sockets, got {message:?}"
        )));
    };
    let wanted =
        listeners.iter().map(|l| l.sockets).sum::<usize>() + usize::from(admin.is_some()) + 1;
    if fds.len() != wanted {
        return Err(UpgradeError::Broken(format!(
            "{} descriptors came, {wanted} were announced",
            fds.len()
        )));
    }
    let lock = fds
        .pop()
        .ok_or_else(|| UpgradeError::Broken("no state lock".into()))?;
    let admin = admin
        .and_then(|_| fds.pop())
        .map(std::net::TcpListener::from);
    let mut fds = fds.into_iter();
    let listeners = listeners
        .into_iter()
        .map(|l| Listening {
            name: l.name,
            addr: l.addr,
            sockets: fds.by_ref().take(l.sockets).collect(),
        })
        .collect();
    Ok(Inheritance {
        listeners,
        admin,
        lock,
        from: format!("teal {version} (pid {pid})"),
        counters,
        channel,
    })
}

/// The message of an API error body, or the body itself.
fn api_message(body: &str) -> String {
    serde_json::from_str::<crate::wire::ApiError>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| body.to_string())
}

impl Inheritance {
    /// Takes the admin listener out (the metrics endpoint serves it).
    pub fn take_admin(&mut self, addr: SocketAddr) -> Option<std::net::TcpListener> {
        let admin = self.admin.take()?;
        let same = admin.local_addr().ok()? == addr || addr.port() == 0;
        same.then_some(admin)
    }

    /// This daemon serves: the predecessor may leave. From now on the client
    /// connections it passes on are served by `proxy` (or closed, without one);
    /// its final counters go to `carried`. `then` runs once the predecessor
    /// is done (it has stopped what it did not hand over) or gone.
    pub async fn ready(
        mut self,
        proxy: Option<Arc<Proxy>>,
        carried: Arc<Carried>,
        then: impl Future<Output = ()> + Send + 'static,
    ) -> Result<JoinHandle<()>, UpgradeError> {
        if let Some(proxy) = &proxy {
            proxy.start_accepting();
        }
        let ready = Message::Ready {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        };
        self.channel
            .send(&ready, &[])
            .await
            .map_err(|e| UpgradeError::Broken(format!("telling {} to leave: {e}", self.from)))?;
        let from = self.from;
        let channel = self.channel;
        Ok(tokio::spawn(async move {
            receive(channel, proxy, carried, from).await;
            then.await;
        }))
    }
}

/// Serves the connections the predecessor passes on, until `Done` (its final
/// counters go to `carried`) or the end of the channel.
async fn receive(
    mut channel: FdChannel,
    proxy: Option<Arc<Proxy>>,
    carried: Arc<Carried>,
    from: String,
) {
    let mut received = 0u64;
    loop {
        match channel.recv::<Message>().await {
            Ok(Some((Message::Conn { listener, client }, mut fds))) => {
                let (Some(fd), Some(proxy)) = (fds.pop(), proxy.as_ref()) else {
                    continue;
                };
                received += 1;
                proxy.serve_handed(HandedConn {
                    listener,
                    stream: std::net::TcpStream::from(fd),
                    client,
                });
            }
            Ok(Some((
                Message::Done {
                    connections,
                    counters,
                },
                _,
            ))) => {
                carried.replace(counters);
                tracing::info!(%from, connections, received, "the previous daemon handed over and left");
                return;
            }
            Ok(Some((other, _))) => {
                tracing::warn!(%from, ?other, "unexpected message during a hand-over");
            }
            Ok(None) => {
                tracing::info!(%from, received, "the previous daemon is gone");
                return;
            }
            Err(error) => {
                tracing::warn!(%from, %error, "the hand-over channel broke");
                return;
            }
        }
    }
}
