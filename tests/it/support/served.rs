//! The `teal` binary as a user runs it: the command in a directory (with no
//! `TEAL_CONFIG`/`TEAL_SOCKET` from the environment), and `teal serve` as a
//! real child process on `dir/teal.toml` (state in `dir/state`, its log
//! appended to `dir/serve.log`) for tests that stop, kill, restart or upgrade
//! the daemon.
//!
//! Live instances outlive the daemon, so dropping a [`Served`] kills the daemon
//! and then stops every process instance recorded under its state dir: a test
//! leaves nothing running, even when it panics. After an upgrade the instances
//! belong to the successor: [`Served::hand_instances_over`] says so. A managed
//! nginx (`router = "nginx"`) is stopped on drop too, unless handed over.
//!
//! Also the steps every upgrade test takes: [`run`], [`listen_addr`], [`upgrade`]
//! and [`logs`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use teal::api::client::Client;
use teal::load::{Load, LoadReport};

/// `teal` run in `dir`.
pub fn teal(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("teal").unwrap();
    cmd.current_dir(dir)
        .env_remove("TEAL_CONFIG")
        .env_remove("TEAL_SOCKET");
    cmd
}

pub struct Served {
    child: Option<Child>,
    /// Whose recorded instances are stopped on drop (None once handed over).
    state_dir: Option<PathBuf>,
    pub client: Client,
}

impl Served {
    /// Runs `teal ARGS` in `dir` as the daemon, without waiting for it.
    pub fn spawn(dir: &Path, args: &[&str]) -> Served {
        let mut cmd = teal(dir);
        cmd.args(args);
        Served::spawn_command(dir, cmd)
    }

    /// Starts `teal serve` in `dir` with its open-files limits set to `soft`
    /// and `hard` first (the shell's `ulimit`, as a login or a unit would set
    /// them), and waits, bounded, until its control socket answers.
    pub async fn start_with_open_files(dir: &Path, soft: u64, hard: u64) -> Served {
        let teal = teal(dir);
        let mut cmd = Command::new("sh");
        cmd.current_dir(dir)
            .env_remove("TEAL_CONFIG")
            .env_remove("TEAL_SOCKET")
            .arg("-c")
            .arg(format!(
                "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" serve"
            ))
            .arg(teal.get_program());
        Served::spawn_command(dir, cmd).up(dir).await
    }

    fn spawn_command(dir: &Path, mut cmd: Command) -> Served {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .unwrap();
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn teal serve");
        Served {
            child: Some(child),
            state_dir: Some(dir.join("state")),
            client: Client::new(&dir.join("state/teal.sock")),
        }
    }

    /// Starts `teal serve` and waits, bounded, until `teal status` answers
    /// (for a test without a runtime).
    pub fn serve(dir: &Path) -> Served {
        let served = Served::spawn(dir, &["serve"]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if teal(dir)
                .args(["status", "--json"])
                .output()
                .unwrap()
                .status
                .success()
            {
                return served;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "teal serve did not come up (see {})",
            dir.join("serve.log").display()
        );
    }

    /// Starts `teal serve` and waits, bounded, until its control socket answers.
    pub async fn start(dir: &Path) -> Served {
        Served::spawn(dir, &["serve"]).up(dir).await
    }

    /// Waits, bounded, until the control socket answers.
    async fn up(self, dir: &Path) -> Served {
        let up = super::eventually(Duration::from_secs(60), async || {
            self.client.status(None).await.is_ok()
        })
        .await;
        assert!(up, "teal serve came up:\n{}", logs(dir));
        self
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and waits (bounded) for its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.exited(Duration::from_secs(60))
    }

    /// Waits (bounded) until the daemon has exited by itself (it handed over).
    /// Blocks: it polls the child every 20 ms.
    pub fn exited(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("teal serve did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A successor took the instances over: dropping this does not stop them.
    pub fn hand_instances_over(&mut self) {
        self.state_dir = None;
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(state_dir) = self.state_dir.take() {
            let _ = teal::runtime::process::stop_recorded(&state_dir, Duration::from_secs(5));
            stop_managed_nginx(&state_dir);
        }
    }
}

/// Stops the managed nginx of `state_dir` (`router = "nginx"`), which a killed
/// daemon leaves running: SIGTERM to the master its pid file names, when that
/// process is an nginx master on this state dir's config.
fn stop_managed_nginx(state_dir: &Path) {
    let Some(pid) = super::nginx::master_pid(state_dir) else {
        return;
    };
    let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let conf = state_dir.join("nginx/nginx.conf");
    if String::from_utf8_lossy(&title).contains(&*conf.to_string_lossy()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// `teal ARGS` in `dir`, to completion.
pub fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    teal(dir).args(args).output().unwrap()
}

/// `teal ARGS` in `dir`, which must succeed (else its stderr and `logs`).
pub fn run_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "teal {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs(dir)
    );
    out
}

/// `[services.web]` of a `teal.toml` for these tests: the demo app, two
/// instances, 1.0.0, a preview on `preview`, quick health checks.
pub fn demo_web_toml(preview: &str) -> String {
    format!(
        r#"[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "100ms"]
instances = 2
version = "1.0.0"
preview = "{preview}"

[services.web.health]
interval = "50ms"
deadline = "5s"
"#,
        TEAL = super::TEAL
    )
}

/// Runs blocking work (the `teal` command, waiting for a daemon) off the
/// async test's threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// [`run_ok`] from an async test.
pub async fn teal_ok(dir: &Path, args: &[&str]) -> std::process::Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&dir, &args)
    })
    .await
}

