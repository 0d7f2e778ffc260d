//! Every listener of the real `teal serve` has the same protections: its
//! open-files soft limit raised to the hard limit at start, and a flood of
//! silent connections to the admin listener (each sends `GET /metrics
//! HTTP/1.1` and nothing more, as in issue 15's probe) closed at the header
//! timeout without taking the descriptors production needs.
//!
//! nginx, for comparison, closes such connections at `client_header_timeout`
//! (60 s) and is bounded by `worker_connections`; its open-files limit is
//! what `worker_rlimit_nofile` or the unit sets.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::proxy::unused_addr;
use crate::support::served::{Served, teal};
use crate::support::*;

/// Silent admin connections in the flood: with a 1,024 descriptor limit,
/// more than the daemon can hold if it kept them all.
const FLOOD: usize = 1_010;

fn write_config(dir: &Path, admin: SocketAddr) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"
admin = "{admin}"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}"]
version = "1.0.0"

[services.web.health]
interval = "50ms"
deadline = "10s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// The production address, from `teal status --json`.
fn listen_addr(dir: &Path) -> SocketAddr {
    let out = teal(dir).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["listen"][0].as_str().unwrap().parse().unwrap()
}

/// The "Max open files" soft and hard limits of process `pid`.
fn open_files_of(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// This test process's hard open-files limit, with its soft limit raised to
/// it (the flood needs more than a common default of 1,024).
fn raise_own_limit() -> u64 {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// True while the peer has neither closed nor reset `stream` (a peek that
/// does not wait).
fn still_open(stream: &TcpStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    matches!(
        recv(stream.as_raw_fd(), &mut byte, peek),
        Err(nix::errno::Errno::EAGAIN) | Ok(1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teal_serve_raises_its_open_files_soft_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), unused_addr());
    let hard = raise_own_limit().min(4096);
    let soft = hard / 4;
    let daemon = Served::start_with_open_files(dir.path(), soft, hard).await;
    assert_eq!(open_files_of(daemon.pid()), (hard, hard));
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("open-files limit raised to the hard limit"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_admin_connections_are_closed_at_the_header_timeout_while_production_answers() {
    let own = raise_own_limit();
    if !require("an open-files hard limit above 2,048", own > 2048) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let admin = unused_addr();
    write_config(dir.path(), admin);
    // The limit of issue 15's probe: without a connection limit on the admin
    // listener the flood below would take every descriptor.
    let daemon = Served::start_with_open_files(dir.path(), 1024, 1024).await;
    let deployed = teal(dir.path()).args(["deploy", "web"]).output().unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let production = listen_addr(dir.path());

    let started = tokio::time::Instant::now();
    let mut silent = Vec::with_capacity(FLOOD);
    for n in 1..=FLOOD {
        let mut stream = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(admin))
            .await
            .expect("connect within 30 s")
            .expect("connect to the admin listener");
        // Connections beyond the limit may be closed already.
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\n").await;
        silent.push(stream);
        if n % 100 == 0 || n == FLOOD {
            // Production answers while the flood is held: before the first
            // silent connection (one the admin listener serves) reaches its
            // header timeout. Without the connection limit the daemon runs
            // out of descriptors and production waits for that timeout.
            let answer = tokio::time::timeout(Duration::from_secs(30), get(production, "/")).await;
            assert_eq!(answer.expect("a production answer").0, 200, "after {n}");
            assert!(
                still_open(&silent[0]),
                "production was answered only once the flood was let go (after {n})"
            );
        }
    }

    // Every silent connection is closed by the daemon within the header
    // timeout of its start (with slack for a loaded machine).
    let deadline = started + teal::metrics::HEADER_TIMEOUT + Duration::from_secs(15);
    let closed = futures_util::future::join_all(silent.iter_mut().map(|stream| async move {
        let mut buf = [0u8; 512];
        let wait = async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout_at(deadline, wait).await.is_ok()
    }))
    .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "silent admin connections still open");
    drop(silent);

    // And the admin listener serves again.
    let (status, text) = tokio::time::timeout(Duration::from_secs(30), get(admin, "/metrics"))
        .await
        .expect("a scrape after the flood");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("teal_requests_total"), "{text}");
    drop(daemon);
}
