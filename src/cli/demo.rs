//! `teal demo`: the blue-green walk-through end to end, under load.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::exit;
use crate::demo::scenario::{self, DemoReport};
use crate::spec::RouterKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Which router moves traffic: teal's builtin proxy, or a managed nginx
    /// (needs nginx installed).
    #[arg(long, value_name = "ROUTER", default_value = "builtin", value_parser = parse_router)]
    router: RouterKind,
}

fn parse_router(text: &str) -> Result<RouterKind, String> {
    match text {
        "builtin" => Ok(RouterKind::Builtin),
        "nginx" => Ok(RouterKind::Nginx),
        other => Err(format!(
            "unknown router {other:?}: expected builtin or nginx"
        )),
    }
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("error");
    let exe = std::env::current_exe().context("locating the teal binary")?;
    let dir = tempfile::Builder::new()
        .prefix("teal-demo-")
        .tempdir()
        .context("creating a temp dir")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let say = |line: &str| eprintln!("{line}");
    eprintln!(
        "teal demo: the blue-green walk-through, in {}",
        dir.path().display()
    );
    let report = rt.block_on(scenario::run(dir.path(), &exe, args.router, &say))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_table(&mut out, &report)?;
    }
    out.flush()?;
    if report.passed() {
        let verdict = match &report.auto_rollback {
            Some(caught) => format!(
                "\nzero failed requests outside the automatic rollback, whose {} failure(s) are the bad version's own, counted and bounded",
                caught.affected
            ),
            None => "\nzero failed requests: blue-green switches dropped nothing".to_string(),
        };
        // With --json, stdout holds the JSON document only.
        if args.json {
            eprintln!("{verdict}");
        } else {
            writeln!(out, "{verdict}")?;
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "\nteal demo FAILED: {} failed request(s) outside the automatic rollback{}",
            report.failed_elsewhere(),
            match &report.auto_rollback {
                Some(c) if !c.ok() => format!(
                    "; the rollback step saw {} failure(s), teal counted {}, bound {}",
                    c.affected, c.errors_counted, c.bound
                ),
                _ => String::new(),
            }
        );
        Ok(ExitCode::from(exit::FAILED))
    }
}

/// The human report: the steps, the router, the load table and the automatic
/// rollback step.
fn write_table(out: &mut impl Write, report: &DemoReport) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<22} {:<8} {:<8} {:>8}",
        "step", "outcome", "expected", "seconds"
    )?;
    for s in &report.steps {
        writeln!(
            out,
            "{:<22} {:<8} {:<8} {:>8.2}{}",
            s.action,
            s.outcome,
            s.expected,
            s.seconds,
            if s.ok { "" } else { "  <- unexpected" }
        )?;
    }
    writeln!(out)?;
    let router = match report.router {
        RouterKind::Builtin => "builtin proxy",
        RouterKind::Nginx => "nginx (managed; client keep-alive off, see README)",
    };
    writeln!(out, "router               {router}")?;
    write!(out, "{}", report.load.render_table())?;
    if let Some(caught) = &report.auto_rollback {
        writeln!(out)?;
        writeln!(
            out,
            "automatic rollback   {}: {} of {} request(s) to it failed before teal switched back",
            caught.version, caught.affected, caught.requests
        )?;
        writeln!(
            out,
            "                     teal counted {} (bound by the error budget: {}); {}",
            caught.errors_counted, caught.bound, caught.reason
        )?;
    }
    Ok(())
}
