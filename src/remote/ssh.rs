//! One ssh connection to a host: a multiplexed master of the system OpenSSH
//! client (so `~/.ssh/config`, ProxyJump, the agent and known_hosts work as the
//! user expects), commands over it, and the daemon's control socket forwarded to
//! a local socket.
//!
//! Host keys are checked strictly: an unknown key is an error, never added.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use openssh::{ForwardType, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::error::{ConnectCause, RemoteError, telling_line};
use crate::spec::Destination;

/// How often the master checks the connection is alive; a dead host fails the
/// next command instead of hanging it.
const ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Chunk size when streaming to a remote command's stdin.
const CHUNK: usize = 256 * 1024;

/// How to connect: from `[ssh]` and `TEAL_SSH_CONFIG`.
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    /// `ssh -F FILE`; None reads `~/.ssh/config` as ssh does.
    pub config: Option<PathBuf>,
    pub connect_timeout: Duration,
}

/// A connected host.
pub struct Ssh {
    /// The host as the user wrote it, for messages.
    name: String,
    session: Session,
    /// Holds the master's control socket and the forwarded control socket; removed
    /// when the connection is dropped. Declared after `session`, which must go first.
    dir: tempfile::TempDir,
}

impl Ssh {
    pub async fn connect(dest: &Destination, options: &SshOptions) -> Result<Ssh, RemoteError> {
        let name = dest.to_string();
        let dir = tempfile::Builder::new()
            .prefix("teal-ssh-")
            .tempdir()
            .map_err(|e| RemoteError::host(&name, format!("creating a local temp dir: {e}")))?;
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(KnownHosts::Strict)
            .server_alive_interval(ALIVE_INTERVAL)
            .control_directory(dir.path());
        if !options.connect_timeout.is_zero() {
            builder.connect_timeout(options.connect_timeout.max(Duration::from_secs(1)));
        }
        if let Some(config) = &options.config {
            builder.config_file(config);
        }
        if let Some(user) = &dest.user {
            builder.user(user.clone());
        }
        if let Some(port) = dest.port {
            builder.port(port);
        }
        let session = builder
            .connect_mux(&dest.host)
            .await
            .map_err(|e| connect_error(&name, e))?;
        Ok(Ssh { name, session, dir })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `script` with `sh -c` and returns its output, whatever its exit status.
    pub async fn output(&self, script: &str) -> Result<Output, RemoteError> {
        self.session
            .shell(script)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.lost(e))
    }

    /// Runs `script` and returns its stdout; a non-zero exit is an error with the
    /// last line of its stderr, introduced by `what`.
    pub async fn run(&self, what: &str, script: &str) -> Result<String, RemoteError> {
        let out = self.output(script).await?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(RemoteError::host(
            &self.name,
            format!("{what} failed: {}", last_line(&out)),
        ))
    }

    /// Runs `script` with `input` on its stdin, calling `sent` with the bytes
    /// written so far; returns its output.
    pub async fn feed(
        &self,
        script: &str,
        mut input: impl AsyncRead + Unpin,
        mut sent: impl FnMut(u64),
    ) -> Result<Output, RemoteError> {
        let mut child = self
            .session
            .shell(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.lost(e))?;
        let mut stdin = child.stdin().take().expect("stdin is piped");
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let mut write_error = None;
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| RemoteError::host(&self.name, format!("reading local data: {e}")))?;
            if n == 0 {
                break;
            }
            if let Err(e) = stdin.write_all(&buf[..n]).await {
                // The command stopped reading: its stderr says why.
                write_error = Some(e);
                break;
            }
            total += n as u64;
            sent(total);
        }
        let _ = stdin.shutdown().await;
        drop(stdin);
        let out = child.wait_with_output().await.map_err(|e| self.lost(e))?;
        if let (Some(e), true) = (write_error, out.status.success()) {
            return Err(RemoteError::host(&self.name, format!("sending data: {e}")));
        }
        Ok(out)
    }

    /// Forwards the remote Unix socket `remote` to a new local socket, and
    /// returns the local path.
    pub async fn forward(&self, remote: &Path) -> Result<PathBuf, RemoteError> {
        let local = self.dir.path().join("control.sock");
        self.session
            .request_port_forward(ForwardType::Local, local.as_path(), remote)
            .await
            .map_err(|e| {
                RemoteError::host(
                    &self.name,
                    format!(
                        "cannot forward the control socket {} over ssh ({e}); the server must allow it (AllowStreamLocalForwarding)",
                        remote.display()
                    ),
                )
            })?;
        Ok(local)
    }

    /// Ends the master connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }

    fn lost(&self, e: openssh::Error) -> RemoteError {
        RemoteError::host(&self.name, format!("the ssh connection failed: {e}"))
    }
}

fn connect_error(host: &str, e: openssh::Error) -> RemoteError {
    let said = match &e {
        openssh::Error::Connect(io) => io.to_string(),
        other => {
            return RemoteError::host(host, format!("cannot start ssh: {other}"));
        }
    };
    RemoteError::Connect {
        host: host.to_string(),
        cause: ConnectCause::of(&said),
        detail: telling_line(&said),
    }
}

/// The last non-empty line of a command's stderr (or stdout), or its status.
pub fn last_line(out: &Output) -> String {
    let pick = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string)
    };
    pick(&out.stderr)
        .or_else(|| pick(&out.stdout))
        .unwrap_or_else(|| format!("exit status {}", out.status))
}
