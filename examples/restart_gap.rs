//! Measurement: what clients and the app see when `teal serve` is killed and
//! started again, for any teal binary (so an older build can be compared).
//!
//! ```sh
//! cargo build && cargo run --example restart_gap -- target/debug/teal [kill|term|upgrade|systemd] [APP FLAG...]
//! ```
//!
//! In a temp dir it runs `BINARY serve` with the process runtime and two demo-app
//! instances that boot in 3 s, deploys them, and starts teal's load client on
//! 127.0.0.1 through the proxy (8 keep-alive and 2 new-connection workers, 1 ms
//! pause, no retries, 10 s per request, at most 60 s). After 2 s the daemon gets
//! SIGKILL (`kill`, the default) or SIGTERM (`term`, then waits for its exit) and
//! is started again at once, or (`upgrade`) `teal serve --upgrade` takes over from
//! it and it leaves; 3 s after its control socket answers the load stops.
//! `systemd` runs teal under a real `systemd --user` with the units `teal
//! systemd` writes (its sockets held by a socket unit, `Restart=always`) and
//! sends the main process SIGKILL: systemd starts it again.
//! It prints the load's report and the app's pids before and after (processes
//! whose working directory is the temp dir), then stops everything it started.
//! Extra arguments go to the demo app (`--log-requests`, for a build that has it).
//! It measures; it asserts nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use teal::load::{Load, LoadSpec};

#[path = "../tests/it/support/systemd.rs"]
mod systemd;

fn main() {
    let mut args = std::env::args().skip(1);
    let teal = PathBuf::from(
        args.next()
            .expect("usage: restart_gap BINARY [kill|term] [APP FLAG...]"),
    );
    let teal = std::fs::canonicalize(&teal).expect("the teal binary");
    let signal = args.next().unwrap_or_else(|| "kill".into());
    let app_flags: Vec<String> = args.collect();
    let dir = tempfile::tempdir().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra: String = app_flags.iter().map(|f| format!(", {f:?}")).collect();
    let toml = format!(
        "state_dir = \"state\"\n[proxy]\nlisten = \"{listen}\"\n[services.web]\n\
         command = [{teal:?}, \"demo-app\", \"--port\", \"{{port}}\", \"--app-version\", \"{{version}}\", \"--boot-delay\", \"3s\"{extra}]\n\
         instances = 2\nversion = \"1.0.0\"\n[services.web.health]\ninterval = \"100ms\"\ndeadline = \"30s\"\n"
    );
    std::fs::write(dir.path().join("teal.toml"), toml).unwrap();
    let run = |args: &[&str]| {
        Command::new(&teal)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("teal runs")
    };

    if signal == "systemd" {
        under_systemd(dir.path(), listen, &run);
        return;
    }
    let mut daemon = serve(&teal, dir.path());
    wait_up(&run);
    assert!(run(&["deploy", "web"]).status.success(), "deploy");
    let before = apps(dir.path());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let load = Load::start(load_spec(listen));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
        let signalled = Instant::now();
        let (exited, during, up) = if signal == "upgrade" {
            let next = serve_with(&teal, dir.path(), &["serve", "--upgrade"]);
            daemon.wait().unwrap();
            let exited = signalled.elapsed();
            daemon = next;
            wait_up(&run);
            (exited, apps(dir.path()), signalled.elapsed())
        } else {
            let sig = match signal.as_str() {
                "term" => nix::sys::signal::Signal::SIGTERM,
                _ => nix::sys::signal::Signal::SIGKILL,
            };
            nix::sys::signal::kill(pid, sig).unwrap();
            daemon.wait().unwrap();
            let exited = signalled.elapsed();
            let during = apps(dir.path());
            daemon = serve(&teal, dir.path());
            wait_up(&run);
            (exited, during, signalled.elapsed())
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let report = load.stop().await;
        println!("{signal}: old daemon gone after {exited:?}, new control socket up after {up:?}");
        println!("app pids while no daemon ran: {during:?}");
        report
    });
    let after = apps(dir.path());
    println!("{}", report.render_table());
    println!(
        "keep-alive connections opened: {} (one per worker when none was closed under its client)",
        report.keepalive_connects
    );
    println!("app pids before: {before:?}\napp pids after:  {after:?}");

    // Leave nothing: stop the daemon, then whatever app process is left.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
    for pid in apps(dir.path()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The `systemd` mode: SIGKILL to the main process of teal's unit.
fn under_systemd(dir: &Path, listen: SocketAddr, run: &impl Fn(&[&str]) -> std::process::Output) {
    assert!(
        systemd::available(),
        "the systemd mode needs unshare and systemd"
    );
    let manager = systemd::UserSystemd::start(&dir.join("systemd"));
    let units = manager.unit_dir();
    assert!(
        run(&["systemd", "--user", "--write", units.to_str().unwrap()])
            .status
            .success()
    );
    std::fs::create_dir_all(units.join("teal.service.d")).unwrap();
    std::fs::write(
        units.join("teal.service.d/log.conf"),
        format!(
            "[Service]\nStandardError=append:{}\n",
            dir.join("serve.log").display()
        ),
    )
    .unwrap();
    manager.run(&["daemon-reload"]);
    manager.run(&["start", "teal.socket", "teal.service"]);
    assert!(run(&["deploy", "web"]).status.success(), "deploy");
    let before = apps(dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let load = Load::start(load_spec(listen));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let old = manager.main_pid("teal.service");
        let signalled = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let started = Instant::now();
        loop {
            let now = manager.main_pid("teal.service");
            if now != 0 && now != old {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "restarted");
            std::thread::sleep(Duration::from_millis(5));
        }
        let restarted = signalled.elapsed();
        wait_up(run);
        let up = signalled.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let report = load.stop().await;
        println!(
            "systemd: new main process after {restarted:?}, new control socket up after {up:?}"
        );
        report
    });
    println!("{}", report.render_table());
    println!(
        "keep-alive connections opened: {} (one per worker when none was closed under its client)",
        report.keepalive_connects
    );
    println!(
        "app pids before: {before:?}\napp pids after:  {:?}",
        apps(dir)
    );
    let _ = run(&["stop", "web"]);
}

fn load_spec(target: SocketAddr) -> LoadSpec {
    LoadSpec {
        max_duration: Duration::from_secs(60),
        pause: Duration::from_millis(1),
        ..LoadSpec::new(target)
    }
}

fn serve(teal: &Path, dir: &Path) -> Child {
    serve_with(teal, dir, &["serve"])
}

fn serve_with(teal: &Path, dir: &Path, args: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    Command::new(teal)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("teal serve")
}

fn wait_up(run: &impl Fn(&[&str]) -> std::process::Output) {
    let start = Instant::now();
    while !run(&["status"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "teal serve came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The demo-app processes running in `dir`, by their working directory.
fn apps(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(8).any(|w| w == b"demo-app"))
                && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(") ")
                        .is_some_and(|(_, r)| !r.starts_with('Z'))
                })
        })
        .collect();
    pids.sort_unstable();
    pids
}
