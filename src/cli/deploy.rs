//! `teal deploy SERVICE`: send the service spec from teal.toml and a version to the
//! daemon, and render its progress; with hosts, to every host's daemon over ssh,
//! in two phases (stage everywhere, then switch everywhere).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::context::{Global, block_on, service_spec};
use super::exit::UsageError;
use super::host_view::HostView;
use super::hosts::{self, HostArgs};
use crate::api::client::Client;
use crate::remote::image::{LocalImage, NotLocal};
use crate::remote::{Mode, Reporter};
use crate::secrets::SecretValues;
use crate::spec::{Config, ServiceSpec};
use crate::wire::DeployRequest;

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
    /// Break the service's deploy lock if someone else holds it (a deploy that died).
    #[arg(long)]
    force_unlock: bool,
    #[command(flatten)]
    hosts: HostArgs,
    /// The secrets file: dotenv, mode 0600, read for the service's `secrets`
    /// that this machine's environment does not set [default: .teal/secrets
    /// beside teal.toml]
    #[arg(long, value_name = "PATH")]
    secrets_file: Option<PathBuf>,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let (config, remote) = crate::config::load_remote(&global.config_path())?;
    let spec = service_spec(&config, &args.service)?;
    let Some(version) = args.version.clone().or_else(|| spec.version.clone()) else {
        return Err(UsageError(format!(
            "no version to deploy for {:?}: pass --version or set `version` in {}",
            args.service,
            config.path.display()
        ))
        .into());
    };
    let secrets = read_secrets(&config, &spec, args.secrets_file.as_deref())?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        let binary = hosts::local_binary(&remote)?;
        let options = hosts::ssh_options(&remote);
        let view = Arc::new(HostView::new(args.json));
        let reason = format!("teal deploy {} {version}", args.service);
        let promote = !args.no_promote;
        return block_on(async {
            let started = Instant::now();
            // Resolved here, on this machine's engine, before any host is touched.
            let image = match LocalImage::of(&spec, &version).await {
                Ok(image) => image,
                Err(NotLocal(why)) => {
                    view.note("teal", &why);
                    None
                }
            };
            let open = hosts::open(
                &dests,
                &remote,
                &options,
                Mode::Install(binary),
                Some(&spec),
                args.hosts.parallel,
            );
            let lock = Some((args.service.as_str(), reason.as_str(), args.force_unlock));
            let fleet = hosts::open_fleet(open, view.clone(), lock).await?;
            let result = hosts::interruptible(async {
                // Every host gets the image before any host stages.
                if let Some(image) = &image {
                    fleet.ship(image).await?;
                }
                let pinned = image.as_ref().map(|i| i.id.as_str());
                fleet
                    .deploy(&spec, &version, pinned, promote, &secrets)
                    .await
            })
            .await;
            fleet.close().await;
            let outcomes = result?;
            let what = if promote {
                format!("{} {version} is live", args.service)
            } else {
                format!(
                    "{} {version} is staged (`teal promote {}` switches)",
                    args.service, args.service
                )
            };
            Ok::<_, anyhow::Error>(hosts::report(&view, &what, &outcomes, started))
        })?;
    }
    let client = match &global.socket {
        Some(socket) => Client::new(socket),
        None => Client::new(&config.proxy.control),
    };
    let request = DeployRequest {
        spec,
        version,
        image: None,
        promote: !args.no_promote,
        secrets,
    };
    block_on(async {
        if args.force_unlock {
            super::unlock::force(&client, &args.service).await?;
        }
        let stream = client.deploy(&request).await?;
        super::render::follow(stream, args.json).await
    })?
}

/// The values of `spec`'s secrets, read here before anything starts: this
/// machine's environment first, then the secrets file.
fn read_secrets(
    config: &Config,
    spec: &ServiceSpec,
    file: Option<&Path>,
) -> anyhow::Result<SecretValues> {
    if spec.secrets.is_empty() {
        return Ok(SecretValues::default());
    }
    let file = super::context::secrets_file(config, file)?;
    let values =
        crate::secrets::gather(&spec.secrets.names, &file, |name| std::env::var(name).ok())?;
    Ok(values)
}
