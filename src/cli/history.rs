//! `teal history SERVICE`: deploys, switches and rollbacks, each with its timeline.

use std::io::Write;
use std::process::ExitCode;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs};
use crate::state::{HistoryEntry, TimelineStep};
use crate::wire::History;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    #[command(flatten)]
    hosts: HostArgs,
    /// Print the history as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !args.hosts.hosts.is_empty();
    let (_, remote) = hosts::load_lenient(&global.config_path(), given)?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        return block_on(async {
            let fleet = hosts::attach(&dests, &remote, args.hosts.parallel).await?;
            let answers = fleet.history(&args.service).await;
            fleet.close().await;
            hosts::print_per_host(&answers, args.json, "history", render)
        })?;
    }
    let client = global.client()?;
    let history = block_on(client.history(&args.service))??;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&history)?)?;
    } else {
        write!(out, "{}", render(&history))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The human view of a history: one line per action, each followed by its
/// timeline as a compact table (step, start offset, duration, what came of it).
fn render(history: &History) -> String {
    let mut out = format!(
        "{:<20}  {:<8}  {:<14}  {:<14}  {:<5}  {:<9}  {:>8}  reason\n",
        "time", "action", "version", "from", "slot", "result", "duration"
    );
    for e in &history.entries {
        out.push_str(&format!(
            "{:<20}  {:<8}  {:<14}  {:<14}  {:<5}  {:<9}  {:>7.2}s  {}\n",
            e.at,
            serde_plain(&e.action),
            e.version,
            e.from_version.as_deref().unwrap_or("-"),
            e.slot.as_str(),
            serde_plain(&e.result),
            e.duration_ms as f64 / 1000.0,
            e.reason.as_deref().unwrap_or("")
        ));
        out.push_str(&ran(e));
        out.push_str(&timeline(&e.timeline));
    }
    out
}

/// What an entry ran, under its line: the image (docker) and the instances
/// (container names, or pids for processes); nothing when neither was recorded.
fn ran(e: &HistoryEntry) -> String {
    let mut parts = Vec::new();
    if let Some(image) = e.image_id.as_deref() {
        parts.push(format!("image {}", super::status::short_image(image)));
    }
    if !e.instances.is_empty() {
        parts.push(format!("instances {}", e.instances.join(" ")));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("{:<20}  {}\n", "", parts.join("  "))
}

/// `  │ health       +0.41s   0.52s  exit 0 in 0.20s`, one line per step; a
/// failed step is marked with ✗.
fn timeline(steps: &[TimelineStep]) -> String {
    let mut out = String::new();
    for step in steps {
        let mark = if step.failed { "✗" } else { " " };
        let line = format!(
            "  │ {mark} {:<11} {:>8} {:>8}  {}",
            step.step,
            format!("+{:.2}s", step.offset_ms as f64 / 1000.0),
            format!("{:.2}s", step.duration_ms as f64 / 1000.0),
            step.note.as_deref().unwrap_or("")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The serde spelling of a unit enum variant ("rollback", "failed").
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::Slot;
    use crate::state::{Action, HistoryResult};

    fn step(
        name: &str,
        offset_ms: u64,
        duration_ms: u64,
        failed: bool,
        note: &str,
    ) -> TimelineStep {
        TimelineStep {
            step: name.into(),
            at: "2026-01-01T00:00:00.000Z".into(),
            offset_ms,
            duration_ms,
            failed,
            note: (!note.is_empty()).then(|| note.to_string()),
        }
    }

    fn entry(image_id: Option<&str>, instances: &[&str]) -> HistoryEntry {
        HistoryEntry {
            id: "d1".into(),
            at: "2026-01-01T00:00:00Z".into(),
            action: Action::Deploy,
            version: "1.0.0".into(),
            from_version: None,
            slot: Slot::Blue,
            result: HistoryResult::Live,
            reason: None,
            duration_ms: 10,
            image_id: image_id.map(str::to_string),
            instances: instances.iter().map(|i| i.to_string()).collect(),
            timeline: Vec::new(),
            verify: None,
        }
    }

    #[test]
    fn what_ran_shows_an_image_only_when_there_is_one() {
        let process = ran(&entry(None, &["4242", "4243"]));
        assert_eq!(process.trim(), "instances 4242 4243");
        assert!(!process.contains("image"));
        let docker = ran(&entry(Some("sha256:0123456789abcdef0123"), &["web-blue-0"]));
        assert!(docker.trim().starts_with("image "), "{docker}");
        assert!(docker.contains("instances web-blue-0"), "{docker}");
        assert_eq!(ran(&entry(None, &[])), "");
    }

    #[test]
    fn the_timeline_is_a_compact_table_with_failures_marked() {
        let text = timeline(&[
            step("pre_deploy", 0, 1_250, false, "exit 0 in 1.25s"),
            step("verify", 1_250, 40, true, "failed: error rate 20%"),
        ]);
        assert_eq!(
            text,
            "  │   pre_deploy    +0.00s    1.25s  exit 0 in 1.25s\n  │ ✗ verify        +1.25s    0.04s  failed: error rate 20%\n"
        );
    }
}
