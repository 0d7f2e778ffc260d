//! `teal demo-app`: the Uptimer demo app as a foreground process.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::demo::app::{AppConfig, serve};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; 0.0.0.0 inside a container.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT")]
    port: u16,
    /// Version to report; a version starting with "broken" answers 500, one starting
    /// with "flaky" (`flakyN-...`: N%) answers 500 to a share of requests but /healthz.
    #[arg(long = "app-version", env = "TEAL_VERSION", default_value = "dev")]
    version: String,
    /// How long to answer 503 "loading" after start.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    boot_delay: Duration,
    /// Print one line per request on stdout, as real apps do.
    #[arg(long)]
    log_requests: bool,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = AppConfig {
        bind: args.bind,
        port: args.port,
        version: args.version,
        instance: std::env::var("TEAL_INSTANCE").unwrap_or_else(|_| "0".into()),
        slot: std::env::var("TEAL_SLOT").unwrap_or_default(),
        boot_delay: args.boot_delay,
        greeting: std::env::var("GREETING").ok(),
        log_requests: args.log_requests,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            crate::cli::signals::terminated().await;
            on_signal.cancel();
        });
        serve(cfg, shutdown).await.context("demo app")
    })?;
    Ok(ExitCode::SUCCESS)
}
