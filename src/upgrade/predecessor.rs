//! The running daemon's half of an upgrade: `POST /v1/upgrade` on its control
//! socket, from the successor (`teal serve --upgrade`).
//!
//! 1. Every service's action lock is taken, so no deploy, promote or rollback
//!    runs across the hand-over (a busy service refuses the upgrade: 409).
//! 2. The connection becomes a descriptor channel (101); once the successor
//!    says `Hello` on it, it gets copies of the listening sockets (the builtin
//!    proxy's; none with the nginx router, whose nginx holds its own), the
//!    admin listener and the state lock. This daemon goes on serving as if
//!    nothing happened.
//! 3. Only when the successor says `Ready` does this daemon leave: its proxy
//!    stops accepting and hands every HTTP/1.1 client connection over at its
//!    next request boundary; when the proxy is closed and the instances it
//!    does not hand over are stopped, `Done` is sent (with
//!    nginx there is nothing to pass on: nginx serves on, and the successor
//!    has adopted it). If the successor goes away before `Ready` (a bad
//!    config, a crash, a binary that cannot run), the locks are released and
//!    nothing changed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use teal_proxy::{HandedConn, Proxy};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::channel::FdChannel;
use super::protocol::{ListenerSockets, Message, PROTOCOL};
use crate::deploy::{AllActions, Deployer};
use crate::metrics::Carried;
use crate::state::StateCell;
use crate::wire::{ApiError, ErrorKind};

/// What a running daemon can hand to a successor.
pub struct Predecessor {
    /// The builtin proxy: its sockets and connections are handed over. None
    /// with the nginx router: nginx keeps the sockets and the connections, and
    /// only the state lock and the admin listener move.
    pub proxy: Option<Arc<Proxy>>,
    /// A copy of the admin (`/metrics`) listener, when there is one.
    pub admin: Option<OwnedFd>,
    pub state: Arc<StateCell>,
    pub deployer: Arc<Deployer>,
    /// The metrics counters carried so far (a successor starts from them).
    pub carried: Arc<Carried>,
    /// Fired when a successor said `Ready`: the daemon leaves.
    pub leave: CancellationToken,
    /// One upgrade at a time.
    busy: AtomicBool,
    /// Sends the handed connections and then `Done`; awaited by `finish`.
    forwarder: Mutex<Option<JoinHandle<()>>>,
}

impl Predecessor {
    pub fn new(
        proxy: Option<Arc<Proxy>>,
        admin: Option<OwnedFd>,
        state: Arc<StateCell>,
        deployer: Arc<Deployer>,
        carried: Arc<Carried>,
    ) -> Predecessor {
        Predecessor {
            proxy,
            admin,
            state,
            deployer,
            carried,
            leave: CancellationToken::new(),
            busy: AtomicBool::new(false),
            forwarder: Mutex::new(None),
        }
    }

