//! `teal serve`: the daemon in the foreground.

use std::process::ExitCode;

use anyhow::Context;

use super::context::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Proxy worker threads, each with its own event loop (overrides
    /// `[proxy] workers`) [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("info");
    let mut config = global.load_config()?;
    if let Some(n) = args.threads {
        config.proxy.workers = Some(usize::from(n));
    }
    // The control plane (deploys, health checks, the control API). Requests
    // never run here: the builtin proxy has its own worker threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("teal-control")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(crate::daemon::run(&config, super::signals::terminated()))?;
    Ok(ExitCode::SUCCESS)
}
