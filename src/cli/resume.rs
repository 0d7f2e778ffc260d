//! `teal resume SERVICE`: end a pause; the requests it held are served.

use std::process::ExitCode;

use super::context::Global;
use super::hosts::HostArgs;
use crate::state::GateChange;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Only the pause of this one of the service's hostnames (default: every
    /// pause of the service).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    #[command(flatten)]
    hosts: HostArgs,
    /// Print the service's maintenance and pause as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let change = GateChange::Resume {
        host: args.hostname,
    };
    super::gate::send(global, &args.service, &change, args.json, &args.hosts)
}
