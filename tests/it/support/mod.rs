//! What the integration tests share, in one place: here a real daemon
//! in-process on 127.0.0.1:0 in a temp dir, the demo app as the service, small
//! HTTP clients, polling and the CI rule for missing components; in the
//! submodules what one kind of test needs:
//!
//! - `load`: the load of TESTING.md (keep-alive and new-connection clients, no
//!   retries) and waiting on it;
//! - `hooks`: hook specs from shell snippets, a hook's output, history steps;
//! - `nginx`: configs for `router = "nginx"` against the real nginx;
//! - `pebble`: Let's Encrypt's test ACME server and its DNS, on loopback;
//! - `docker`: the shared test images on the real engine, container helpers;
//! - `proxy`: the builtin proxy on its own, with real backends and clients;
//! - `served`: `teal serve` as a real child process, to kill and restart;
//! - `tls`: a test certificate authority, its leaf files, TLS clients;
//! - `systemd`: a real `systemd --user` to run teal's units under;
//! - `ssh_lab`: real sshd "hosts" on loopback for the remote tests;
//! - `workstation`: a second dockerd playing the deploying workstation;
//! - `zero_downtime`: TESTING.md's zero-downtime story, run for each runtime
//!   and router.
//!
//! `examples/bench_switch.rs` includes this module too (by path), so it uses
//! nothing of the test crate outside `support/`.

pub mod docker;
pub mod grpc;
pub mod hooks;
pub mod load;
pub mod nginx;
pub mod pebble;
pub mod proxy;
pub mod served;
pub mod squatter;
pub mod ssh_lab;
pub mod systemd;
pub mod tls;
pub mod tls_load;
pub mod workstation;
pub mod zero_downtime;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use teal::api::client::{Client, ClientError};
use teal::daemon::Daemon;
use teal::spec::{Config, DrainSpec, HealthSpec, ProxySpec, RouterKind, RuntimeSpec, ServiceSpec};
use teal::wire::{ActionRequest, DeployRequest, Event, Outcome, SlotStatus, Status};
use tokio::net::TcpStream;

/// The teal binary: cargo's build of it for integration tests; for the benchmark
/// examples that reuse these helpers, the release build under this repository.
pub const TEAL: &str = match option_env!("CARGO_BIN_EXE_teal") {
    Some(path) => path,
    None => concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/teal"),
};

/// A demo-app service spec: `instances` per slot, preview on port 0.
pub fn demo_service(name: &str, dir: &Path, instances: usize) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        runtime: RuntimeSpec::Process {
            command: vec![
                TEAL.into(),
                "demo-app".into(),
                "--port".into(),
                "{port}".into(),
                "--app-version".into(),
                "{version}".into(),
                "--boot-delay".into(),
                "200ms".into(),
            ],
        },
        instances,
        version: Some("1.0.0".into()),
        hosts: Vec::new(),
        preview: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        env: BTreeMap::new(),
        secrets: Default::default(),
        workdir: dir.to_path_buf(),
        health: HealthSpec {
            path: "/".into(),
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            grpc: None,
            h2c: false,
        },
        drain: DrainSpec {
            timeout: Duration::from_secs(5),
            keep_previous: true,
        },
        hooks: Default::default(),
        verify: None,
        tls: None,
        acme: false,
        policy: Default::default(),
        protocol: Default::default(),
    }
}

/// A config with the given services, everything under `dir`, listeners on port 0.
pub fn config(dir: &Path, services: Vec<ServiceSpec>) -> Config {
    Config {
        path: dir.join("teal.toml"),
        state_dir: dir.join("state"),
        proxy: ProxySpec {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            router: RouterKind::Builtin,
            control: dir.join("state").join("teal.sock"),
            admin: None,
            workers: None,
            upstream_idle_timeout: None,
            response_timeout: None,
            body_buffer: None,
            body_timeout: None,
            send_timeout: None,
            max_concurrent_streams: None,
            underscores_in_headers: None,
            access_log: None,
            nginx: Default::default(),
            tls: None,
        },
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
    }
}

/// A daemon started in-process, plus its client.
pub struct TestDaemon {
    pub daemon: Daemon,
    pub client: Client,
    pub addr: SocketAddr,
}

impl TestDaemon {
    pub async fn start(config: &Config) -> TestDaemon {
        let daemon = Daemon::start(config).await.expect("daemon starts");
        let addr = daemon.listen_addrs()[0];
        let client = Client::new(daemon.control_path());
        TestDaemon {
            daemon,
            client,
            addr,
        }
    }

    pub async fn deploy(&self, spec: &ServiceSpec, version: &str) -> ActionResult {
        self.deploy_with(spec, version, true).await
    }

