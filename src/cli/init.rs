//! `teal init`: writes a first teal.toml for one service (a command, or a
//! Docker image), commented so that each line says what it does, and keeps
//! teal's state directory (the secrets file is in it) out of git. The file is
//! read back as `teal serve` would before it is written: bad flags change
//! nothing, and an existing file is replaced only with `--force`.

mod template;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::context::Global;
use super::exit::UsageError;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    teal init web -- gunicorn -b 127.0.0.1:{port} app:app\n  \
    teal init api --image myapi:{version} --port 8000")]
pub struct Args {
    /// Service name, as in [services.NAME].
    #[arg(default_value = "web")]
    service: String,
    /// The app's command, after `--`; `{port}` is the port teal gives each
    /// instance (also in $PORT).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Run containers of this image instead of a command (`{version}` is the
    /// version deployed).
    #[arg(long, value_name = "IMAGE", conflicts_with = "command")]
    image: Option<String>,
    /// The port the app listens on inside the container (with --image).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Where the proxy takes client connections.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The path the health check requests; 2xx or 3xx means ready.
    #[arg(long, value_name = "PATH", default_value = "/")]
    health: String,
    /// Instances per slot.
    #[arg(long, value_name = "N", default_value_t = 2)]
    instances: usize,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What `teal init` did, for `--json`.
#[derive(Debug, Serialize)]
struct Written {
    config: PathBuf,
    service: String,
    gitignore: Gitignore,
}

/// What became of the state directory's line in `.gitignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Gitignore {
    Added,
    /// A line already ignored it.
    Present,
    /// Not a git repository's directory: nothing done.
    None,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let path = global.config_path();
    let runs = runs(&args)?;
    if path.exists() && !args.force {
        return Err(UsageError(format!(
            "{} exists; teal init changed nothing (pass --force to replace it)",
            path.display()
        ))
        .into());
    }
    let text = template::render(&template::Answers {
        service: &args.service,
        runs: &runs,
        listen: args.listen,
        health: &args.health,
        instances: args.instances,
    });
    // Read back as the daemon will: a bad name or path fails here, unwritten.
    let absolute = std::path::absolute(&path)?;
    crate::config::parse(&text, &absolute)?;
    std::fs::write(&path, &text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    let gitignore = ignore_state_dir(dir)?;
    let written = Written {
        config: path,
        service: args.service.clone(),
        gitignore,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&written)?)?;
    } else {
        write!(out, "{}", render(&written, &runs, &args))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// How the service runs, from the flags: exactly one of a command or an image.
fn runs(args: &Args) -> anyhow::Result<template::Runs> {
    match (&args.image, args.port, args.command.is_empty()) {
        (Some(image), Some(port), _) => Ok(template::Runs::Image {
            image: image.clone(),
            port,
        }),
        (Some(_), None, _) => Err(UsageError(
            "--image needs --port N: the port the app listens on inside the container".into(),
        )
        .into()),
        (None, Some(_), _) => {
            Err(UsageError("--port is the container's port: it goes with --image".into()).into())
        }
        (None, None, false) => Ok(template::Runs::Command(args.command.clone())),
        (None, None, true) => Err(UsageError(format!(
            "say how {} runs: `teal init {} -- COMMAND...` (e.g. -- gunicorn -b 127.0.0.1:{{port}} app:app) or `teal init {} --image IMAGE --port N`",
            args.service, args.service, args.service
        ))
        .into()),
    }
}

/// Adds the state directory (`.teal/`, the config's default: the file init
/// writes does not move it) to `dir/.gitignore` when `dir` is a git
/// repository's directory (it has `.git` or a `.gitignore`), unless a line
/// ignores it.
fn ignore_state_dir(dir: &Path) -> anyhow::Result<Gitignore> {
    let file = dir.join(".gitignore");
    let existing = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
    };
    if existing.is_none() && !dir.join(".git").exists() {
        return Ok(Gitignore::None);
    }
    let text = existing.unwrap_or_default();
    let state = crate::config::DEFAULT_STATE_DIR;
    let ignored = text.lines().map(str::trim).any(|line| {
        let line = line.strip_prefix('/').unwrap_or(line);
        line.strip_suffix('/').unwrap_or(line) == state
    });
    if ignored {
        return Ok(Gitignore::Present);
    }
    let mut addition = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        addition.push('\n');
    }
    addition.push_str(&format!(
        "# teal's state: instance logs, history, the secrets file\n{state}/\n"
    ));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    f.write_all(addition.as_bytes())?;
    Ok(Gitignore::Added)
}

fn render(written: &Written, runs: &template::Runs, args: &Args) -> String {
    let service = &written.service;
    let what = match runs {
        template::Runs::Command(command) => format!("runs `{}`", command.join(" ")),
        template::Runs::Image { image, port } => format!("runs {image} (port {port})"),
    };
    let mut out = format!(
        "wrote {}: service {service} {what}, {} instances per slot, behind {}\n",
        written.config.display(),
        args.instances,
        args.listen
    );
    if let template::Runs::Command(command) = runs
        && !command.iter().any(|arg| arg.contains("{port}"))
    {
        out.push_str(
            "note: the command has no {port}: the app must listen on 127.0.0.1 and the port in $PORT\n",
        );
    }
    let state = crate::config::DEFAULT_STATE_DIR;
    match written.gitignore {
        Gitignore::Added => out.push_str(&format!(
            ".gitignore: added {state}/ (teal's state and the secrets file stay out of git)\n"
        )),
        Gitignore::Present => out.push_str(&format!(".gitignore: {state}/ was already ignored\n")),
        Gitignore::None => {}
    }
    let deploy = format!("teal deploy {service} --version 1.0.0");
    let width = deploy.len().max(12);
    out.push_str("next:\n");
    for (command, what) in [
        ("teal check", "the file, the program, the secrets"),
        ("teal serve &", "the daemon"),
        (deploy.as_str(), "the first deploy"),
    ] {
        out.push_str(&format!("  {command:<width$}  # {what}\n"));
    }
    out
}
