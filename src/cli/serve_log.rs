//! `teal serve --log-file PATH`: the daemon's own output (its stdout and
//! stderr, so its log lines and anything a crash prints) appended to PATH,
//! and bounded: once PATH is past `--log-max`, it becomes `PATH.1` (replacing
//! the one before) and a new PATH begins. At most about twice the bound is
//! kept. The detached daemon teal starts on a host without systemd runs with
//! `--log-file serve.log`; under systemd the journal bounds the output.
//!
//! This owns only the daemon's own output; instance output is the runtime's
//! (`runtime/process/runs.rs`).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// How often the file's size is looked at: it may pass the bound by what is
/// written in that time.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// `--log-max` unless given.
pub const DEFAULT_MAX: &str = "10MiB";

/// Sends this process's stdout and stderr to `path` from now on, and starts
/// the thread that moves it aside past `max` bytes. The thread ends with the
/// process.
pub fn start(path: &Path, max: u64) -> anyhow::Result<()> {
    redirect(path).with_context(|| format!("opening --log-file {}", path.display()))?;
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("teal-serve-log".into())
        .spawn(move || {
            loop {
                std::thread::sleep(CHECK_EVERY);
                let past = std::fs::metadata(&path).is_ok_and(|m| m.len() > max);
                if past && let Err(e) = rotate(&path) {
                    tracing::warn!("could not move {} aside: {e}", path.display());
                }
            }
        })
        .context("starting the --log-file thread")?;
    Ok(())
}

/// `PATH` → `PATH.1`, then a new `PATH` for stdout and stderr.
fn rotate(path: &Path) -> std::io::Result<()> {
    std::fs::rename(path, previous(path))?;
    redirect(path)
}

fn previous(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".1");
    PathBuf::from(name)
}

/// Opens `path` for appending (owner only: the daemon's output names
/// services, hosts and paths) and makes it fd 1 and 2.
fn redirect(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    nix::unistd::dup2_stdout(&file)?;
    nix::unistd::dup2_stderr(&file)?;
    Ok(())
}
