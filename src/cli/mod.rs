//! The `teal` command line: one file per verb, each with its clap args and an
//! `exec()`. No deploy logic lives here: verbs read `teal.toml`, talk to the daemon
//! through [`crate::api::client`] and render what comes back. Data goes to stdout;
//! progress and logs go to stderr.

mod access_log;
mod check;
mod context;
mod demo;
mod demo_app;
mod deploy;
mod exit;
mod gate;
mod history;
mod host_view;
mod hosts;
mod image;
mod init;
mod logs;
mod maintenance;
mod pause;
mod promote;
mod render;
mod resume;
mod rollback;
mod serve;
mod serve_log;
mod signals;
mod status;
mod stop;
mod systemd;
mod unlock;
mod upgrade;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::{exit_code, fail};

/// teal: zero-downtime blue-green deployments behind a builtin reverse proxy.
///
/// `teal serve` runs the daemon (proxy, instances, state). The other verbs read
/// ./teal.toml (or --config) and drive that daemon over its control socket.
#[derive(Debug, Parser)]
#[command(name = "teal", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: context::Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a first teal.toml for one service: a command or a Docker image.
    Init(init::Args),
    /// Say whether teal.toml can be used, without a daemon: the file, each
    /// service's program and secrets.
    Check(check::Args),
    /// Run the daemon in the foreground: proxy, instances, state, control socket.
    Serve(serve::Args),
    /// Deploy a version to the standby slot, health-gate it, then switch traffic.
    Deploy(deploy::Args),
    /// Switch production to the slot staged by `deploy --no-promote`.
    Promote(promote::Args),
    /// Go back to the previous version (instant when its slot still runs).
    Rollback(rollback::Args),
    /// Show slots, versions and instance health.
    Status(status::Args),
    /// Stop every instance of a service on purpose (stopping `teal serve` keeps live ones running).
    Stop(stop::Args),
    /// Answer every request of a service with 503 (`on`), or serve it again (`off`).
    Maintenance(maintenance::Args),
    /// Hold new requests of a service until `teal resume` (or their timeout: 503).
    Pause(pause::Args),
    /// End a pause: the held requests are served.
    Resume(resume::Args),
    /// Show deploys, switches and rollbacks of a service.
    History(history::Args),
    /// Show instance output.
    Logs(logs::Args),
    /// Hand the running daemon over to the teal binary at its path (a new
    /// version installed over it), with no request lost.
    Upgrade(upgrade::Args),
    /// Print (or write) the systemd units that keep `teal serve` running:
    /// its listening sockets held across restarts, restarted if it crashes.
    Systemd(systemd::Args),
    /// Run the classic blue-green walk-through under load, with nothing else installed:
    /// a good version, a broken one refused, a fix, a rollback, a flaky one caught.
    Demo(demo::Args),
    /// Run the demo app (used by `teal demo` and the tests).
    #[command(hide = true)]
    DemoApp(demo_app::Args),
    /// The host's half of shipping an image (run over ssh by `teal deploy`).
    #[command(hide = true)]
    Image(image::Args),
}

/// Parses arguments and runs the verb.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let global = cli.global;
    match cli.command {
        Command::Init(args) => init::exec(&global, args),
        Command::Check(args) => check::exec(&global, args),
        Command::Serve(args) => serve::exec(&global, args),
        Command::Deploy(args) => deploy::exec(&global, args),
        Command::Promote(args) => promote::exec(&global, args),
        Command::Rollback(args) => rollback::exec(&global, args),
        Command::Status(args) => status::exec(&global, args),
        Command::Stop(args) => stop::exec(&global, args),
        Command::Maintenance(args) => maintenance::exec(&global, args),
        Command::Pause(args) => pause::exec(&global, args),
        Command::Resume(args) => resume::exec(&global, args),
        Command::History(args) => history::exec(&global, args),
        Command::Logs(args) => logs::exec(&global, args),
        Command::Upgrade(args) => upgrade::exec(&global, args),
        Command::Systemd(args) => systemd::exec(&global, args),
        Command::Demo(args) => demo::exec(args),
        Command::DemoApp(args) => demo_app::exec(args),
        Command::Image(args) => image::exec(args),
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the verb's default level. They are
/// coloured only when stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>): `teal serve 2> serve.log` writes plain text.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("teal={default},warn")))
        // bollard logs every request body at debug, a container's environment
        // (secret values) among them: never below info, whatever RUST_LOG says.
        .add_directive("bollard::docker=info".parse().expect("a valid directive"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .try_init();
}

/// Whether stderr gets colour: a terminal, and no `NO_COLOR` with a value.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
