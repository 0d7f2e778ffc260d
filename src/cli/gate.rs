//! What `teal maintenance`, `teal pause` and `teal resume` share: sending one
//! gate change to the daemon and saying what is in force after it (also the
//! lines `teal status` shows for a gated service).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs};
use crate::state::{GateChange, Gates};
use crate::wire::GateAnswer;

/// Sends `change` for `service` to the local daemon, or to every host
/// (`--host`, else the service's `servers` in teal.toml); prints each answer
/// as JSON or as lines.
pub fn send(
    global: &Global,
    service: &str,
    change: &GateChange,
    json: bool,
    hosts: &HostArgs,
) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !hosts.hosts.is_empty();
    let (_, remote) = hosts::load_lenient(&global.config_path(), given)?;
    let dests = hosts.targets(&remote, Some(service));
    if !dests.is_empty() {
        return block_on(async {
            let fleet = hosts::attach(&dests, &remote, hosts.parallel).await?;
            let answers = fleet
                .query(|host| {
                    let (client, change) = (host.client.clone(), change.clone());
                    let service = service.to_string();
                    async move { client.change_gate(&service, &change).await }
                })
                .await;
            fleet.close().await;
            hosts::print_per_host(&answers, json, "gate", |answer| render(answer, change))
        })?;
    }
    let client = global.client()?;
    let answer = block_on(client.change_gate(service, change))??;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        write!(out, "{}", render(&answer, change))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn render(answer: &GateAnswer, change: &GateChange) -> String {
    let name = &answer.service;
    let mut out = match (change, answer.changed) {
        (GateChange::MaintenanceOn { .. } | GateChange::Pause { .. }, _) => String::new(),
        (GateChange::MaintenanceOff { .. }, false) => format!("{name}: was not in maintenance\n"),
        (GateChange::Resume { .. }, false) => format!("{name}: was not paused\n"),
        (GateChange::MaintenanceOff { .. }, true) => format!("{name}: maintenance off\n"),
        (GateChange::Resume { .. }, true) => {
            format!("{name}: resumed (held requests are served now)\n")
        }
    };
    let lines = lines(&answer.gates);
    if lines.is_empty() {
        out.push_str(&format!("{name}: serving normally\n"));
    }
    for line in lines {
        out.push_str(&format!("{name}: {line}\n"));
    }
    out
}

/// One line per maintenance and pause in force: "maintenance since T: message",
/// "paused since T (requests held up to 30s each)", with the hostname when one.
pub fn lines(gates: &Gates) -> Vec<String> {
    let scope = |host: &Option<String>| match host {
        Some(host) => format!(" (hostname {host})"),
        None => String::new(),
    };
    let mut lines = Vec::new();
    for m in &gates.maintenance {
        lines.push(format!(
            "maintenance{} since {}: {} (503, Retry-After {}s)",
            scope(&m.host),
            m.since,
            m.message.as_deref().unwrap_or("the default message"),
            m.retry_after
        ));
    }
    for p in &gates.pause {
        lines.push(format!(
            "paused{} since {}: requests held up to {} each, then 503 (Retry-After {}s)",
            scope(&p.host),
            p.since,
            humantime::format_duration(Duration::from_millis(p.timeout_ms)),
            p.retry_after
        ));
    }
    lines
}
