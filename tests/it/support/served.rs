//! The `teal` binary as a user runs it: the command in a directory (with no
//! `TEAL_CONFIG`/`TEAL_SOCKET` from the environment), and `teal serve` as a
//! real child process on `dir/teal.toml` (state in `dir/state`, its log
//! appended to `dir/serve.log`) for tests that stop, kill, restart or upgrade
//! the daemon.
//!
//! Live instances outlive the daemon, so dropping a [`Served`] kills the daemon
//! and then stops every process instance recorded under its state dir: a test
//! leaves nothing running, even when it panics. After an upgrade the instances
//! belong to the successor: [`Served::hand_instances_over`] says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use teal::api::client::Client;

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
        assert!(
            up,
            "teal serve came up (see {})",
            dir.join("serve.log").display()
        );
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
        }
    }
}
