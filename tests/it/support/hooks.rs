//! Helpers for the hook, verify and migration tests: hook specs from shell
//! snippets, the lines a hook printed, and reading the last history entry.

use std::time::Duration;

use teal::spec::{HookPlace, HookSpec};
use teal::state::HistoryEntry;
use teal::wire::Event;

use super::{ActionResult, TestDaemon};

/// A hook running `script` with bash (`$1`.. are `args`), 30 s timeout.
pub fn bash(script: &str, args: &[&str]) -> HookSpec {
    let mut command = vec![
        "bash".to_string(),
        "-c".into(),
        script.into(),
        "hook".into(),
    ];
    command.extend(args.iter().map(|a| a.to_string()));
    HookSpec {
        command,
        timeout: Duration::from_secs(30),
        run_in: HookPlace::Host,
    }
}

/// The info lines a hook printed, in order (without the "point | " prefix),
/// whether it ran on the host or in an image.
pub fn hook_lines(result: &ActionResult, point: &str) -> Vec<String> {
    let prefix = format!("{point} | ");
    result
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Info { message, .. } => message.strip_prefix(&prefix).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// The service's last history entry.
pub async fn last_entry(d: &TestDaemon, service: &str) -> HistoryEntry {
    let history = d.client.history(service).await.expect("history");
    history.entries.last().cloned().expect("an entry")
}

/// The step names of an entry's timeline, in order.
pub fn steps(entry: &HistoryEntry) -> Vec<String> {
    entry.timeline.iter().map(|s| s.step.clone()).collect()
}
