//! `teal serve`: the daemon in the foreground.

use std::process::ExitCode;

use anyhow::Context;

use super::context::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Worker threads for the proxy and daemon [default: one per core]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("info");
    let config = global.load_config()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(crate::daemon::run(&config))?;
    Ok(ExitCode::SUCCESS)
}
