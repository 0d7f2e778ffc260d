//! `teal maintenance SERVICE on|off`: answer every production request of the
//! service (or of one of its hostnames) with 503 and `Retry-After`, or stop.

use std::process::ExitCode;

use super::context::Global;
use super::hosts::HostArgs;
use crate::state::GateChange;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// `on` or `off`.
    state: Switch,
    /// The 503's text (on only; default: "SERVICE is down for maintenance...").
    #[arg(long)]
    message: Option<String>,
    /// Only requests for this one of the service's hostnames (their Host
    /// header); `off` without it ends every maintenance of the service.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    #[command(flatten)]
    hosts: HostArgs,
    /// Seconds in the 503's Retry-After (on only; default 60).
    #[arg(long, value_name = "SECONDS")]
    retry_after: Option<u32>,
    /// Print the service's maintenance and pause as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let change = match args.state {
        Switch::On => GateChange::MaintenanceOn {
            host: args.hostname,
            message: args.message,
            retry_after: args.retry_after,
        },
        Switch::Off => {
            if args.message.is_some() || args.retry_after.is_some() {
                anyhow::bail!("--message and --retry-after go with `on`, not `off`");
            }
            GateChange::MaintenanceOff {
                host: args.hostname,
            }
        }
    };
    super::gate::send(global, &args.service, &change, args.json, &args.hosts)
}
