//! `teal demo`: the seeds' scenario end to end, under load.

use std::process::ExitCode;

use anyhow::Context;

use super::exit;
use crate::demo::scenario;
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
        "teal demo: the seeds' blue-green story, in {}",
        dir.path().display()
    );
    let report = rt.block_on(scenario::run(dir.path(), &exe, args.router, &say))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!(
            "{:<22} {:<8} {:<8} {:>8}",
            "step", "outcome", "expected", "seconds"
        );
        for s in &report.steps {
            println!(
                "{:<22} {:<8} {:<8} {:>8.2}{}",
                s.action,
                s.outcome,
                s.expected,
                s.seconds,
                if s.ok { "" } else { "  <- unexpected" }
            );
        }
        println!();
        let router = match report.router {
            RouterKind::Builtin => "builtin proxy",
            RouterKind::Nginx => "nginx (managed; client keep-alive off, see README)",
        };
        println!("router               {router}");
        print!("{}", report.load.render_table());
    }
    if report.passed() {
        let verdict = "\nzero failed requests: blue-green switches dropped nothing";
        // With --json, stdout holds the JSON document only.
        if args.json {
            eprintln!("{verdict}");
        } else {
            println!("{verdict}");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "\nteal demo FAILED: {} failed request(s)",
            report.load.failed()
        );
        Ok(ExitCode::from(exit::FAILED))
    }
}
