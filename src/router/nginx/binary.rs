//! The nginx executable: finding it, asking what it supports, building its
//! command lines, and running one to completion with nginx's own words on
//! failure.
//!
//! Both modes (`managed.rs`, `system.rs`) use it; it knows nothing of either,
//! nor of config files or masters.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::router::RouterError;

/// The nginx executable and what it supports.
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub path: PathBuf,
    /// `-e FILE` (nginx 1.19.5+): the error log used before the config is read.
    pub has_error_flag: bool,
    /// What `nginx -v` said (None: it did not say, e.g. a fork naming itself
    /// otherwise).
    pub version: Option<(u32, u32, u32)>,
}

impl Binary {
    /// Finds `name` (a path, or a name in `PATH` and the usual sbin dirs) and asks
    /// it for its version.
    pub async fn locate(name: &Path) -> Result<Binary, RouterError> {
        let path = find_binary(name).ok_or_else(|| {
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
            version,
            path,
        })
    }

    /// `ssl_reject_handshake` (nginx 1.19.4+): a TLS server with no
    /// certificate that refuses the handshake, so an unknown SNI gets none.
    pub fn rejects_handshakes(&self) -> bool {
        self.version.is_some_and(|v| v >= (1, 19, 4))
    }

    /// The `http2 on;` directive (nginx 1.25.1+), which replaces `listen ...
    /// http2` (deprecated there, and warned about by `nginx -t`).
    pub fn has_http2_directive(&self) -> bool {
        self.version.is_some_and(|v| v >= (1, 25, 1))
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

/// The nginx executable for `name`: a path as is, else the first match in
/// `PATH` and the usual sbin directories (which a non-root `PATH` often lacks).
pub fn find_binary(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/sbin",
                "/usr/local/nginx/sbin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
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
