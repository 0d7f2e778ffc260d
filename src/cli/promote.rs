//! `teal promote SERVICE`: switch production to the staged slot, on the local
//! daemon or on every host.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::context::{Global, block_on};
use super::host_view::HostView;
use super::hosts::{self, HostArgs};
use crate::remote::Mode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Break the service's deploy lock if someone else holds it.
    #[arg(long)]
    force_unlock: bool,
    #[command(flatten)]
    hosts: HostArgs,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !args.hosts.hosts.is_empty();
    let (_, remote) = hosts::load(&global.config_path(), given)?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        let options = hosts::ssh_options(&remote);
        let view = Arc::new(HostView::new(args.json));
        let reason = format!("teal promote {}", args.service);
        return block_on(async {
            let started = Instant::now();
            let open = hosts::open(
                &dests,
                &remote,
                &options,
                Mode::Attach,
                None,
                args.hosts.parallel,
            );
            let lock = Some((args.service.as_str(), reason.as_str(), args.force_unlock));
            let fleet = hosts::open_fleet(open, view.clone(), lock).await?;
            let result = hosts::interruptible(fleet.promote(&args.service)).await;
            fleet.close().await;
            let what = format!("{} is promoted", args.service);
            Ok::<_, anyhow::Error>(hosts::report(&view, &what, &result?, started))
        })?;
    }
    let client = global.client()?;
    block_on(async {
        if args.force_unlock {
            super::unlock::force(&client, &args.service).await?;
        }
        let stream = client.promote(&args.service).await?;
        super::render::follow(stream, args.json).await
    })?
}
