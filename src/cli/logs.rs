//! `teal logs SERVICE`: instance output of a slot, optionally followed.

use std::io::Write;
use std::process::ExitCode;

use http_body_util::BodyExt;

use super::context::{Global, block_on};
use crate::slot::Slot;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Which slot [default: the live one]
    #[arg(long)]
    slot: Option<Slot>,
    /// Keep printing new output until interrupted.
    #[arg(short, long)]
    follow: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let client = global.client()?;
    block_on(async {
        let mut body = client.logs(&args.service, args.slot, args.follow).await?;
        let mut out = std::io::stdout();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write_all(&data)?;
                out.flush()?;
            }
        }
        Ok::<_, anyhow::Error>(())
    })??;
    Ok(ExitCode::SUCCESS)
}
