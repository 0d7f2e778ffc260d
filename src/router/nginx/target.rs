//! The nginx teal drives, in either mode, behind one enum: where its config file
//! lives, how a new file is checked, who the master is and how it reloads.
//!
//! `apply.rs` runs the safe-switch algorithm on a [`Target`] and does not care
//! which mode it is in. The modes themselves live in `managed.rs` and `system.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::managed::Managed;
use super::procs::Pid;
use super::render::{self, MainSettings, Settings};
use super::routes::RouteSet;
use super::system::System;
use crate::router::RouterError;

/// The nginx executable and what it supports.
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub path: PathBuf,
    /// `-e FILE` (nginx 1.19.5+): the error log used before the config is read.
    pub has_error_flag: bool,
}

impl Binary {
    /// Finds `name` (a path, or a name in `PATH` and the usual sbin dirs) and asks
    /// it for its version.
    pub async fn locate(name: &Path) -> Result<Binary, RouterError> {
        let path = super::find_binary(name).ok_or_else(|| {
            RouterError::Other(format!(
                "nginx not found ({}): install it (Debian package `nginx`) or set [proxy.nginx] binary",
                name.display()
            ))
        })?;
        let output = tokio::process::Command::new(&path)
            .arg("-v")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| RouterError::Other(format!("cannot run {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&output.stderr);
        let version = parse_version(&text);
        tracing::debug!(binary = %path.display(), ?version, "nginx found");
        Ok(Binary {
            has_error_flag: version.is_some_and(|v| v >= (1, 19, 5)),
            path,
        })
    }

    /// A command running this nginx with `prefix` (and the early error log there).
    pub fn command(&self, prefix: &Path, error_log: Option<&Path>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.path);
        let mut prefix = prefix.as_os_str().to_owned();
        prefix.push("/");
        command.arg("-p").arg(prefix);
        if let (true, Some(log)) = (self.has_error_flag, error_log) {
            command.arg("-e").arg(log);
        }
        command.stdin(Stdio::null());
        command
    }
}

/// "nginx version: nginx/1.22.1" → (1, 22, 1).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.split("nginx/").nth(1)?.split_whitespace().next()?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Runs a command to completion; on failure, what it printed (nginx's own words).
pub(crate) async fn run(command: &mut tokio::process::Command) -> Result<(), String> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| format!("cannot run {:?}: {e}", command.as_std().get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        text.push('\n');
        text.push_str(stdout.trim());
    }
    if text.is_empty() {
        text = format!("exited with {}", output.status);
    }
    Err(text)
}

/// The nginx teal drives.
pub(crate) enum Target {
    Managed(Managed),
    System(System),
}

impl Target {
    /// The config text for `routes` in this mode.
    pub fn render(&self, routes: &RouteSet, settings: &Settings) -> String {
        match self {
            Target::Managed(m) => render::render_main(&m.main_settings(), routes, settings),
            Target::System(_) => render::render_http(routes, settings),
        }
    }

    /// The file nginx reads: `nginx.conf` (managed) or `teal.conf` (system).
    pub fn live_file(&self) -> PathBuf {
        match self {
            Target::Managed(m) => m.conf(),
            Target::System(s) => s.conf(),
        }
    }

    /// Where a new config is written before it is checked, beside the live one.
    pub fn staging_file(&self) -> PathBuf {
        match self {
            Target::Managed(m) => m.staging(),
            Target::System(s) => s.staging(),
        }
    }

    /// `nginx -t` on the staged file, before it replaces anything.
    pub async fn check_staged(&self) -> Result<(), String> {
        match self {
            Target::Managed(m) => m.check(&m.staging()).await,
            Target::System(s) => s.check_staged().await,
        }
    }

    /// `nginx -t` on the whole installed config (system mode: the files around
    /// teal's can clash with it). Managed mode checked the whole file already.
    pub async fn check_installed(&self) -> Result<(), String> {
        match self {
            Target::Managed(_) => Ok(()),
            Target::System(s) => s.check_installed().await,
        }
    }

    /// The running master, if any.
    pub fn master(&mut self) -> Option<Pid> {
        match self {
            Target::Managed(m) => m.running(),
            Target::System(s) => s.master(),
        }
    }

    /// Starts a master on the installed config: only teal's own (managed).
    pub async fn start(&mut self) -> Result<Pid, RouterError> {
        match self {
            Target::Managed(m) => m.start().await,
            Target::System(s) => Err(RouterError::Other(format!(
                "the system nginx is not running (no live master in {}); start it first",
                s.pid_file().display()
            ))),
        }
    }

    /// Asks `master` to load the installed config.
    pub async fn reload(&mut self, master: Pid) -> Result<(), String> {
        match self {
            Target::Managed(m) => m.reload(master),
            Target::System(s) => s.reload().await,
        }
    }

    /// The error log teal can read, to quote a failed reload.
    pub fn error_log(&self) -> Option<PathBuf> {
        match self {
            Target::Managed(m) => Some(m.error_log()),
            Target::System(_) => None,
        }
    }
}

/// Managed-mode settings derived from the process teal runs as.
pub(crate) fn main_settings(dir: &Path, workers: Option<usize>) -> MainSettings {
    MainSettings {
        dir: dir.to_owned(),
        workers,
        user: root_user(),
    }
}

/// `NAME GROUP` of the effective user when it is root: nginx started as root
/// drops its workers to `nobody` unless told otherwise, and teal's workers should
/// run as the user teal runs as.
fn root_user() -> Option<String> {
    use nix::unistd::{Group, User, getegid, geteuid};
    if !geteuid().is_root() {
        return None;
    }
    let user = User::from_uid(geteuid()).ok().flatten()?.name;
    let group = Group::from_gid(getegid()).ok().flatten()?.name;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    (plain(&user) && plain(&group)).then(|| format!("{user} {group}"))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("nginx version: nginx/1.22.1\n"),
            Some((1, 22, 1))
        );
        assert_eq!(
            parse_version("nginx version: nginx/1.25.3 (Ubuntu)"),
            Some((1, 25, 3))
        );
        assert_eq!(parse_version("openresty"), None);
    }
}
