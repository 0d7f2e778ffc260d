//! The process runtime with real child processes: the demo app (`teal demo-app`)
//! and small `sh` scripts. Every wait is bounded in count and time.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use teal::runtime::process::ProcessRuntime;
use teal::runtime::{ExitInfo, InstanceRef, LogLine, Runtime, RuntimeError, SlotRequest};
use teal::slot::Slot;
use teal::spec::{DrainSpec, HealthSpec, RuntimeSpec, ServiceSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::eventually;

/// Upper bound for any single wait in these tests; only reached when broken.
const PATIENCE: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_secs(5);

fn demo_command() -> Vec<String> {
    [
        env!("CARGO_BIN_EXE_teal"),
        "demo-app",
        "--port",
        "{port}",
        "--app-version",
        "{version}",
    ]
    .map(String::from)
    .to_vec()
}

fn sh(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(String::from).to_vec()
}

fn service(name: &str, command: Vec<String>, instances: usize, workdir: &Path) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        runtime: RuntimeSpec::Process { command },
        instances,
        version: None,
        hosts: Vec::new(),
        preview: None,
        env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
        secrets: Default::default(),
        workdir: workdir.to_path_buf(),
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

async fn start(
    rt: &ProcessRuntime,
    spec: &ServiceSpec,
    slot: Slot,
    version: &str,
) -> Result<Vec<InstanceRef>, RuntimeError> {
    rt.start(SlotRequest {
        service: spec,
        slot,
        version,
        deploy_id: "test",
        image: None,
    })
    .await
}

/// GET with `Connection: close`; `None` when nothing answers (yet).
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    };
    timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// The JSON of the first 200 answer from `addr`.
async fn wait_json(addr: SocketAddr) -> serde_json::Value {
    let mut body = None;
    let answered = eventually(PATIENCE, async || {
        body = get(addr, "/")
            .await
            .and_then(|(status, b)| (status == 200).then_some(b));
        body.is_some()
    })
    .await;
    assert!(answered, "{addr} never answered 200");
    serde_json::from_str(&body.unwrap()).expect("JSON body")
}

/// Polls `check` until it holds; panics with `what` when it never does.
async fn wait_until(what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(
        eventually(PATIENCE, check).await,
        "timed out waiting until {what}"
    );
}

async fn wait_log_line(instance: &InstanceRef, needle: &str) {
    wait_until(&format!("log contains {needle:?}"), async || {
        instance
            .tail_logs(100)
            .await
            .iter()
            .any(|l| l.contains(needle))
    })
    .await;
}

#[tokio::test]
async fn instances_answer_on_distinct_ports_with_version_slot_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let spec = service("web", demo_command(), 3, dir.path());
    let instances = start(&rt, &spec, Slot::Green, "1.2.3").await.unwrap();

    assert_eq!(instances.len(), 3);
    let ports: HashSet<u16> = instances.iter().map(|i| i.addr().port()).collect();
    assert_eq!(ports.len(), 3, "ports must be distinct");
    for (index, instance) in instances.iter().enumerate() {
        assert_eq!(instance.index(), index);
        assert!(instance.addr().ip().is_loopback());
        let body = wait_json(instance.addr()).await;
        assert_eq!(body["version"], "1.2.3");
        assert_eq!(body["slot"], "green");
        assert_eq!(body["instance"], index.to_string());
        assert_eq!(body["greeting"], "hi");
        assert_eq!(body["pid"].to_string(), instance.id());
        assert_eq!(instance.exited(), None);
        assert_eq!(instance.restarts(), 0);
    }
    rt.stop_all(GRACE).await;
    for instance in &instances {
        // The demo app exits 0 on SIGTERM.
        assert_eq!(instance.exited().and_then(|e| e.code), Some(0));
    }
}

