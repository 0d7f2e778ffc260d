//! `teal image has|load` (hidden): the host's half of shipping an image, run
//! over ssh by a deploying teal. They talk to this machine's Docker engine
//! through bollard (`DOCKER_HOST` honoured), so a host needs no docker CLI.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;

use super::context::block_on;
use crate::remote::image::HostEngine;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print whether the engine has image ID, as one JSON line:
    /// {"id": ID, "present": true|false}.
    Has {
        /// The image ID (`sha256:...`).
        id: String,
        /// When the engine has it, point this reference (`repo:tag`) at it too.
        #[arg(long, value_name = "REF")]
        tag: Option<String>,
    },
    /// Load a zstd-compressed image archive (`docker save` format) from stdin.
    Load {
        /// Fail unless the engine has this image ID afterwards.
        #[arg(long, value_name = "ID")]
        expect: Option<String>,
        /// Point this reference (`repo:tag`) at the expected image afterwards.
        #[arg(long, value_name = "REF", requires = "expect")]
        tag: Option<String>,
    },
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    block_on(async {
        let engine = HostEngine::connect().await?;
        match args.command {
            Command::Has { id, tag } => {
                let presence = engine.presence(&id).await?;
                if let (true, Some(reference)) = (presence.present, &tag) {
                    engine.tag(&id, reference).await?;
                }
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", serde_json::to_string(&presence)?)?;
                out.flush()?;
            }
            Command::Load { expect, tag } => {
                let loaded = engine.load(tokio::io::stdin()).await?;
                if let Some(id) = &expect {
                    if !engine.presence(id).await?.present {
                        bail!(
                            "the engine loaded the stream ({}) but has no image {id}",
                            loaded.join("; ")
                        );
                    }
                    if let Some(reference) = &tag {
                        engine.tag(id, reference).await?;
                    }
                }
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", serde_json::json!({ "loaded": loaded }))?;
                out.flush()?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })?
}
