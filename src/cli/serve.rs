//! `teal serve`: the daemon in the foreground; `teal serve --upgrade` takes
//! over from the daemon running on the same state directory; SIGUSR2 makes a
//! running daemon start that successor from the binary at its own path;
//! SIGUSR1 makes it reopen its access log (logrotate's convention).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;

use super::context::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Proxy worker threads, each with its own event loop (overrides
    /// `[proxy] workers`) [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Take over from the daemon running on the same state directory: its
    /// listening sockets, its instances and its idle client connections, with
    /// no connection refused and no request lost. If this daemon fails before
    /// it serves, the running one goes on as if nothing happened.
    #[arg(long)]
    upgrade: bool,
    /// Append this daemon's own output (log lines, stdout and stderr) to FILE,
    /// bounded: past --log-max it becomes FILE.1 and a new FILE begins.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// With --log-file: the size at which FILE is moved aside (B, KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = super::serve_log::DEFAULT_MAX,
          value_parser = parse_size, requires = "log_file")]
    log_max: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    match crate::config::parse_bytes(text) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid size {text:?}: write a number of bytes with an optional unit, e.g. \"10MiB\""
        )),
    }
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let activated = crate::systemd::Activated::take()?;
    if let Some(path) = &args.log_file {
        super::serve_log::start(path, args.log_max)?;
    }
    super::init_tracing("info");
    crate::open_files::raise_and_log();
    let mut config = global.load_config()?;
    if let Some(n) = args.threads {
        config.proxy.workers = Some(usize::from(n));
    }
    // The binary as started: after a new one is installed over it, SIGUSR2
    // starts that one.
    let binary = started_as().context("finding the teal binary")?;
    // The control plane (deploys, health checks, the control API). Requests
    // never run here: the builtin proxy has its own worker threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("teal-control")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        tokio::spawn(super::signals::on_upgrade(move || start_successor(&binary)));
        let reopen = Arc::new(Notify::new());
        let asked = Arc::clone(&reopen);
        tokio::spawn(super::signals::on_reopen(move || asked.notify_one()));
        let stop = super::signals::terminated();
        if args.upgrade {
            crate::daemon::upgrade(&config, stop, &reopen).await
        } else {
            crate::daemon::run(&config, activated, stop, &reopen).await
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The path this process was started as, symlinks not followed (a new binary
/// installed at that path is what an upgrade runs): argv[0] when it names a
/// path, else the executable the kernel ran.
fn started_as() -> std::io::Result<PathBuf> {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    match argv0 {
        Some(path) if path.components().count() > 1 => std::path::absolute(path),
        _ => std::env::current_exe(),
    }
}

/// Starts `binary serve --upgrade` with this process's arguments, in a session
/// of its own (it outlives this daemon), sharing its output.
fn start_successor(binary: &PathBuf) {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == "--upgrade") {
        args.push("--upgrade".into());
    }
    let started = std::process::Command::new(binary)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    match started {
        Ok(mut child) => {
            tracing::info!(pid = child.id(), binary = %binary.display(), "SIGUSR2: successor started");
            // Reaped here if it fails while this daemon still runs.
            std::thread::spawn(move || child.wait());
        }
        Err(error) => {
            tracing::error!(%error, binary = %binary.display(), "SIGUSR2: cannot start the successor");
        }
    }
}
