//! Validated service and proxy settings: what `teal.toml` means once parsed.
//!
//! `config/` turns raw TOML into these types and nothing deeper ever sees raw
//! options. The CLI sends a [`ServiceSpec`] to the daemon with every deploy, and
//! the daemon persists it, so these types are also part of the control API's wire
//! format (durations travel as humantime strings such as `"200ms"`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secrets::Secrets;

/// Everything the daemon needs to run one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub runtime: RuntimeSpec,
    /// Instances per slot (at least 1).
    pub instances: usize,
    /// Version deployed when `teal deploy` gets no `--version`.
    pub version: Option<String>,
    /// Host-header names routed to this service; empty means the default service.
    pub hosts: Vec<String>,
    /// Optional listener that serves the standby (staged) slot.
    pub preview: Option<SocketAddr>,
    /// Extra environment for instances (`env_file`, then `env` over it).
    pub env: BTreeMap<String, String>,
    /// `secrets = [...]`: names whose values the deploying machine sends with
    /// each deploy; serialized as the names only (see [`Secrets`]).
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
    /// Directory relative paths are resolved against (the directory of `teal.toml`).
    pub workdir: PathBuf,
    pub health: HealthSpec,
    pub drain: DrainSpec,
    /// Commands run around the deploy (`[services.NAME.hooks]`).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
    /// Post-switch verification (`[services.NAME.verify]`); None: no window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
    /// Its certificate on the TLS listener (`tls = { cert, key }`); None:
    /// plain HTTP only. Routers only ever read this (never `acme`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// `tls = "acme"`: its certificate comes from the ACME server; the daemon
    /// fills `tls` with the stored files once it has them (`crate::acme`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acme: bool,
    /// `max_body` and `error_pages` (defaults from `[proxy]`).
    #[serde(default, skip_serializing_if = "PolicySpec::is_empty")]
    pub policy: PolicySpec,
    /// What the proxy speaks to its instances (`protocol`): HTTP/1.1, or
    /// HTTP/2 with prior knowledge (gRPC). Absent in older state files.
    #[serde(default, skip_serializing_if = "Protocol::is_http1")]
    pub protocol: Protocol,
}

impl ServiceSpec {
    /// What instances and hooks get on top of teal's own variables: `env`,
    /// then the secrets' values (present once the daemon filled them in).
    pub fn app_env(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(self.secrets.env())
    }
}

/// What a service's requests may carry and what the proxy's own errors
/// look like: `max_body`, and the pages of `error_pages` read when the
/// config loaded (so a remote host needs no copy of the directory, and
/// every deploy sends the pages as they are then).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// Largest request body in bytes; None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
    /// The `error_pages` directory, as configured (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_pages_dir: Option<PathBuf>,
    /// Its pages by status (502, 503, 504; those that exist), as read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_pages: BTreeMap<u16, String>,
}

impl PolicySpec {
    pub fn is_empty(&self) -> bool {
        *self == PolicySpec::default()
    }
}

/// `protocol` of a service: how the proxy (and health checks) speak to its
/// instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1, the default.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (cleartext), as gRPC servers speak it.
    H2c,
}

impl Protocol {
    pub fn is_http1(&self) -> bool {
        *self == Protocol::Http1
    }
}

/// A service's own certificate files (absolute once resolved): a PEM chain,
/// the leaf first, and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[proxy.tls]`: the builtin proxy's TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsListenSpec {
    pub listen: SocketAddr,
    /// Plain-HTTP requests for a TLS service get 308 to https (but ACME
    /// challenges).
    pub redirect: bool,
    /// The ACME account settings (`acme_*`); None: no `acme_email`, so no
    /// service can use `tls = "acme"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeSpec>,
}

/// Let's Encrypt's production directory, the default `acme_directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The default `acme_retry`: the first wait after a failed order.
pub const DEFAULT_ACME_RETRY: Duration = Duration::from_secs(60);

/// `[proxy.tls]`'s `acme_*` keys: where and as whom certificates are ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSpec {
    /// The account's contact (`mailto:` is added).
    pub email: String,
    /// The ACME server's directory URL.
    pub directory: String,
    /// An extra root (PEM file, absolute once resolved) trusted for the ACME
    /// server's own HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The first wait after a failed order; it doubles with each failure in a
    /// row, up to a day.
    #[serde(with = "humantime_serde")]
    pub retry: Duration,
}

