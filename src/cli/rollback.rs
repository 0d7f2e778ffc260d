//! `teal rollback SERVICE`: back to the previous version.

use std::process::ExitCode;

use super::context::{Global, block_on};
use crate::api::wire::ActionRequest;

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
    // The spec from teal.toml is sent along in case the rollback has to redeploy;
    // without a readable config the daemon uses the spec it last deployed.
    let spec = global
        .load_config()
        .ok()
        .and_then(|c| c.services.get(&args.service).cloned());
    let client = global.client()?;
    block_on(async {
        let stream = client
            .rollback(&args.service, &ActionRequest { spec })
            .await?;
        super::render::follow(stream, args.json).await
    })?
}
