//! `teal stop SERVICE`: stop every instance of a service on purpose. Stopping
//! `teal serve` keeps live instances running for the next daemon to adopt; this
//! is the way to take them down.

use std::process::ExitCode;

use super::context::{Global, block_on};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Break the service's deploy lock if someone else holds it.
    #[arg(long)]
    force_unlock: bool,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let client = global.client()?;
    block_on(async {
        if args.force_unlock {
            super::unlock::force(&client, &args.service).await?;
        }
        let stream = client.stop(&args.service).await?;
        super::render::follow(stream, args.json).await
    })?
}