/// The placeholders a service's `command` may use (process and docker runtimes).
pub const COMMAND_PLACEHOLDERS: &[&str] = &["port", "version"];

/// The program a command (a service's or a hook's) starts: a relative path
/// with a directory part (`./app`, `bin/migrate`) is relative to `workdir`;
/// a bare name is left to be looked up in `PATH`, an absolute path as it is.
pub fn program_path(program: &Path, workdir: Option<&Path>) -> PathBuf {
    match workdir {
        Some(dir) if program.is_relative() && program.components().count() > 1 => dir.join(program),
        _ => program.to_path_buf(),
    }
}

/// How instances are run. Each variant is served by one `runtime::Runtime`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuntimeSpec {
    /// Local child processes. `{port}` and `{version}` are substituted in `command`.
    Process { command: Vec<String> },
    /// Containers on the local Docker engine (`runtime::docker`).
    Docker(DockerSpec),
}

impl RuntimeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            RuntimeSpec::Process { .. } => "process",
            RuntimeSpec::Docker(_) => "docker",
        }
    }

    /// How many of the latest deployed builds pruning keeps (docker `keep_images`;
    /// other runtimes pin no builds).
    pub fn keep_images(&self) -> usize {
        match self {
            RuntimeSpec::Process { .. } => 0,
            RuntimeSpec::Docker(docker) => docker.keep_images,
        }
    }
}

/// How the docker runtime runs a service's containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerSpec {
    /// Image reference; `{version}` is substituted (`uptimer:{version}`).
    pub image: String,
    /// The port the app listens on inside the container.
    pub port: u16,
    /// Replaces the image's CMD; `{version}` and `{port}` are substituted.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Mounts as `SOURCE:TARGET[:ro|rw]`; a SOURCE path is absolute once resolved,
    /// anything else names a volume.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The engine's restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub restart: String,
    /// The engine's log driver (`journald`, `local`, ...); None keeps its default.
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default)]
    pub limits: DockerLimits,
    /// A user network the containers join as well.
    #[serde(default)]
    pub network: Option<String>,
    /// How many of the latest deployed images pruning never removes.
    pub keep_images: usize,
}

/// Resource limits of each container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerLimits {
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    /// CPU limit in CPUs (fractions allowed).
    #[serde(default)]
    pub cpus: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// Path requested with GET; healthy means a status in 200..=399.
    pub path: String,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Per-request timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A new slot that is not healthy by then fails the deploy.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// `grpc = true` (service `""`) or `grpc = "NAME"`: the check is the
    /// standard `grpc.health.v1.Health/Check` over h2c instead of `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// The check speaks HTTP/2 with prior knowledge: set by the config from
    /// the service's `protocol = "h2c"`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub h2c: bool,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: "/".into(),
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            grpc: None,
            h2c: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainSpec {
    /// Longest wait for in-flight requests on the old slot.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Keep the old slot running after a switch, for an instant rollback.
    pub keep_previous: bool,
}

impl Default for DrainSpec {
    fn default() -> Self {
        DrainSpec {
            timeout: Duration::from_secs(30),
            keep_previous: true,
        }
    }
}

/// Which router moves traffic between slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    #[default]
    Builtin,
    Nginx,
}