    pub async fn deploy_with(
        &self,
        spec: &ServiceSpec,
        version: &str,
        promote: bool,
    ) -> ActionResult {
        let req = DeployRequest {
            promote,
            ..deploy_request(spec, version)
        };
        let stream = self.client.deploy(&req).await.expect("deploy accepted");
        ActionResult::collect(stream).await
    }

    pub async fn rollback(&self, name: &str) -> ActionResult {
        let stream = self
            .client
            .rollback(name, &ActionRequest::default())
            .await
            .expect("rollback accepted");
        ActionResult::collect(stream).await
    }

    pub async fn promote(&self, name: &str) -> ActionResult {
        let stream = self.client.promote(name).await.expect("promote accepted");
        ActionResult::collect(stream).await
    }

    pub async fn status(&self) -> Status {
        self.client.status(None).await.expect("status")
    }

    /// Stops the daemon and every instance it runs: a test leaves nothing behind.
    pub async fn stop(self) {
        self.daemon.shutdown_stopping_instances().await;
    }

    /// Stops the daemon as SIGTERM does: live instances keep running for the
    /// next daemon on the same state dir to adopt.
    pub async fn stop_keeping_instances(self) {
        self.daemon.shutdown().await;
    }
}

/// A deploy of `version` that goes live when healthy (no image pinned).
pub fn deploy_request(spec: &ServiceSpec, version: &str) -> DeployRequest {
    DeployRequest {
        spec: spec.clone(),
        version: version.into(),
        image: None,
        promote: true,
        secrets: Default::default(),
    }
}

/// The ids of a slot's instances, in order (a process id, a container name).
pub fn instance_ids(slot: &SlotStatus) -> Vec<String> {
    slot.instances.iter().map(|i| i.id.clone()).collect()
}

/// Every event of an action, and how it ended.
#[derive(Debug)]
pub struct ActionResult {
    pub events: Vec<Event>,
    pub outcome: Outcome,
    pub message: String,
}

impl ActionResult {
    pub async fn collect(mut stream: teal::api::client::EventStream) -> ActionResult {
        let mut events = Vec::new();
        while let Some(e) = stream.next().await.expect("event stream") {
            events.push(e);
        }
        let (outcome, message) = match events.last() {
            Some(Event::Done {
                outcome, message, ..
            }) => (*outcome, message.clone()),
            other => panic!("stream did not end with done: {other:?}"),
        };
        ActionResult {
            events,
            outcome,
            message,
        }
    }

    pub fn assert_live(&self) {
        assert_eq!(
            self.outcome,
            Outcome::Live,
            "expected live: {} / {:?}",
            self.message,
            self.events
        );
    }

    pub fn text(&self) -> String {
        self.events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether a client error is the daemon's "busy" answer.
pub fn is_busy(err: &ClientError) -> bool {
    err.kind() == Some(teal::wire::ErrorKind::Busy)
}

/// One GET on a fresh connection; returns status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_host(addr, path, "localhost").await
}

pub async fn get_host(addr: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The "version" field of a demo-app answer.
pub fn version_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("version")?
        .as_str()
        .map(str::to_string)
}

/// The version production answers with right now (on a fresh connection).
pub async fn serving(addr: SocketAddr) -> Option<String> {
    let (status, body) = get(addr, "/").await;
    (status == 200).then(|| version_of(&body)).flatten()
}

/// Polls `check` every 50 ms until it is true or `limit` passes; returns the
/// result. The one polling helper of the tests: a bound, never a timed assertion.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Whether process `pid` runs (a zombie, or one being reaped, counts as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// Fails when CI=true and a component is missing; otherwise skips loudly.
pub fn require(component: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{component} is required in CI but is not available");
    }
    eprintln!("SKIPPING: {component} is not available on this machine");
    false
}

/// Every process on this machine that is an instance of `service`, by its
/// environment (`TEAL_SERVICE`): what really runs, whatever teal recorded.
pub fn app_pids(service: &str) -> std::collections::BTreeSet<u32> {
    let needle = format!("TEAL_SERVICE={service}");
    instance_pids(|pid| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
    })
}

/// Every teal instance (a process with `TEAL_SERVICE` set) whose working
/// directory is `dir`: the process runtime's instances of a test's config.
pub fn app_pids_in(dir: &Path) -> std::collections::BTreeSet<u32> {
    instance_pids(|pid| {
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
            && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|var| var.starts_with(b"TEAL_SERVICE="))
            })
    })
}

/// Live processes (not zombies) for which `matches` holds.
fn instance_pids(matches: impl Fn(u32) -> bool) -> std::collections::BTreeSet<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return std::collections::BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| alive(*pid as i32) && matches(*pid))
        .collect()
}
