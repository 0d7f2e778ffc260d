//! The `teal` binary as a user runs it: the command in a directory (with no
//! `TEAL_CONFIG`/`TEAL_SOCKET` from the environment), and `teal serve` as a
//! child process that a failing test kills and reaps.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

/// `teal` run in `dir`.
pub fn teal(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("teal").unwrap();
    cmd.current_dir(dir)
        .env_remove("TEAL_CONFIG")
        .env_remove("TEAL_SOCKET");
    cmd
}

/// `teal serve` as a child process on a state dir; killed and reaped if a
/// test panics first. Either way the instances it leaves running (live ones
/// outlive it) are stopped when it is dropped, unless the state dir was taken
/// out (a successor daemon owns them now).
pub struct Served(pub Option<Child>, pub Option<std::path::PathBuf>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(state_dir) = self.1.take() {
            let _ = teal::runtime::process::stop_recorded(&state_dir, Duration::from_secs(5));
        }
    }
}

/// Starts `teal serve` (its log appended to `dir/serve.log`) and waits until
/// the control socket answers.
pub fn serve(dir: &Path) -> Served {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let child = teal(dir)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let served = Served(Some(child), Some(dir.join("state")));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let out = teal(dir).args(["status", "--json"]).output().unwrap();
        if out.status.success() {
            return served;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("teal serve did not come up");
}

/// SIGTERM, then waits (bounded) for the exit status.
pub fn stop(mut served: Served) -> std::process::ExitStatus {
    let mut child = served.0.take().expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("teal serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
