//! `teal history SERVICE`: deploys, switches and rollbacks.

use std::process::ExitCode;

use super::context::{Global, block_on};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Print the history as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let client = global.client()?;
    let history = block_on(client.history(&args.service))??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20}  {:<8}  {:<14}  {:<14}  {:<5}  {:<6}  {:>8}  reason",
        "time", "action", "version", "from", "slot", "result", "duration"
    );
    for e in &history.entries {
        println!(
            "{:<20}  {:<8}  {:<14}  {:<14}  {:<5}  {:<6}  {:>7.2}s  {}",
            e.at,
            serde_plain(&e.action),
            e.version,
            e.from_version.as_deref().unwrap_or("-"),
            e.slot.as_str(),
            serde_plain(&e.result),
            e.duration_ms as f64 / 1000.0,
            e.reason.as_deref().unwrap_or("")
        );
        if e.image_id.is_some() || !e.instances.is_empty() {
            println!(
                "{:<20}  image {}  {}",
                "",
                e.image_id
                    .as_deref()
                    .map(super::status::short_image)
                    .unwrap_or("-"),
                e.instances.join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The serde spelling of a unit enum variant ("rollback", "failed").
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