    /// Answers `POST /v1/upgrade`: 101 and the hand-over on the upgraded
    /// connection, or a refusal.
    pub fn accept<B: Default>(
        self: &Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<B>, ApiError> {
        let asked = req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes() == PROTOCOL.as_bytes());
        if !asked {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                format!("an upgrade speaks {PROTOCOL}"),
            ));
        }
        if self.leave.is_cancelled() || self.busy.swap(true, Ordering::AcqRel) {
            return Err(ApiError::new(
                ErrorKind::Busy,
                "an upgrade of this daemon is already in progress",
            ));
        }
        let guards = match self.deployer.lock_all_actions() {
            Ok(guards) => guards,
            Err(service) => {
                self.busy.store(false, Ordering::Release);
                return Err(ApiError::new(
                    ErrorKind::Busy,
                    format!(
                        "an action on {service} is in progress: upgrade teal once it has ended"
                    ),
                ));
            }
        };
        let me = Arc::clone(self);
        let proxy = self.proxy.clone();
        tokio::spawn(async move {
            let ended = match hyper::upgrade::on(req).await {
                Ok(upgraded) => match upgraded.downcast::<TokioIo<UnixStream>>() {
                    Ok(parts) if parts.read_buf.is_empty() => {
                        me.hand_over(FdChannel::new(parts.io.into_inner()), proxy, guards)
                            .await
                    }
                    _ => {
                        Err("the upgraded control connection is not a bare Unix socket".to_string())
                    }
                },
                Err(error) => Err(format!("the control connection did not upgrade: {error}")),
            };
            if let Err(error) = ended {
                tracing::warn!("upgrade abandoned, this daemon goes on serving: {error}");
                me.busy.store(false, Ordering::Release);
            }
        });
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
        headers.insert(header::UPGRADE, header::HeaderValue::from_static(PROTOCOL));
        Ok(response)
    }

    /// Sends the sockets, waits for `Ready`, then starts leaving. An error
    /// before `Ready` leaves everything as it was.
    async fn hand_over(
        &self,
        mut channel: FdChannel,
        proxy: Option<Arc<Proxy>>,
        guards: AllActions,
    ) -> Result<(), String> {
        let (version, pid) = successor_says(&mut channel, "Hello").await?;
        tracing::info!(%version, pid, "a successor asks to take over");
        let listening = match &proxy {
            Some(proxy) => proxy
                .listening_sockets()
                .map_err(|e| format!("copying the listening sockets: {e}"))?,
            None => Vec::new(),
        };
        let lock = self
            .state
            .store()
            .lock_copy()
            .map_err(|e| format!("copying the state lock: {e}"))?;
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        for listener in &listening {
            fds.extend(listener.sockets.iter().map(AsFd::as_fd));
        }
        fds.extend(self.admin.as_ref().map(AsFd::as_fd));
        fds.push(lock.as_fd());
        let sockets = Message::Sockets {
            listeners: listening
                .iter()
                .map(|l| ListenerSockets {
                    name: l.name.clone(),
                    addr: l.addr,
                    sockets: l.sockets.len(),
                })
                .collect(),
            admin: self.admin.as_ref().and_then(|fd| {
                let copy = fd.try_clone().ok()?;
                std::net::TcpListener::from(copy).local_addr().ok()
            }),
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            counters: self.carried.totals(&self.deployer),
        };
        channel
            .send(&sockets, &fds)
            .await
            .map_err(|e| format!("sending the sockets: {e}"))?;
        drop(fds);
        let (version, pid) = successor_says(&mut channel, "Ready").await?;
        tracing::info!(%version, pid, "successor ready: handing over");
        // From here on the successor serves: this daemon only finishes what it
        // has and passes the rest on.
        self.state.store().keep_lock_for_successor();
        let (give, take) = mpsc::unbounded_channel();
        // Without the builtin proxy no connection comes: `give` goes at once,
        // and `Done` follows.
        match &proxy {
            Some(proxy) => proxy.hand_over(give),
            None => drop(give),
        }
        let (carried, deployer) = (Arc::clone(&self.carried), Arc::clone(&self.deployer));
        let totals = move || carried.totals(&deployer);
        let forwarder = tokio::spawn(forward(channel, take, guards, totals));
        *self.forwarder.lock().unwrap_or_else(|e| e.into_inner()) = Some(forwarder);
        self.leave.cancel();
        Ok(())
    }

    /// After the proxy closed (every connection handed over or finished):
    /// sends `Done` and waits until it is out.
    pub async fn finish(&self) {
        if let Some(proxy) = &self.proxy {
            proxy.end_hand_over();
        }
        let forwarder = self
            .forwarder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
    }
}

/// The successor's next message, which must be `Hello` or `Ready` (`what`):
/// its version and pid.
async fn successor_says(channel: &mut FdChannel, what: &str) -> Result<(String, u32), String> {
    match channel.recv::<Message>().await {
        Ok(Some((Message::Hello { version, pid }, _))) if what == "Hello" => Ok((version, pid)),
        Ok(Some((Message::Ready { version, pid }, _))) if what == "Ready" => Ok((version, pid)),
        Ok(Some((other, _))) => Err(format!("the successor said {other:?}, not {what}")),
        Ok(None) => Err(format!("the successor went away before {what}")),
        Err(e) => Err(format!("reading from the successor: {e}")),
    }
}

/// Passes each handed connection to the successor, then `Done` with the
/// final counters (`totals`). The action locks are held until then: nothing
/// changes state on this side any more.
async fn forward(
    mut channel: FdChannel,
    mut take: mpsc::UnboundedReceiver<HandedConn>,
    guards: AllActions,
    totals: impl FnOnce() -> Vec<crate::metrics::SlotCounts>,
) {
    let mut sent = 0u64;
    while let Some(conn) = take.recv().await {
        let message = Message::Conn {
            listener: conn.listener,
            client: conn.client,
        };
        match channel.send(&message, &[conn.stream.as_fd()]).await {
            Ok(()) => sent += 1,
            Err(error) => tracing::warn!(%error, "a connection could not be handed over: closed"),
        }
    }
    if let Err(error) = channel
        .send(
            &Message::Done {
                connections: sent,
                counters: totals(),
            },
            &[],
        )
        .await
    {
        tracing::warn!(%error, "telling the successor the hand-over is done");
    }
    tracing::info!(connections = sent, "hand-over done");
    drop(guards);
}
