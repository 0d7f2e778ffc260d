//! Switches under load (teal rollbacks vs nginx reloads, failures counted by the
//! load client) and switch latency: from the switch decision to the first answer
//! from the new slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use teal::router::{Backend, Router};
use teal::slot::Slot;
use teal::spec::{DrainSpec, HealthSpec, RuntimeSpec, ServiceSpec};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The version that answered one GET on `conn` (reconnecting when closed).
pub struct Poller {
    target: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
}

impl Poller {
    pub fn new(target: SocketAddr) -> Self {
        Poller {
            target,
            sender: None,
        }
    }

    pub async fn version(&mut self) -> Option<String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.target).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut()?;
        if sender.ready().await.is_err() {
            self.sender = None;
            return None;
        }
        let req = http::Request::get("/")
            .header("host", "bench")
            .body(Empty::new())
            .ok()?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                return None;
            }
        };
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        v["version"].as_str().map(str::to_string)
    }

    /// Polls until `want` answers (bounded); returns when it did.
    pub async fn until(&mut self, want: &str, limit: Duration) -> Option<Instant> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.version().await.as_deref() == Some(want) {
                return Some(Instant::now());
            }
        }
        None
    }
}

/// Switch latency of teal's builtin proxy, in-process: `set_routes` between two
/// running backends, then the first answer from the new one on a keep-alive
/// connection. Returns the latencies of `rounds` switches.
pub async fn teal_latency(
    a: (SocketAddr, String),
    b: (SocketAddr, String),
    rounds: usize,
) -> anyhow::Result<Vec<Duration>> {
    let shutdown = CancellationToken::new();
    let proxy =
        teal_proxy::Proxy::bind(SocketAddr::from(([127, 0, 0, 1], 0)), shutdown.clone()).await?;
    let router: Arc<dyn Router> = proxy.clone();
    let target = router.listen_addrs()[0];
    let spec = spec();
    let backend = |addr: SocketAddr, version: &str, slot: Slot| Backend {
        slot,
        version: version.to_string(),
        addrs: vec![addr],
    };
    router
        .set_routes(&spec, Some(backend(a.0, &a.1, Slot::Blue)), None)
        .await?;
    let mut poller = Poller::new(target);
    poller
        .until(&a.1, Duration::from_secs(5))
        .await
        .context("first backend answers")?;
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let (addr, version, slot) = if round % 2 == 0 {
            (b.0, &b.1, Slot::Green)
        } else {
            (a.0, &a.1, Slot::Blue)
        };
        let decided = Instant::now();
        router
            .set_routes(&spec, Some(backend(addr, version, slot)), None)
            .await?;
        let seen = poller
            .until(version, Duration::from_secs(5))
            .await
            .context("new backend answers")?;
        latencies.push(seen - decided);
    }
    shutdown.cancel();
    proxy.wait_closed(Duration::from_secs(2)).await;
    Ok(latencies)
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "bench".into(),
        runtime: RuntimeSpec::Process {
            command: vec!["unused".into()],
        },
        instances: 1,
        version: None,
        hosts: Vec::new(),
        preview: None,
        env: Default::default(),
        secrets: Default::default(),
        workdir: std::env::temp_dir(),
        health: HealthSpec::default(),
        drain: DrainSpec::default(),
        hooks: Default::default(),
        verify: None,
        tls: None,
        acme: false,
        policy: Default::default(),
        protocol: Default::default(),
    }
}

/// Median and maximum of a set of durations.
pub fn median_max(mut xs: Vec<Duration>) -> (Duration, Duration) {
    xs.sort();
    let median = xs.get(xs.len() / 2).copied().unwrap_or_default();
    let max = xs.last().copied().unwrap_or_default();
    (median, max)
}
