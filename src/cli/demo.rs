//! `teal demo`: the seeds' scenario end to end, under load.

use std::process::ExitCode;

use anyhow::Context;

use super::exit;
use crate::demo::scenario;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
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
    let report = rt.block_on(scenario::run(dir.path(), &exe, &say))?;
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
        print!("{}", report.load.render_table());
    }
    if report.passed() {
        println!("\nzero failed requests: blue-green switches dropped nothing");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "\nteal demo FAILED: {} failed request(s)",
            report.load.failed()
        );
        Ok(ExitCode::from(exit::FAILED))
    }
}
