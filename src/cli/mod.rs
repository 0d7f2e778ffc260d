//! The `teal` command line: one file per verb, each with its clap args and an
//! `exec()`. No deploy logic lives here; verbs talk to the daemon through `api`.

mod demo_app;
pub mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// teal: zero-downtime blue-green deployments behind a builtin reverse proxy.
#[derive(Debug, Parser)]
#[command(name = "teal", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demo app (used by `teal demo` and the tests).
    #[command(hide = true)]
    DemoApp(demo_app::Args),
}

/// Parses arguments, runs the verb, and maps its outcome to an exit code.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::DemoApp(args) => demo_app::exec(args),
    }
}
