//! Benchmark: the zero-drop run for each router side by side, with switch latency.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench_switch
//! ```
//!
//! For each router (builtin; nginx with teal's default of no client keep-alive;
//! nginx with client keep-alive on) it starts an in-process daemon, deploys v0
//! (two demo-app instances per slot), starts the zero-drop load of the tests (8
//! keep-alive clients and 2 new-connection clients, 1 ms pause, no retries) and
//! a prober, then runs 20 deploys that alternate slots. It prints requests,
//! failures by kind, and per switch:
//!
//! - **switch latency**: from the switch decision (the deployer's `switch` step,
//!   timed in-process by a tracing layer when the deployer logs it, right before
//!   it calls `Router::set_routes`) to the first response from the new version
//!   seen by a prober (one connection, back-to-back GETs, reconnecting when the
//!   proxy closes it);
//! - **switch step**: from that decision to the `persist` step, i.e. how long
//!   `set_routes` took (for nginx: write, `nginx -t`, rename, reload and its
//!   confirmation that the old workers stopped taking requests).
//!
//! It measures; it asserts nothing but that the run happened.

// The tests' helpers: more than this benchmark uses.
#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use support::*;
use teal::load::{Load, LoadReport, LoadSpec};
use teal::spec::{Config, ServiceSpec};
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

const SWITCHES: usize = 20;

/// Version changes the prober saw: (when the response arrived, version).
type Changes = Arc<Mutex<Vec<(Instant, String)>>>;

