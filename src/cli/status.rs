//! `teal status [SERVICE]`: slots, versions and instance health.

use std::io::Write;
use std::process::ExitCode;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs};
use crate::slot::Slot;
use crate::wire::{CertificateStatus, ServiceStatus, SlotStatus, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service.
    service: Option<String>,
    #[command(flatten)]
    hosts: HostArgs,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !args.hosts.hosts.is_empty();
    if given || args.service.is_some() {
        let (_, remote) = hosts::load_lenient(&global.config_path(), given)?;
        let dests = args.hosts.targets(&remote, args.service.as_deref());
        if !dests.is_empty() {
            return remote_status(&args, &dests, &remote);
        }
    }
    let client = global.client()?;
    let status = block_on(client.status(args.service.as_deref()))??;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        write!(out, "{}", render(&status))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Status of every host: a section per host, or `{"hosts": [...]}` as JSON.
fn remote_status(
    args: &Args,
    dests: &[crate::spec::Destination],
    remote: &crate::spec::RemoteSpec,
) -> anyhow::Result<ExitCode> {
    block_on(async {
        let fleet = hosts::attach(dests, remote, args.hosts.parallel).await?;
        let answers = fleet.status(args.service.as_deref()).await;
        fleet.close().await;
        hosts::print_per_host(&answers, args.json, "status", render)
    })?
}

/// The human view of a status.
pub fn render(status: &Status) -> String {
    let listen: Vec<String> = status.listen.iter().map(|a| a.to_string()).collect();
    let tls = match status.tls_listen {
        Some(addr) => format!(", TLS on {addr}"),
        None => String::new(),
    };
    let mut out = format!(
        "teal {} listening on {}{tls}\n",
        status.daemon_version,
        listen.join(", ")
    );
    if status.services.is_empty() {
        out.push_str("no services deployed yet\n");
    }
    for service in &status.services {
        out.push_str(&render_service(service));
    }
    if !status.certificates.is_empty() {
        out.push_str("\ncertificates (ACME)\n");
    }
    for cert in &status.certificates {
        out.push_str(&render_certificate(cert));
    }
    out
}

fn render_certificate(c: &CertificateStatus) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut out = format!("  {}  {}\n", c.service, c.names.join(" "));
    match &c.serial {
        Some(serial) => out.push_str(&format!(
            "      serial {serial}, issuer {}, not after {}\n",
            dash(&c.issuer),
            dash(&c.not_after)
        )),
        None => out.push_str("      no certificate yet: served over plain HTTP\n"),
    }
    out.push_str(&format!(
        "      last attempt {}{}, next attempt {}\n",
        dash(&c.last_attempt),
        c.last_error
            .as_ref()
            .map(|e| format!(" failed: {e}"))
            .unwrap_or_default(),
        dash(&c.next_attempt)
    ));
    out
}

fn render_service(s: &ServiceStatus) -> String {
    let live = match (&s.active_slot, &s.active_version) {
        (Some(slot), Some(v)) => format!("{v} on {slot}"),
        _ => "nothing live".into(),
    };
    let mut extra = Vec::new();
    if !s.hosts.is_empty() {
        extra.push(format!("hosts {}", s.hosts.join(" ")));
    }
    if let Some(p) = s.preview {
        extra.push(format!("preview {p}"));
    }
    if s.busy {
        extra.push("action in progress".into());
    }
    let mut out = format!(
        "\n{}  {live}  [{}{}]\n",
        s.name,
        s.runtime,
        if extra.is_empty() {
            String::new()
        } else {
            format!(", {}", extra.join(", "))
        }
    );
    for line in super::gate::lines(&s.gates) {
        out.push_str(&format!("  {line}\n"));
    }
    for secret in &s.secrets {
        out.push_str(&format!(
            "  secret {}  digest {}  changed {}\n",
            secret.name, secret.digest, secret.changed
        ));
    }
    for (slot, st) in [(Slot::Blue, &s.slots.blue), (Slot::Green, &s.slots.green)] {
        out.push_str(&render_slot(slot, st));
    }
    out
}

fn render_slot(slot: Slot, s: &SlotStatus) -> String {
    let healthy = s.instances.iter().filter(|i| i.healthy).count();
    let mut line = format!(
        "  {:<6} {:<8} {:<16}",
        slot.as_str(),
        s.state.to_string(),
        s.version.as_deref().unwrap_or("-")
    );
    if !s.instances.is_empty() {
        line.push_str(&format!(" {healthy}/{} healthy", s.instances.len()));
    }
    if let Some(image) = &s.image_id {
        line.push_str(&format!("  image {}", short_image(image)));
    }
    line.push('\n');
    for i in &s.instances {
        let restarts = if i.restarts > 0 {
            format!(", {} restarts", i.restarts)
        } else {
            String::new()
        };
        line.push_str(&format!(
            "      {} {:<21} {} ({}{restarts})\n",
            if i.healthy { "✓" } else { "✗" },
            i.addr.to_string(),
            i.id,
            i.health
        ));
        if let Some(warning) = &i.warning {
            line.push_str(&format!("        warning: {warning}\n"));
        }
    }
    line
}

/// `sha256:` and the first 12 hex digits of an image ID.
pub(super) fn short_image(id: &str) -> &str {
    let cut = id.find(':').map_or(0, |i| i + 1) + 12;
    &id[..id.len().min(cut)]
}
