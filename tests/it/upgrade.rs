//! `teal serve --upgrade` with the real binary, under load: the new daemon
//! takes the listening sockets, the state lock and the client connections of
//! the running one, which then leaves. Keep-alive clients keep their
//! connections (the load client counts every reconnection), nothing fails,
//! and deploys and rollbacks work between upgrades. An upgrade that fails
//! before the new daemon serves leaves the old one serving, untouched.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::served::{Served, demo_web_toml, listen_addr, logs, run, upgrade};
use crate::support::*;
use teal::load::{Load, LoadSpec};

fn write_config(dir: &Path, admin: Option<SocketAddr>) {
    let admin = admin
        .map(|a| format!("admin = \"{a}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "state_dir = \"state\"\n\n[proxy]\nlisten = \"127.0.0.1:0\"\n{admin}\n{}",
        demo_web_toml("127.0.0.1:0")
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// The daemon's pid, from `teal status --json` (the one answering now).
fn daemon_version(dir: &Path) -> String {
    let out = run(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["daemon_version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `teal serve` in `dir` with 1.0.0 deployed, and its production address.
fn serving_first_version(dir: &Path) -> (Served, SocketAddr) {
    write_config(dir, None);
    let daemon = Served::serve(dir);
    let deployed = run(dir, &["deploy", "web"]);
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    (daemon, listen_addr(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_upgrades_under_load_lose_no_request_and_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, addr) = serving_first_version(dir.path());

    let mut spec = LoadSpec::new(addr);
    spec.max_duration = Duration::from_secs(300);
    let load = Load::start(spec.clone());
    // A slow request on its own connection across the first upgrade.
    let slow = tokio::spawn(get(addr, "/slow?ms=1500"));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dir_path = dir.path().to_path_buf();
    for round in 0..10 {
        let path = dir_path.clone();
        daemon = tokio::task::spawn_blocking(move || upgrade(&path, daemon))
            .await
            .unwrap();
        assert_eq!(
            listen_addr(dir.path()),
            addr,
            "round {round}: the same listener"
        );
        assert_eq!(daemon_version(dir.path()), env!("CARGO_PKG_VERSION"));
        let action = match round % 3 {
            1 => vec![
                "deploy",
                "web",
                "--version",
                if round % 2 == 0 { "2.0.0" } else { "3.0.0" },
            ],
            2 => vec!["rollback", "web"],
            _ => continue,
        };
        let path = dir_path.clone();
        let out = tokio::task::spawn_blocking(move || run(&path, &action))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Only the live slot's two instances run: the standby kept for rollback by
    // the deploys went with the daemons that handed over (no orphan).
    let running = app_pids_in(&std::fs::canonicalize(dir.path()).unwrap());
    assert_eq!(running.len(), 2, "{running:?}\n{}", logs(dir.path()));
    let (status, body) = slow.await.unwrap();
    assert_eq!(
        status, 200,
        "the slow request spanning the first upgrade: {body}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.ok > 1000, "{report:?}");
    assert_eq!(
        report.keepalive_connects, spec.keepalive_connections as u64,
        "no keep-alive connection was closed under its client: {report:?}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let mut daemon = daemon;
        daemon.terminate()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_fails_leaves_the_running_daemon_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, addr) = serving_first_version(dir.path());
    let load = Load::start(LoadSpec::new(addr));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The successor's admin listener cannot bind: it fails after it received
    // the sockets and the state lock, before it serves.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let next = dir.path().join("next");
    std::fs::create_dir(&next).unwrap();
    write_config(&next, Some(taken.local_addr().unwrap()));
    let config = next.join("teal.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "state_dir = \"state\"",
            &format!("state_dir = {:?}", dir.path().join("state")),
        ),
    )
    .unwrap();
    let out = Command::new(TEAL)
        .args(["--config", config.to_str().unwrap(), "serve", "--upgrade"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the successor fails");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("admin listener"), "{said}");

    // The old daemon still holds the state directory: a plain second daemon
    // is refused.
    let second = run(dir.path(), &["serve"]);
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another teal daemon holds the state directory"),
        "{said}"
    );

    // The old daemon serves on, and takes a good upgrade afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = get(addr, "/").await;
    assert_eq!(status, 200);
    let path = dir.path().to_path_buf();
    let daemon = tokio::task::spawn_blocking(move || upgrade(&path, daemon))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    let log = logs(dir.path());
    assert_eq!(report.failed(), 0, "{report:?}\n{log}");
    assert_eq!(report.keepalive_connects, 8, "{report:?}");
    let status = tokio::task::spawn_blocking(move || {
        let mut daemon = daemon;
        daemon.terminate()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

/// `teal upgrade`: SIGUSR2 to the daemon starts its successor from the binary
/// at its path; the command reports both daemons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teal_upgrade_hands_the_daemon_over_to_its_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, addr) = serving_first_version(dir.path());
    let old_pid = daemon.pid();
    let load = Load::start(LoadSpec::new(addr));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || run(&path, &["upgrade", "--json"]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["from"]["pid"].as_u64(), Some(u64::from(old_pid)));
    let new_pid = report["to"]["pid"].as_u64().unwrap() as i32;
    assert_ne!(new_pid as u32, old_pid);
    let left = daemon.exited(Duration::from_secs(60));
    assert!(left.success(), "{left:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    let log = logs(dir.path());
    assert_eq!(report.failed(), 0, "{report:?}\n{log}");
    assert_eq!(report.keepalive_connects, 8, "{report:?}");
    // The new daemon is the old one's orphan, not this test's child.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(new_pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let gone = eventually(Duration::from_secs(30), async || !alive(new_pid)).await;
    assert!(gone, "the new daemon stops on SIGTERM");
}

/// A websocket open across an upgrade stays with the old daemon, usable past
/// the 10 s a plain stop gives connections, until it closes (up to the
/// service's `drain.timeout`, 30 s by default); then the old daemon exits.
/// Meanwhile the instances are the successor's alone: one that dies is
/// restarted once, by the successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_upgrade_until_it_closes() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().unwrap();
    let (daemon, addr) = serving_first_version(dir.path());
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("ws://app.test/ws", stream)
        .await
        .expect("websocket handshake through the proxy");
    let mut echo = async |text: &str| {
        ws.send(Message::text(text)).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer in time")
            .expect("the websocket is open")
            .unwrap();
        reply.into_text().unwrap().as_str().to_string()
    };
    assert_eq!(echo("before").await, "1.0.0: before");

    let mut old = daemon;
    old.hand_instances_over();
    let next = Served::spawn(dir.path(), &["serve", "--upgrade"]);
    let up = eventually(Duration::from_secs(30), async || {
        next.client
            .ping()
            .await
            .is_ok_and(|p| p["pid"].as_u64() != Some(u64::from(old.pid())))
    })
    .await;
    assert!(up, "the new daemon serves\n{}", logs(dir.path()));
    let upgraded = std::time::Instant::now();
    // While the old daemon lingers for the websocket, the other instance
    // dies: only the successor (which supervises the instances now) starts
    // it again: one process on its port, not two daemons racing for it.
    let holder: u32 = echo("pid")
        .await
        .strip_prefix("1.0.0: pid ")
        .and_then(|pid| pid.parse().ok())
        .expect("the websocket's instance says its pid");
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    let instances = app_pids_in(&canonical);
    let other = *instances
        .iter()
        .find(|pid| **pid != holder)
        .expect("two instances");
    let _ = Command::new("kill")
        .args(["-KILL", &other.to_string()])
        .status();
    let restarted = eventually(Duration::from_secs(20), async || {
        let now = app_pids_in(&canonical);
        now.len() == 2 && now.contains(&holder) && !now.contains(&other)
    })
    .await;
    assert!(
        restarted,
        "the dead instance is restarted
{}",
        logs(dir.path())
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = app_pids_in(&canonical);
    assert_eq!(
        now.len(),
        2,
        "restarted once: {now:?}\n{}",
        logs(dir.path())
    );
    assert!(
        !logs(dir.path()).contains("Address already in use"),
        "{}",
        logs(dir.path())
    );

    tokio::time::sleep(Duration::from_secs(11).saturating_sub(upgraded.elapsed())).await;
    assert_eq!(echo("after 11 s").await, "1.0.0: after 11 s");
    assert!(
        alive(old.pid() as i32),
        "the old daemon still serves the websocket"
    );
    drop(ws);
    let left = tokio::task::spawn_blocking(move || old.exited(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(left.success(), "{left:?}");
    let (status, _) = get(addr, "/").await;
    assert_eq!(status, 200, "the new daemon serves");
    drop(next);
}

/// `teal_requests_total` of `web`, all slots, from `/metrics` at `admin`.
async fn requests_counted(admin: SocketAddr) -> u64 {
    let (status, text) = get(admin, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| l.starts_with("teal_requests_total{") && l.contains("service=\"web\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The metrics counters carry over upgrades: the successor's start where the
/// old daemon's ended, twice in a row, and go on counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_counters_carry_over_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_addr();
    write_config(dir.path(), Some(admin));
    let mut daemon = Served::serve(dir.path());
    let deployed = run(dir.path(), &["deploy", "web"]);
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let addr = listen_addr(dir.path());
    for _ in 0..25 {
        assert_eq!(get(addr, "/").await.0, 200);
    }
    let counted = requests_counted(admin).await;
    assert!(counted >= 25, "{counted}");
    for round in 0..2 {
        let path = dir.path().to_path_buf();
        daemon = tokio::task::spawn_blocking(move || upgrade(&path, daemon))
            .await
            .unwrap();
        assert_eq!(
            requests_counted(admin).await,
            counted + 10 * round,
            "upgrade {round}: the counters went on from the old daemon's"
        );
        for _ in 0..10 {
            assert_eq!(get(addr, "/").await.0, 200);
        }
    }
    assert_eq!(requests_counted(admin).await, counted + 20);
    let status = tokio::task::spawn_blocking(move || daemon.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
