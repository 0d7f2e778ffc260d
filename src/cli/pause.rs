//! `teal pause SERVICE`: hold new production requests of the service (or of
//! one of its hostnames) until `teal resume`, each for at most `--timeout`.

use std::process::ExitCode;
use std::time::Duration;

use super::context::Global;
use super::hosts::HostArgs;
use crate::state::GateChange;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// How long one request is held before it gets 503.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Only requests for this one of the service's hostnames (their Host header).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    #[command(flatten)]
    hosts: HostArgs,
    /// Seconds in the Retry-After of a held request's 503 (default 5).
    #[arg(long, value_name = "SECONDS")]
    retry_after: Option<u32>,
    /// Print the service's maintenance and pause as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    if args.timeout.is_zero() {
        anyhow::bail!("--timeout must be more than zero");
    }
    let change = GateChange::Pause {
        host: args.hostname,
        timeout_ms: Some(args.timeout.as_millis().min(u64::MAX as u128) as u64),
        retry_after: args.retry_after,
    };
    super::gate::send(global, &args.service, &change, args.json, &args.hosts)
}
