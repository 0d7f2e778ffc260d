//! `teal serve` as a real child process (the built binary) on `dir/teal.toml`,
//! its log appended to `dir/serve.log`, for tests that kill or restart the daemon.
//!
//! Live instances outlive the daemon, so dropping a [`Served`] kills the daemon
//! and then stops every process instance recorded under its state dir: a test
//! leaves nothing running, even when it panics.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use teal::api::client::Client;
use tokio::process::{Child, Command};

use super::{TEAL, eventually};

pub struct Served {
    child: Option<Child>,
    state_dir: PathBuf,
    pub client: Client,
}

impl Served {
    /// Starts `teal serve` (state in `dir/state`) and waits, bounded, until its
    /// control socket answers.
    pub async fn start(dir: &Path) -> Served {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .unwrap();
        let child = Command::new(TEAL)
            .args(["serve", "--config"])
            .arg(dir.join("teal.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn teal serve");
        let served = Served {
            child: Some(child),
            state_dir: dir.join("state"),
            client: Client::new(&dir.join("state/teal.sock")),
        };
        let up = eventually(Duration::from_secs(60), async || {
            served.client.status(None).await.is_ok()
        })
        .await;
        assert!(
            up,
            "teal serve came up (see {})",
            dir.join("serve.log").display()
        );
        served
    }

    /// SIGKILL, and reaps it.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// SIGTERM, and waits (bounded) for its exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = child.start_kill();
                panic!("teal serve did not stop on SIGTERM");
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            // Reaped by tokio; stopping the instances does not wait for it.
        }
        let _ = teal::runtime::process::stop_recorded(&self.state_dir, Duration::from_secs(5));
    }
}
