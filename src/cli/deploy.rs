//! `teal deploy SERVICE`: send the service spec from teal.toml and a version to the
//! daemon, and render its progress.

use std::process::ExitCode;

use super::context::{Global, block_on, service_spec};
use super::exit::UsageError;
use crate::api::client::Client;
use crate::api::wire::DeployRequest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name, as in [services.NAME] of teal.toml.
    service: String,
    /// Version to deploy [default: the service's `version` in teal.toml]
    #[arg(long = "version", value_name = "V")]
    version: Option<String>,
    /// Stop once the new slot is healthy and on the preview listener; `teal promote` switches.
    #[arg(long)]
    no_promote: bool,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let config = global.load_config()?;
    let spec = service_spec(&config, &args.service)?;
    let Some(version) = args.version.or_else(|| spec.version.clone()) else {
        return Err(UsageError(format!(
            "no version to deploy for {:?}: pass --version or set `version` in {}",
            args.service,
            config.path.display()
        ))
        .into());
    };
    let client = match &global.socket {
        Some(socket) => Client::new(socket),
        None => Client::new(&config.proxy.control),
    };
    let request = DeployRequest {
        spec,
        version,
        promote: !args.no_promote,
    };
    block_on(async {
        let stream = client.deploy(&request).await?;
        super::render::follow(stream, args.json).await
    })?
}