/// The `[proxy]` section: how the daemon listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxySpec {
    /// Production listener.
    pub listen: SocketAddr,
    pub router: RouterKind,
    /// Control socket path (absolute once resolved).
    pub control: PathBuf,
    /// Optional admin listener serving `/metrics`.
    pub admin: Option<SocketAddr>,
    /// Builtin proxy worker threads, each with its own event loop; None means
    /// one per core. `teal serve --threads N` overrides it.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Builtin proxy: how long an idle upstream connection may be reused; None
    /// means the proxy's default (2 s). Keep it below the apps' own keep-alive
    /// timeout.
    #[serde(default)]
    pub upstream_idle_timeout: Option<Duration>,
    /// Builtin proxy: how long a sent request waits for the instance's
    /// response head before the client gets 504; None means the proxy's
    /// default (5 min, as the nginx router's `proxy_read_timeout`).
    #[serde(default)]
    pub response_timeout: Option<Duration>,
    /// Builtin proxy: how much of a request body is read before an instance
    /// is chosen; None means the proxy's default (64 KiB).
    #[serde(default)]
    pub body_buffer: Option<usize>,
    /// Builtin proxy: how long a client may send none of its request body
    /// before it gets 408; None means the proxy's default (60 s, as nginx's
    /// `client_body_timeout`).
    #[serde(default)]
    pub body_timeout: Option<Duration>,
    /// Builtin proxy: how long a peer may take none of what the proxy writes
    /// (the app a request body: 504; the client its response: closed); None
    /// means the proxy's default (60 s, as nginx's `send_timeout`).
    #[serde(default)]
    pub send_timeout: Option<Duration>,
    /// Builtin proxy: streams an h2c client may have open at once on one
    /// connection (advertised in SETTINGS, more are refused); None means the
    /// proxy's default (128, as nginx's `http2_max_concurrent_streams`).
    #[serde(default)]
    pub max_concurrent_streams: Option<u32>,
    /// Builtin proxy: what happens to request header names with an
    /// underscore; None means the proxy's default (dropped, as nginx does).
    #[serde(default)]
    pub underscores_in_headers: Option<Underscores>,
    /// Builtin proxy: where a JSON line per request goes; None: no access log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogTarget>,
    /// `[proxy.nginx]`: used when `router` is `nginx`.
    #[serde(default)]
    pub nginx: NginxSpec,
    /// `[proxy.tls]`: the TLS listener (builtin router only); None: no TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsListenSpec>,
}

/// `[proxy] access_log`: where the builtin proxy's access log goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    Stdout,
    /// An absolute path once resolved.
    File(PathBuf),
}

/// `[proxy] underscores_in_headers`: what the builtin proxy does with request
/// header lines whose name has an underscore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Underscores {
    /// Not forwarded; the request goes on without them (nginx's default).
    Drop,
    /// Forwarded as they came.
    Pass,
    /// The request is answered 400.
    Refuse,
}

/// `[proxy.nginx]`: how teal runs or reaches nginx when `router = "nginx"`.
///
/// Managed mode (no `conf_dir`, the default): teal starts and owns an nginx master
/// with its own config under `state_dir/nginx/`. System mode (`conf_dir` set): teal
/// writes `conf_dir/teal.conf` and reloads an nginx it does not own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NginxSpec {
    /// The nginx executable: a path, or a name looked up in `PATH` and the sbin dirs.
    pub binary: PathBuf,
    /// System mode: the directory the system nginx includes in its `http` block.
    pub conf_dir: Option<PathBuf>,
    /// System mode: the main config `nginx -t -c` checks; None: nginx's default.
    pub main_conf: Option<PathBuf>,
    /// System mode: the command that reloads nginx; None: `binary [-c main_conf] -s reload`.
    pub reload: Option<Vec<String>>,
    /// System mode: the master's pid file, read to confirm that a reload happened.
    pub pid_file: PathBuf,
    /// Managed mode: `worker_processes`; None means `auto` (one per core).
    pub workers: Option<usize>,
    /// Idle timeout of client keep-alive connections. Zero (the default) turns
    /// client keep-alive off: every reload closes idle keep-alive connections, and
    /// a request racing that close is lost. See README "builtin vs nginx".
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// A file included in every server block teal generates (extra directives).
    pub include: Option<PathBuf>,
}

impl Default for NginxSpec {
    fn default() -> Self {
        NginxSpec {
            binary: PathBuf::from("nginx"),
            conf_dir: None,
            main_conf: None,
            reload: None,
            pid_file: PathBuf::from("/run/nginx.pid"),
            workers: None,
            keepalive_timeout: Duration::ZERO,
            include: None,
        }
    }
}

impl NginxSpec {
    /// True when teal drives a system nginx instead of running its own.
    pub fn is_system(&self) -> bool {
        self.conf_dir.is_some()
    }
}

/// A whole validated `teal.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// Absolute state directory.
    pub state_dir: PathBuf,
    pub proxy: ProxySpec,
    pub services: BTreeMap<String, ServiceSpec>,
}

/// Serde adapter: `Duration` as a humantime string ("1s 200ms").
pub mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod hooks;
mod remote;
pub use hooks::{
    DEFAULT_HOOK_TIMEOUT, HOOK_PLACEHOLDERS, HookPlace, HookPoint, HookSpec, HooksSpec,
    Inconclusive, VerifySpec,
};
pub use remote::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TEAL_PATH, Destination, HostSettings, RemoteSpec, SshSpec,
};
