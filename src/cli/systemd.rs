//! `teal systemd`: the systemd units that keep `teal serve` running for this
//! config (a `.socket` unit holding its listening sockets and a `.service`
//! unit), printed, or written to a directory with the commands that start them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::context::Global;
use crate::systemd::units::Units;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The units' name: NAME.service and NAME.socket.
    #[arg(long, default_value = "teal", value_parser = unit_name)]
    name: String,
    /// Units for your own systemd (`systemctl --user`) rather than the system's.
    #[arg(long)]
    user: bool,
    /// Write the two files into DIR (e.g. /etc/systemd/system) instead of printing them.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let config = global.load_config()?;
    let teal = std::env::current_exe().context("finding the teal binary")?;
    let config_path = std::path::absolute(&config.path).context("finding the config file")?;
    let listen = crate::systemd::units::held_sockets(&config);
    let units = Units {
        name: args.name,
        teal,
        config: config_path,
        state_dir: config.state_dir.clone(),
        listen,
        user: args.user,
    };
    let mut files = vec![(units.service_file(), units.service())];
    if !units.listen.is_empty() {
        files.push((units.socket_file(), units.socket()));
    }
    let mut out = std::io::stdout().lock();
    let Some(dir) = args.write else {
        for (i, (name, text)) in files.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "# {name}\n{text}")?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "wrote {}", path.display())?;
    }
    let systemctl = if units.user {
        "systemctl --user"
    } else {
        "systemctl"
    };
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    writeln!(
        out,
        "start them with: {systemctl} daemon-reload && {systemctl} enable --now {}",
        names.join(" ")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A unit name teal can use: letters, digits, `-`, `_`, `.`, `@` (no suffix).
fn unit_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        && !name.ends_with(".service")
        && !name.ends_with(".socket");
    if valid {
        Ok(name.to_string())
    } else {
        Err(
            "a unit name is letters, digits, '-', '_', '.' or '@', without .service or .socket"
                .into(),
        )
    }
}
