//! `teal serve` under a real systemd, with the units `teal systemd` writes: a
//! socket unit holds the listening sockets and the service is `Type=notify`
//! with `Restart=always`. Under load (8 keep-alive and 2 new-connection
//! clients, no retries):
//!
//! - SIGKILL: systemd starts teal again on the same sockets, the instances
//!   are adopted (same pids), and no connection is refused: the ones that
//!   arrive meanwhile wait in the backlog. Only requests in flight in the
//!   killed process can fail (at most one per client).
//! - `systemctl reload` (SIGUSR2): the upgrade hands over with nothing lost,
//!   and systemd follows the successor as the main process (a later SIGKILL
//!   of it restarts the unit).
//! - `systemctl stop` stops teal alone; `start` adopts the instances.
//!
//! With `[proxy.tls]`, the socket unit holds the TLS listener too and the
//! daemon serves TLS on systemd's socket: across a SIGKILL, no TLS
//! connection is refused either.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use teal::load::{Load, LoadSpec};

use crate::support::load::{LOAD_CONCURRENCY, finish_more, restart_load, zero_drop};
use crate::support::served::run_ok;
use crate::support::systemd::{self, UserSystemd};
use crate::support::tls::TestCa;
use crate::support::*;

const UNIT: &str = "teal.service";

fn write_config(dir: &Path, listen: SocketAddr, admin: SocketAddr) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "{listen}"
admin = "{admin}"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "100ms"]
instances = 2
version = "1.0.0"

[services.web.health]
interval = "50ms"
deadline = "5s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// Waits (bounded) until the unit is active under a main pid other than
/// `old`, and returns it.
async fn new_main_pid(systemd: &UserSystemd, old: u32, dir: &Path) -> u32 {
    let mut pid = 0;
    let moved = eventually(Duration::from_secs(60), async || {
        pid = systemd.main_pid(UNIT);
        pid != 0 && pid != old && systemd.property(UNIT, "ActiveState") == "active"
    })
    .await;
    assert!(moved, "no new main pid after {old}: {}", serve_log(dir));
    pid
}

/// Writes the units `teal systemd --user` makes for `dir/teal.toml` (the
/// daemon's output to `dir/serve.log`), starts the socket and then the
/// service, and returns its main pid once teal said it serves.
fn start_units(systemd: &UserSystemd, dir: &Path) -> u32 {
    let unit_dir = systemd.unit_dir();
    let wrote = run_ok(
        dir,
        &["systemd", "--user", "--write", unit_dir.to_str().unwrap()],
    );
    let wrote = String::from_utf8_lossy(&wrote.stdout);
    assert!(wrote.contains("teal.socket"), "{wrote}");
    // No journald here: the daemon's output goes to a file, for failures.
    let log = dir.join("serve.log");
    std::fs::create_dir_all(unit_dir.join("teal.service.d")).unwrap();
    std::fs::write(
        unit_dir.join("teal.service.d/test.conf"),
        format!(
            "[Service]\nEnvironment=RUST_LOG=info\nStandardOutput=append:{0}\nStandardError=append:{0}\n",
            log.display()
        ),
    )
    .unwrap();
    systemd.run(&["daemon-reload"]);
    systemd.run(&["start", "teal.socket"]);
    // Type=notify: this returns once teal said READY=1.
    systemd.run(&["start", UNIT]);
    let first = systemd.main_pid(UNIT);
    assert!(first > 0, "{}", serve_log(dir));
    assert!(
        systemd.property(UNIT, "StatusText").contains("serving"),
        "{}",
        systemd.property(UNIT, "StatusText")
    );
    first
}

