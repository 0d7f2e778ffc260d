//! Why something failed on a remote host, always naming the host, in one line.
//!
//! ssh reports connection failures only as text on its stderr; [`ConnectCause`]
//! is read from that text once, here (it is an external tool's output, not one
//! of teal's errors). Everything above matches on the variants.

use std::fmt;

use crate::api::client::ClientError;
use crate::wire::ErrorKind;

/// Why ssh could not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCause {
    /// No route, refused, timed out, or the name does not resolve.
    Unreachable,
    /// The server refused every key (or the agent had none).
    Auth,
    /// The host key is not in known_hosts; teal never adds one silently.
    UnknownHostKey,
    /// The host key differs from the one in known_hosts.
    ChangedHostKey,
    /// Anything else ssh said.
    Other,
}

impl ConnectCause {
    /// Reads ssh's stderr.
    pub fn of(ssh_said: &str) -> ConnectCause {
        let text = ssh_said.to_ascii_lowercase();
        if text.contains("remote host identification has changed") {
            ConnectCause::ChangedHostKey
        } else if text.contains("host key verification failed")
            || text.contains("host key is known for")
        {
            ConnectCause::UnknownHostKey
        } else if text.contains("permission denied (")
            || text.contains("too many authentication failures")
        {
            ConnectCause::Auth
        } else if [
            "connection refused",
            "connection timed out",
            "operation timed out",
            "no route to host",
            "network is unreachable",
            "could not resolve hostname",
            "name or service not known",
            "connection closed by",
            "connection reset",
        ]
        .iter()
        .any(|s| text.contains(s))
        {
            ConnectCause::Unreachable
        } else {
            ConnectCause::Other
        }
    }
}

/// A failure on one host, or of an action across hosts.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{host}: {}", connect_message(*.cause, host, detail))]
    Connect {
        host: String,
        cause: ConnectCause,
        /// ssh's own words (the most telling line).
        detail: String,
    },
    /// A command teal ran on the host failed, or the host lacks what it needs.
    #[error("{host}: {message}")]
    Host { host: String, message: String },
    /// The host's daemon refused or failed a request. (Not a `#[source]`: the
    /// message already says it, and `{:#}` would say it twice.)
    #[error("{host}: {error}")]
    Daemon { host: String, error: ClientError },
    /// An action across hosts failed; the message names the host(s) and causes.
    #[error("{0}")]
    Failed(String),
}

impl RemoteError {
    pub fn host(host: &str, message: impl Into<String>) -> RemoteError {
        RemoteError::Host {
            host: host.to_string(),
            message: message.into(),
        }
    }

    pub fn daemon(host: &str, source: ClientError) -> RemoteError {
        RemoteError::Daemon {
            host: host.to_string(),
            error: source,
        }
    }

    /// True when the host could not be reached or logged into.
    pub fn is_connect(&self) -> bool {
        matches!(self, RemoteError::Connect { .. })
    }

    /// The daemon's classification, when a daemon answered with one.
    pub fn api_kind(&self) -> Option<ErrorKind> {
        match self {
            RemoteError::Daemon { error, .. } => error.kind(),
            _ => None,
        }
    }
}

fn connect_message(cause: ConnectCause, host: &str, detail: &str) -> String {
    match cause {
        ConnectCause::Unreachable => format!("cannot reach the host over ssh: {detail}"),
        ConnectCause::Auth => format!(
            "ssh authentication failed ({detail}); load the key into ssh-agent or set IdentityFile for this host in your ssh config"
        ),
        ConnectCause::UnknownHostKey => format!(
            "the host key is not in known_hosts and teal never accepts one silently ({detail}); check the key's fingerprint, then add it, e.g. by running `ssh {host}` once and answering yes"
        ),
        ConnectCause::ChangedHostKey => format!(
            "the host key has CHANGED since it was recorded in known_hosts, so teal refuses to connect (a reinstalled host, or someone in the middle: {detail}); if the change is expected, remove the old key with `ssh-keygen -R HOST` and add the new one"
        ),
        ConnectCause::Other => format!("ssh failed: {detail}"),
    }
}

/// The line of ssh's stderr that says the most, for a one-line message.
pub fn telling_line(ssh_said: &str) -> String {
    let lines: Vec<&str> = ssh_said
        .lines()
        .map(|l| l.trim().trim_matches('@').trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let best = lines
        .iter()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("host key is known for")
                || l.contains("permission denied")
                || l.contains("connect to host")
                || l.contains("could not resolve")
                || l.contains("identification has changed")
        })
        .or(lines.first())
        .copied()
        .unwrap_or("no output from ssh");
    best.strip_prefix("ssh: ").unwrap_or(best).to_string()
}

impl fmt::Display for ConnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectCause::Unreachable => "unreachable",
            ConnectCause::Auth => "authentication failed",
            ConnectCause::UnknownHostKey => "unknown host key",
            ConnectCause::ChangedHostKey => "changed host key",
            ConnectCause::Other => "ssh failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_failures_are_classified() {
        for (said, cause) in [
            (
                "ssh: connect to host 127.0.0.1 port 1: Connection refused",
                ConnectCause::Unreachable,
            ),
            (
                "ssh: Could not resolve hostname nope: Name or service not known",
                ConnectCause::Unreachable,
            ),
            (
                "ssh: connect to host 10.0.0.1 port 22: Connection timed out",
                ConnectCause::Unreachable,
            ),
            (
                "root@127.0.0.1: Permission denied (publickey).",
                ConnectCause::Auth,
            ),
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
                ConnectCause::UnknownHostKey,
            ),
            (
                "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@\nHost key verification failed.",
                ConnectCause::ChangedHostKey,
            ),
            (
                "kex_exchange_identification: banner line contains invalid characters",
                ConnectCause::Other,
            ),
        ] {
            assert_eq!(ConnectCause::of(said), cause, "{said}");
        }
    }

    #[test]
    fn the_telling_line_is_one_line() {
        let said = "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\r\nNo ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n";
        assert_eq!(
            telling_line(said),
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking."
        );
        assert_eq!(
            telling_line("ssh: connect to host a port 1: Connection refused\n"),
            "connect to host a port 1: Connection refused"
        );
        let e = RemoteError::Connect {
            host: "b".into(),
            cause: ConnectCause::Auth,
            detail: "root@b: Permission denied (publickey).".into(),
        };
        assert!(!e.to_string().contains('\n'));
        assert!(e.to_string().starts_with("b: ssh authentication failed"));
    }
}