/// SIGTERM to `daemon` from an async test; it must exit 0 (bounded wait).
pub async fn terminated(mut daemon: Served) {
    let status = blocking(move || daemon.terminate()).await;
    assert!(
        status.success(),
        "teal serve exits 0 on SIGTERM: {status:?}"
    );
}

/// [`upgrade`] from an async test; checks that the new daemon answers with
/// a pid of its own.
pub async fn upgraded(dir: &Path, old: Served) -> Served {
    let old_pid = old.pid();
    let path = dir.to_path_buf();
    let next = blocking(move || upgrade(&path, old)).await;
    let ping = next.client.ping().await.expect("the new daemon answers");
    assert_ne!(ping["pid"].as_u64(), Some(u64::from(old_pid)));
    next
}

/// Stops `load` and asserts that the load ran and no request failed (with the
/// logs of `dir` when one did) and, when `keepalive` is given, that each of
/// that many keep-alive clients kept the connection it opened first.
pub async fn stop_clean(load: Load, dir: &Path, keepalive: Option<usize>) -> LoadReport {
    let report = load.stop().await;
    eprintln!("{}", report.render_table());
    assert!(report.ok > 100, "the load ran: {report:?}");
    assert_eq!(report.failed(), 0, "{report:?}\n{}", logs(dir));
    if let Some(clients) = keepalive {
        assert_eq!(
            report.keepalive_connects, clients as u64,
            "no keep-alive connection was closed: {report:?}"
        );
    }
    report
}

/// The production address of the daemon in `dir`, from `teal status --json`.
pub fn listen_addr(dir: &Path) -> std::net::SocketAddr {
    let out = run_ok(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["listen"][0].as_str().unwrap().parse().unwrap()
}

/// Starts `teal serve --upgrade` in `dir` and waits (bounded) until `old` has
/// exited, which must be with 0; returns the new daemon.
pub fn upgrade(dir: &Path, mut old: Served) -> Served {
    let next = Served::spawn(dir, &["serve", "--upgrade"]);
    // The instances are the successor's: dropping the old daemon's handle
    // must not stop them.
    old.hand_instances_over();
    let status = old.exited(Duration::from_secs(60));
    assert!(
        status.success(),
        "the old daemon exits 0 after a hand-over: {status:?}\n{}",
        logs(dir)
    );
    next
}

/// The daemons' log (`dir/serve.log`) and every instance log under
/// `dir/state/logs`, without JSON lines, for a failure message.
pub fn logs(dir: &Path) -> String {
    let mut files = vec![dir.join("serve.log")];
    if let Ok(services) = std::fs::read_dir(dir.join("state/logs")) {
        for service in services.flatten() {
            let mut instances: Vec<PathBuf> = std::fs::read_dir(service.path())
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            instances.sort();
            files.extend(instances);
        }
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| !l.starts_with('{'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