fn serve_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_a_reload_and_a_stop_under_systemd_refuse_no_connection() {
    if !require("systemd (unshare, systemd --user)", systemd::available()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    write_config(&dir, listen, admin);
    let systemd = UserSystemd::start(&dir.join("systemd"));

    let first = start_units(&systemd, &dir);
    run_ok(&dir, &["deploy", "web"]);
    let instances = app_pids_in(&dir);
    assert_eq!(instances.len(), 2, "{instances:?}");

    let load = restart_load(listen, 8, 2);
    finish_more(&load, 300, Duration::from_secs(30)).await;

    // A crash: systemd starts teal again on the sockets it holds.
    let before_crash = load.snapshot();
    assert_eq!(before_crash.failed(), 0, "{before_crash:?}");
    kill(first);
    let second = new_main_pid(&systemd, first, &dir).await;
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let crashed = load.snapshot();
    eprintln!("SIGKILL under systemd:\n{}", crashed.render_table());
    assert_eq!(
        crashed.errors.get("refused"),
        None,
        "no connection refused while teal was down: {crashed:?}"
    );
    assert!(
        crashed.failed() <= LOAD_CONCURRENCY,
        "only requests in flight in the killed daemon fail: {crashed:?}"
    );
    assert_eq!(
        app_pids_in(&dir),
        instances,
        "instances adopted, not restarted"
    );

    // An upgrade by `systemctl reload`: nothing lost, systemd follows.
    let connects = crashed.keepalive_connects;
    systemd.run(&["reload", UNIT]);
    let third = new_main_pid(&systemd, second, &dir).await;
    let left = eventually(Duration::from_secs(30), async || !alive(second as i32)).await;
    assert!(left, "the old daemon left: {}", serve_log(&dir));
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let upgraded = load.snapshot();
    assert_eq!(
        upgraded.failed(),
        crashed.failed(),
        "nothing failed across the upgrade: {upgraded:?}"
    );
    assert_eq!(
        upgraded.keepalive_connects, connects,
        "no keep-alive connection closed by the upgrade: {upgraded:?}"
    );
    assert_eq!(app_pids_in(&dir), instances);

    // systemd watches the successor: killing it restarts the unit.
    kill(third);
    let fourth = new_main_pid(&systemd, third, &dir).await;
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let report = load.stop().await;
    assert_eq!(report.errors.get("refused"), None, "{report:?}");
    assert!(
        report.failed() - upgraded.failed() <= LOAD_CONCURRENCY,
        "{report:?}"
    );

    // `systemctl stop` stops teal alone; a start adopts the instances.
    systemd.run(&["stop", UNIT]);
    assert!(!alive(fourth as i32));
    assert_eq!(
        app_pids_in(&dir),
        instances,
        "live instances outlive a stop"
    );
    systemd.run(&["start", UNIT]);
    let (status, body) = get(listen, "/").await;
    assert_eq!(status, 200, "{body}");
    let pid: u32 = serde_json::from_str::<serde_json::Value>(&body).unwrap()["pid"]
        .as_u64()
        .unwrap() as u32;
    assert!(instances.contains(&pid), "{pid} not in {instances:?}");

    run_ok(&dir, &["stop", "web"]);
    assert!(app_pids_in(&dir).is_empty());
}

fn kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_unit_holds_the_tls_listener_across_a_crash() {
    if !require("systemd (unshare, systemd --user)", systemd::available()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (listen, admin, tls_addr) = (free_addr(), free_addr(), free_addr());
    write_config(&dir, listen, admin);
    let ca = TestCa::new();
    let leaf = ca.leaf(&dir, "web", &["web.test"]);
    let toml = dir.join("teal.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text
        .replace(
            "\n[services.web]\n",
            &format!("\n[proxy.tls]\nlisten = \"{tls_addr}\"\n\n[services.web]\n"),
        )
        .replace(
            "version = \"1.0.0\"\n",
            &format!(
                "version = \"1.0.0\"\nhosts = [\"web.test\"]\ntls = {{ cert = {:?}, key = {:?} }}\n",
                leaf.files.cert, leaf.files.key
            ),
        );
    std::fs::write(&toml, text).unwrap();
    let systemd = UserSystemd::start(&dir.join("systemd"));
    let first = start_units(&systemd, &dir);
    let socket = std::fs::read_to_string(systemd.unit_dir().join("teal.socket")).unwrap();
    assert!(
        socket.contains(&format!("ListenStream={tls_addr}\n")),
        "{socket}"
    );
    run_ok(&dir, &["deploy", "web"]);

    // TLS clients, 4 keep-alive and 4 opening a connection per request.
    let load = Load::start(LoadSpec {
        host: Some("web.test".into()),
        tls: Some(ca.load_tls("web.test", &[b"http/1.1"])),
        keepalive_connections: 4,
        fresh_connection_workers: 4,
        max_duration: Duration::from_secs(120),
        pause: Duration::from_millis(2),
        ..zero_drop(tls_addr)
    });
    finish_more(&load, 200, Duration::from_secs(30)).await;
    assert_eq!(load.snapshot().failed(), 0, "{:?}", load.snapshot());
    kill(first);
    new_main_pid(&systemd, first, &dir).await;
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let report = load.stop().await;
    eprintln!(
        "TLS clients across a SIGKILL under systemd:\n{}",
        report.render_table()
    );
    assert_eq!(
        report.errors.get("refused"),
        None,
        "no TLS connection refused while teal was down: {report:?}\n{}",
        serve_log(&dir)
    );
    assert!(
        report.failed() <= 8,
        "only requests in flight in the killed daemon fail: {report:?}"
    );
    assert!(report.ok > 400, "{report:?}");
    run_ok(&dir, &["stop", "web"]);
}

/// The socket unit holds production, TLS and admin, in that order (the
/// order `teal serve` matches systemd's sockets in). No systemd needed.
#[test]
fn the_socket_unit_holds_production_tls_and_admin() {
    let text = "[proxy]\nlisten = \"0.0.0.0:80\"\nadmin = \"127.0.0.1:9100\"\n\n[proxy.tls]\nlisten = \"0.0.0.0:443\"\n";
    let config = teal::config::parse(text, Path::new("/srv/teal.toml")).unwrap();
    let held: Vec<String> = teal::systemd::units::held_sockets(&config)
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(held, ["0.0.0.0:80", "0.0.0.0:443", "127.0.0.1:9100"]);
}