#[tokio::test]
async fn environment_and_output_go_to_the_log_and_the_log_stream() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let script = "echo \"args={port}/{version} port=$PORT version=$TEAL_VERSION slot=$TEAL_SLOT \
                  instance=$TEAL_INSTANCE service=$TEAL_SERVICE greeting=$GREETING\"; \
                  echo oops >&2; exec sleep 60";
    let spec = service("env", sh(script), 2, dir.path());
    let instances = start(&rt, &spec, Slot::Blue, "4.5.6").await.unwrap();

    for instance in &instances {
        let port = instance.addr().port();
        let i = instance.index();
        let expected = format!(
            "args={port}/4.5.6 port={port} version=4.5.6 slot=blue instance={i} service=env greeting=hi"
        );
        wait_log_line(instance, &expected).await;
        wait_log_line(instance, "oops").await;
    }
    let log = teal::runtime::log_path(&dir.path().join("state"), "env", Slot::Blue, 1);
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("--- teal: started pid")
    );

    let lines: Vec<LogLine> = rt
        .logs("env", &teal::runtime::LogRun::Slot(Slot::Blue), false)
        .await
        .unwrap()
        .collect()
        .await;
    for i in 0..2 {
        assert!(
            lines
                .iter()
                .any(|l| l.instance == i && l.line.contains(&format!("instance={i} "))),
            "instance {i} missing from {lines:?}"
        );
    }
    rt.stop_all(GRACE).await;

    // A new start of the slot begins a fresh log.
    let instances = start(&rt, &spec, Slot::Blue, "7.0.0").await.unwrap();
    wait_log_line(&instances[0], "version=7.0.0").await;
    let tail = instances[0].tail_logs(100).await;
    assert!(!tail.iter().any(|l| l.contains("4.5.6")), "{tail:?}");
    rt.stop_all(GRACE).await;
}

#[tokio::test]
async fn followed_logs_stream_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let script = "i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done";
    let spec = service("ticker", sh(script), 2, dir.path());
    let _instances = start(&rt, &spec, Slot::Green, "1").await.unwrap();

    let mut stream = rt
        .logs("ticker", &teal::runtime::LogRun::Slot(Slot::Green), true)
        .await
        .unwrap();
    let mut seen = [false; 2];
    while seen != [true; 2] {
        let line = timeout(PATIENCE, stream.next())
            .await
            .expect("a new line in time")
            .expect("followed stream does not end");
        if line.line == "tick 10" {
            seen[line.instance] = true;
        }
    }
    drop(stream);
    rt.stop_all(GRACE).await;
}

#[tokio::test]
async fn killed_instance_restarts_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let spec = service("web", demo_command(), 1, dir.path());
    let instances = start(&rt, &spec, Slot::Blue, "1.0.0").await.unwrap();
    let instance = &instances[0];
    let first = wait_json(instance.addr()).await;

    let pid = Pid::from_raw(instance.id().parse().unwrap());
    kill(pid, Signal::SIGKILL).unwrap();
    wait_until("the instance is restarted", async || {
        instance.restarts() == 1 && instance.exited().is_none()
    })
    .await;
    let second = wait_json(instance.addr()).await;
    assert_eq!(second["version"], "1.0.0");
    assert_ne!(second["pid"], first["pid"]);
    assert_eq!(second["pid"].to_string(), instance.id());
    wait_log_line(instance, "exited (killed by signal 9)").await;

    instance.stop(GRACE).await;
    assert_eq!(instance.restarts(), 1);
    assert!(instance.exited().is_some());
    assert!(get(instance.addr(), "/").await.is_none());
}

#[tokio::test]
async fn stop_kills_a_process_that_ignores_sigterm_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let script = "trap '' TERM; echo ready; while true; do sleep 1; done";
    let spec = service("stubborn", sh(script), 1, dir.path());
    let instances = start(&rt, &spec, Slot::Blue, "1").await.unwrap();
    let instance = &instances[0];
    // The trap is installed once it says so.
    wait_log_line(instance, "ready").await;
    let pid = Pid::from_raw(instance.id().parse().unwrap());

    instance.stop(Duration::from_millis(500)).await;
    assert_eq!(
        instance.exited(),
        Some(ExitInfo {
            code: None,
            signal: Some(9),
            left_running: None,
        })
    );
    // Reaped, not a zombie: the pid is gone.
    assert_eq!(kill(pid, None), Err(Errno::ESRCH));
    // Idempotent, and never restarted.
    instance.stop(Duration::from_millis(500)).await;
    assert_eq!(instance.restarts(), 0);
    assert!(rt.instances().is_empty());
}

#[tokio::test]
async fn missing_command_is_a_clear_error_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let command = vec!["teal-no-such-command".to_string(), "{port}".to_string()];
    let spec = service("ghost", command, 2, dir.path());
    let err = start(&rt, &spec, Slot::Blue, "1").await.unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("teal-no-such-command"), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(rt.instances().is_empty());
}

#[tokio::test]
async fn stop_all_stops_both_slots() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::open(&dir.path().join("state")).unwrap();
    let spec = service("sleepy", sh("exec sleep 60"), 2, dir.path());
    let mut all = start(&rt, &spec, Slot::Blue, "1").await.unwrap();
    all.extend(start(&rt, &spec, Slot::Green, "2").await.unwrap());
    assert_eq!(rt.instances().len(), 4);

    rt.stop_all(GRACE).await;
    for instance in &all {
        assert_eq!(instance.exited().and_then(|e| e.signal), Some(15));
    }
    assert!(rt.instances().is_empty());
}
