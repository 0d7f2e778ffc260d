//! The tunnel of an upgraded connection (a websocket, or another protocol a
//! `101` switched to): bytes both ways between the client and the app until
//! either side is done, holding the request's in-flight claim (the slot's
//! drain counts it) and its place among the slot's upgraded connections.
//!
//! At a drain's deadline the slot's tunnels are told to close
//! (`pool::upgraded`). After its random offset within the spread, a websocket
//! tunnel finishes the frame it is relaying in each direction (`frames`
//! follows the frame boundaries), sends a close frame with code 1001 "going
//! away" to both sides (masked toward the app, as a client's frames are),
//! stops relaying, waits up to `CLOSE_WAIT` for each side's close frame in
//! reply, then shuts the sockets. A tunnel that is not a websocket (or whose
//! bytes are not WebSocket framing) cannot be told in its protocol: its
//! sockets are closed at that moment.

mod frames;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::client::ClientIo;
use crate::pool::inflight::InFlight;
use crate::pool::upgraded::{CLOSE_WAIT, CloseOrder};
use frames::{Frames, close_frame};

/// Bytes read at a time in each direction.
const BUF: usize = 16 * 1024;

/// Beyond `CLOSE_WAIT`, how long a closing tunnel may take for writes to a
/// slow peer before it is dropped anyway.
const CLOSE_SLACK: Duration = Duration::from_millis(500);

/// Which peer a direction writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toward {
    App,
    Client,
}

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// A side closed or failed while relaying: the whole tunnel ends (like
    /// nginx, a peer that never closes its half must not hold the slot's
    /// drain open).
    Relayed,
    /// It finished closing on the proxy's order.
    Closed,
}

/// Runs the tunnel once hyper has given up both sockets; the in-flight claim
/// ends with it. `websocket` says whether the app switched to `websocket`.
pub(super) async fn tunnel(
    guard: InFlight,
    upstream: OnUpgrade,
    client: oneshot::Receiver<ClientIo>,
    websocket: bool,
) {
    let (upstream, client) = tokio::join!(upstream, client);
    let client = client.map_err(|_| "the client connection ended before its upgrade");
    match (
        upstream.map_err(|e| e.to_string()),
        client.map_err(str::to_string),
    ) {
        (Ok(upstream), Ok(client)) => {
            let (claim, order) = guard.pool().in_flight().upgraded().open();
            relay(client, TokioIo::new(upstream), order, websocket).await;
            drop(claim);
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "upgrade failed");
        }
    }
    drop(guard);
}

/// Relays until a side ends, or closes both sides on a close order.
async fn relay<C, U>(
    client: C,
    upstream: U,
    mut order: watch::Receiver<Option<CloseOrder>>,
    websocket: bool,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let closing = CancellationToken::new();
    let to_app = pump(
        &mut client_read,
        &mut upstream_write,
        Toward::App,
        websocket,
        &closing,
    );
    let to_client = pump(
        &mut upstream_read,
        &mut client_write,
        Toward::Client,
        websocket,
        &closing,
    );
    let both = finish(to_app, to_client);
    tokio::pin!(both);
    tokio::select! {
        () = &mut both => return,
        () = ordered(&mut order) => closing.cancel(),
    }
    tracing::debug!(
        websocket,
        "closing an upgraded connection at the drain deadline"
    );
    if tokio::time::timeout(CLOSE_WAIT + CLOSE_SLACK, both)
        .await
        .is_err()
    {
        tracing::debug!("an upgraded connection did not finish closing in time");
    }
}

/// Both directions: the first to end while relaying ends the tunnel; one that
/// closed on order lets the other finish closing too.
async fn finish(a: impl Future<Output = Done>, b: impl Future<Output = Done>) {
    tokio::pin!(a, b);
    let (done, a_left) = tokio::select! {
        done = &mut a => (done, false),
        done = &mut b => (done, true),
    };
    if done == Done::Closed {
        if a_left {
            a.await;
        } else {
            b.await;
        }
    }
}

/// Waits for a close order, then for this tunnel's random offset within its
/// spread. Never returns when the slot's counter is gone.
async fn ordered(order: &mut watch::Receiver<Option<CloseOrder>>) {
    loop {
        if order.changed().await.is_err() {
            return std::future::pending().await;
        }
        let given = *order.borrow_and_update();
        if let Some(CloseOrder { spread }) = given {
            let thousandths = (random() % 1000) as u32;
            tokio::time::sleep(spread * thousandths / 1000).await;
            return;
        }
    }
}

/// One direction: `from`'s bytes to `to`, following the frames of a
/// websocket; on `closing`, the close described in the module doc.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    toward: Toward,
    websocket: bool,
    closing: &CancellationToken,
) -> Done
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = websocket.then(Frames::default);
    let mut buf = vec![0; BUF];
    loop {
        let n = tokio::select! {
            biased;
            () = closing.cancelled() => break,
            read = from.read(&mut buf) => match read {
                Ok(n) if n > 0 => n,
                Ok(_) | Err(_) => {
                    let _ = to.shutdown().await;
                    return Done::Relayed;
                }
            },
        };
        if let Some(frames) = &mut frames {
            frames.feed(&buf[..n], false);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return Done::Relayed;
        }
    }
    // Closing. Not WebSocket framing: the sockets close when the tunnel ends.
    let Some(mut frames) = frames.filter(|f| !f.lost()) else {
        return Done::Closed;
    };
    // `from` already sent its close (relayed to `to`): the close handshake
    // is under way without the proxy.
    if frames.saw_close() {
        return Done::Closed;
    }
    let deadline = Instant::now() + CLOSE_WAIT;
    // Finish relaying the frame in progress; what follows its end is kept.
    let mut after = Vec::new();
    while !frames.at_boundary() {
        let n = match timeout_at(deadline, from.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Done::Closed,
        };
        let k = frames.feed(&buf[..n], true);
        if frames.lost() || to.write_all(&buf[..k]).await.is_err() {
            return Done::Closed;
        }
        after = buf[k..n].to_vec();
    }
    let mask = (toward == Toward::App).then(|| (random() as u32).to_be_bytes());
    let sent = timeout_at(deadline, async {
        to.write_all(&close_frame(mask)).await?;
        to.flush().await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return Done::Closed;
    }
    // Nothing more is relayed to `to`; `from`'s close frame in reply is
    // awaited (its other frames are dropped).
    frames.feed(&after, false);
    while !frames.saw_close() && !frames.lost() {
        match timeout_at(deadline, from.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                frames.feed(&buf[..n], false);
            }
            _ => break,
        }
    }
    let _ = timeout_at(deadline + CLOSE_SLACK, to.shutdown()).await;
    Done::Closed
}

/// A fresh random number (std's per-process random hash keys, stepped per
/// call): for spreading closes and for mask keys, nothing secret.
fn random() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}