async fn prober(target: SocketAddr, changes: Changes, stop: CancellationToken) {
    let mut sender = None;
    let mut last = String::new();
    while !stop.is_cancelled() {
        if sender.is_none() {
            let Ok(stream) = tokio::net::TcpStream::connect(target).await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let Ok((s, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                continue;
            };
            tokio::spawn(conn);
            sender = Some(s);
        }
        let s: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>> =
            sender.as_mut().unwrap();
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let req = http::Request::get("/")
            .header(http::header::HOST, "bench")
            .body(Empty::new())
            .unwrap();
        let Ok(resp) = s.send_request(req).await else {
            sender = None;
            continue;
        };
        let Ok(body) = resp.into_body().collect().await else {
            sender = None;
            continue;
        };
        let at = Instant::now();
        let Some(version) = version_of(&String::from_utf8_lossy(&body.to_bytes())) else {
            continue;
        };
        if version != last {
            changes.lock().unwrap().push((at, version.clone()));
            last = version;
        }
    }
}

/// When the deployer logged its `switch` and `persist` steps, in order.
#[derive(Clone, Default)]
struct StepClock(Arc<Mutex<Vec<(&'static str, Instant)>>>);

impl StepClock {
    fn take(&self) -> Vec<(&'static str, Instant)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StepClock {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let now = Instant::now();
        let mut step = StepField(None);
        event.record(&mut step);
        if let Some(step) = step.0 {
            self.0.lock().unwrap().push((step, now));
        }
    }
}

struct StepField(Option<&'static str>);

impl Visit for StepField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.0 = match value {
                "switch" => Some("switch"),
                "persist" => Some("persist"),
                _ => None,
            };
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct Run {
    name: &'static str,
    report: LoadReport,
    latency: Vec<Duration>,
    step: Vec<Duration>,
    /// nginx reloads during the whole run (0 for the builtin).
    reloads: usize,
}

async fn run(name: &'static str, clock: &StepClock, config: Config, spec: ServiceSpec) -> Run {
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "v0").await.assert_live();
    let load = Load::start(LoadSpec {
        target: d.addr,
        host: None,
        tls: None,
        path: "/".into(),
        keepalive_connections: 8,
        fresh_connection_workers: 2,
        max_requests: 10_000_000,
        max_duration: Duration::from_secs(600),
        request_timeout: Duration::from_secs(10),
        pause: Duration::from_millis(1),
    });
    let changes: Changes = Arc::default();
    let stop = CancellationToken::new();
    let probe = tokio::spawn(prober(d.addr, changes.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut latency, mut step) = (Vec::new(), Vec::new());
    for n in 1..=SWITCHES {
        let version = format!("v{n}");
        clock.take();
        d.deploy(&spec, &version).await.assert_live();
        let steps = clock.take();
        let at = |name| steps.iter().find(|(s, _)| *s == name).map(|(_, at)| *at);
        let (Some(switch), Some(persist)) = (at("switch"), at("persist")) else {
            panic!("{name}: no switch/persist step logged for {version}");
        };
        step.push(persist - switch);
        // Let the prober reconnect if the end of the drain closed its connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let first = changes
            .lock()
            .unwrap()
            .iter()
            .find(|(at, v)| *v == version && *at >= switch)
            .map(|(at, _)| *at);
        match first {
            Some(at) => latency.push(at - switch),
            None => eprintln!("{name}: the prober never saw {version}"),
        }
    }
    stop.cancel();
    let _ = probe.await;
    let report = load.stop().await;
    d.stop().await;
    // Every reload: "signal 1 (SIGHUP) received from N, reconfiguring", then "reconfiguring".
    let log = std::fs::read_to_string(config.state_dir.join("nginx/error.log")).unwrap_or_default();
    let reloads = log
        .lines()
        .filter(|l| l.ends_with(": reconfiguring"))
        .count();
    Run {
        name,
        report,
        latency,
        step,
        reloads,
    }
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn switch_latency_and_zero_drop_builtin_vs_nginx() {
    let clock = StepClock::default();
    tracing_subscriber::registry().with(clock.clone()).init();
    let mut runs = Vec::new();
    {
        let dir = tempfile::tempdir().unwrap();
        let spec = demo_service("web", dir.path(), 2);
        let config = config(dir.path(), vec![]);
        runs.push(run("builtin", &clock, config, spec).await);
    }
    if nginx::required() {
        for keepalive in [Duration::ZERO, Duration::from_secs(75)] {
            let dir = tempfile::tempdir().unwrap();
            let spec = nginx::service("web", dir.path(), 2);
            let mut config = nginx::config(dir.path(), vec![]);
            config.proxy.nginx.keepalive_timeout = keepalive;
            let name = if keepalive.is_zero() {
                "nginx (keepalive_timeout 0s, default)"
            } else {
                "nginx (keepalive_timeout 75s)"
            };
            runs.push(run(name, &clock, config, spec).await);
        }
    }
    println!("\n{SWITCHES} switches under load, 2 demo-app instances per slot\n");
    for run in &runs {
        let r = &run.report;
        println!("== {}", run.name);
        println!(
            "requests {} ({:.0}/s over {:.1}s), ok {}, failed {} {:?}, statuses {:?}",
            r.sent,
            r.sent as f64 / r.elapsed.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            r.ok,
            r.failed(),
            r.errors,
            r.statuses
        );
        println!(
            "latency p50/p99/max {} / {} / {}",
            ms(r.latency_p50),
            ms(r.latency_p99),
            ms(r.latency_max)
        );
        println!(
            "switch latency p50/p90/max {} / {} / {}  (n={})",
            ms(percentile(&run.latency, 0.5)),
            ms(percentile(&run.latency, 0.9)),
            ms(percentile(&run.latency, 1.0)),
            run.latency.len()
        );
        println!(
            "switch step    p50/p90/max {} / {} / {}",
            ms(percentile(&run.step, 0.5)),
            ms(percentile(&run.step, 0.9)),
            ms(percentile(&run.step, 1.0)),
        );
        if run.reloads > 0 {
            println!(
                "nginx reloads {} ({:.2} failed requests per reload)",
                run.reloads,
                r.failed() as f64 / run.reloads as f64
            );
        }
        println!();
        assert!(r.sent > 0);
    }
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(switch_latency_and_zero_drop_builtin_vs_nginx());
}
