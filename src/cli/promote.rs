//! `teal promote SERVICE`: switch production to the staged slot.

use std::process::ExitCode;

use super::context::{Global, block_on};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let client = global.client()?;
    block_on(async {
        let stream = client.promote(&args.service).await?;
        super::render::follow(stream, args.json).await
    })?
}
