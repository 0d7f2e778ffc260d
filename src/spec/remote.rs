//! Where to deploy: the validated `servers`, `[ssh]` and `[hosts."NAME"]` settings.
//!
//! Only the CLI uses these; the daemon never sees them. `config/` builds them
//! from `teal.toml` (see `config::load_remote`), `remote/` acts on them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where teal lives on a remote host unless `teal_path` says otherwise.
pub const DEFAULT_TEAL_PATH: &str = "~/.local/bin/teal";
/// How long ssh may take to connect before a host counts as unreachable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Remote hosts as `teal.toml` describes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteSpec {
    pub ssh: SshSpec,
    /// `[proxy]` as written, less `control`: the base of every remote daemon's
    /// config (a host's `proxy` table is laid over it key by key).
    pub proxy: toml::Table,
    /// `[hosts."NAME"]`, keyed by NAME as written.
    pub hosts: BTreeMap<String, HostSettings>,
    /// `servers` of each service that lists some.
    pub servers: BTreeMap<String, Vec<Destination>>,
}

impl RemoteSpec {
    /// The `[hosts."NAME"]` settings of `dest`: NAME is the destination as
    /// written (`deploy@web1:2222`), or else its host part (`web1`).
    pub fn host(&self, dest: &Destination) -> HostSettings {
        self.hosts
            .get(&dest.to_string())
            .or_else(|| self.hosts.get(&dest.host))
            .cloned()
            .unwrap_or_default()
    }
}

/// `[ssh]`: how teal uses the system OpenSSH client.
#[derive(Debug, Clone, PartialEq)]
pub struct SshSpec {
    /// `ssh -F FILE` instead of `~/.ssh/config` (also `TEAL_SSH_CONFIG`).
    pub config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where teal is installed on hosts; `~/` is the remote user's home.
    pub teal_path: String,
    /// The local teal binary to install on hosts, when not the running one
    /// (e.g. a static build for hosts with another libc).
    pub binary: Option<PathBuf>,
}

impl Default for SshSpec {
    fn default() -> Self {
        SshSpec {
            config: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            teal_path: DEFAULT_TEAL_PATH.to_string(),
            binary: None,
        }
    }
}

/// `[hosts."NAME"]`: per-host overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostSettings {
    /// The remote daemon's state dir; default `~/.local/state/teal`, or
    /// `/var/lib/teal` for root.
    pub state_dir: Option<String>,
    /// Overrides `[ssh] teal_path` for this host.
    pub teal_path: Option<String>,
    /// Keys laid over `[proxy]` for this host's daemon.
    pub proxy: toml::Table,
}

/// One host to deploy to: `[user@]host[:port]`, as for `ssh`. `host` may be an
/// alias from the ssh config; a bracketed IPv6 address takes a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.port {
            Some(port) if self.host.contains(':') => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid host {text:?}: {why}; expected [user@]host[:port]");
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, text),
        };
        if let Some(user) = user {
            // A leading '-' would reach ssh as an option.
            let ok = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(bad("the user must be letters, digits, '.', '_' or '-'"));
            }
        }
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad("expected ':PORT' after ']'")),
                },
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None) // a bare IPv6 address
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        let ok = !host.is_empty()
            && !host.starts_with('-')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '%'));
        if !ok {
            return Err(bad("the host must be a name or an IP address"));
        }
        Ok(Destination {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(text: &str) -> Destination {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn destinations_parse_and_print_as_written() {
        for (text, user, host, port) in [
            ("web1", None, "web1", None),
            ("deploy@web1", Some("deploy"), "web1", None),
            (
                "deploy@web1.example.com:2222",
                Some("deploy"),
                "web1.example.com",
                Some(2222),
            ),
            ("127.0.0.1:22", None, "127.0.0.1", Some(22)),
            ("root@[::1]:2200", Some("root"), "::1", Some(2200)),
            ("::1", None, "::1", None),
        ] {
            let d = dest(text);
            assert_eq!(d.user.as_deref(), user, "{text}");
            assert_eq!(d.host, host, "{text}");
            assert_eq!(d.port, port, "{text}");
            let printed = d.to_string();
            assert_eq!(dest(&printed), d, "{text} → {printed}");
        }
        assert_eq!(dest("root@[::1]:2200").to_string(), "root@[::1]:2200");
    }

    #[test]
    fn bad_destinations_say_why() {
        for (text, why) in [
            ("", "host must be"),
            ("web1:0", "port must be"),
            ("web1:x", "port must be"),
            ("-oProxyCommand=x", "host must be"),
            ("-u@web1", "user must be"),
            ("@web1", "user must be"),
            ("web 1", "host must be"),
            ("[::1", "unclosed"),
            ("[::1]x", "expected ':PORT'"),
        ] {
            let err = text.parse::<Destination>().unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn host_settings_match_the_written_form_then_the_host() {
        let mut spec = RemoteSpec::default();
        let settings = |dir: &str| HostSettings {
            state_dir: Some(dir.into()),
            ..HostSettings::default()
        };
        spec.hosts.insert("deploy@web1:2222".into(), settings("/a"));
        spec.hosts.insert("web1".into(), settings("/b"));
        assert_eq!(
            spec.host(&dest("deploy@web1:2222")).state_dir.as_deref(),
            Some("/a")
        );
        assert_eq!(spec.host(&dest("web1")).state_dir.as_deref(), Some("/b"));
        assert_eq!(
            spec.host(&dest("other@web1")).state_dir.as_deref(),
            Some("/b")
        );
        assert_eq!(spec.host(&dest("web2")), HostSettings::default());
    }
}
