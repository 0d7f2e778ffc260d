//! The shape of `teal.toml` as written: serde types with `deny_unknown_fields`.
//!
//! Everything that is validated later keeps its [`Spanned`] byte range, so that
//! `resolve` can point an error at the offending value. Nothing outside `config/`
//! sees these types. Field order is the order of the DESIGN.md example, because
//! "expected one of" messages list fields in declaration order.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub state_dir: Option<Spanned<String>>,
    pub proxy: Option<RawProxy>,
    /// Keyed by service name; the key's span locates service-level errors.
    pub services: Option<BTreeMap<Spanned<String>, RawService>>,
    /// Remote hosts (`remote.rs`).
    pub ssh: Option<RawSsh>,
    pub hosts: Option<BTreeMap<Spanned<String>, RawHost>>,
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub listen: Option<Spanned<String>>,
    pub router: Option<Spanned<String>>,
    pub control: Option<Spanned<String>>,
    pub admin: Option<Spanned<String>>,
    /// Signed so that `workers = 0` or `-1` gets teal's message.
    pub workers: Option<Spanned<i64>>,
    pub upstream_idle_timeout: Option<Spanned<String>>,
    pub response_timeout: Option<Spanned<String>>,
    pub body_buffer: Option<Spanned<String>>,
    pub body_timeout: Option<Spanned<String>>,
    pub send_timeout: Option<Spanned<String>>,
    /// Signed so that `0` or `-1` gets teal's message.
    pub max_concurrent_streams: Option<Spanned<i64>>,
    pub underscores_in_headers: Option<Spanned<String>>,
    /// Defaults for services' `max_body` and `error_pages` (`policy.rs`).
    pub max_body: Option<Spanned<String>>,
    pub error_pages: Option<Spanned<String>>,
    /// A path (relative to the file) or `"stdout"`.
    pub access_log: Option<Spanned<String>>,
    pub nginx: Option<Spanned<RawNginx>>,
    /// `[proxy.tls]` (`tls.rs`).
    pub tls: Option<Spanned<RawProxyTls>>,
}

/// `[proxy.tls]`: the TLS listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxyTls {
    pub listen: Option<Spanned<String>>,
    pub redirect: Option<Spanned<bool>>,
    pub acme_email: Option<Spanned<String>>,
    pub acme_directory: Option<Spanned<String>>,
    pub acme_ca: Option<Spanned<String>>,
    pub acme_retry: Option<Spanned<String>>,
}

/// A service's `tls`: a word (`"acme"`), or a table of the user's own files.
#[derive(Debug)]
pub(super) enum RawTls {
    Word(String),
    Files(RawTlsFiles),
}

/// `tls = { cert = "fullchain.pem", key = "key.pem" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsFiles {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TlsVisitor;
        impl<'de> serde::de::Visitor<'de> for TlsVisitor {
            type Value = RawTls;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table such as { cert = \"fullchain.pem\", key = \"key.pem\" }")
            }

            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<RawTls, E> {
                Ok(RawTls::Word(word.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawTls, A::Error> {
                RawTlsFiles::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawTls::Files)
            }
        }
        d.deserialize_any(TlsVisitor)
    }
}

/// `[proxy.nginx]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNginx {
    pub binary: Option<Spanned<String>>,
    pub conf_dir: Option<Spanned<String>>,
    pub main_conf: Option<Spanned<String>>,
    pub reload: Option<Spanned<Vec<String>>>,
    pub pid_file: Option<Spanned<String>>,
    /// Signed so that `workers = 0` or `-1` gets teal's message.
    pub workers: Option<Spanned<i64>>,
    pub keepalive_timeout: Option<Spanned<String>>,
    pub include: Option<Spanned<String>>,
}

/// `[services.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub runtime: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<String>>>,
    /// Docker runtime only: the image reference, `{version}` substituted.
    pub image: Option<Spanned<String>>,
    /// Docker runtime only: the container's port.
    pub port: Option<Spanned<i64>>,
    /// Docker runtime only: `SOURCE:TARGET[:ro|rw]` mounts.
    pub volumes: Option<Vec<Spanned<String>>>,
    /// Docker runtime only: the engine's restart policy.
    pub restart: Option<Spanned<String>>,
    /// Docker runtime only: the engine's log driver.
    pub log_driver: Option<Spanned<String>>,
    /// Docker runtime only: resource limits per container.
    pub limits: Option<Spanned<RawLimits>>,
    /// Docker runtime only: a user network the containers join.
    pub network: Option<Spanned<String>>,
    /// Docker runtime only: how many deployed images pruning keeps.
    pub keep_images: Option<Spanned<i64>>,
    /// Signed so that `instances = -1` gets teal's message, not a serde type error.
    pub instances: Option<Spanned<i64>>,
    pub version: Option<Spanned<String>>,
    pub hosts: Option<Vec<Spanned<String>>>,
    pub preview: Option<Spanned<String>>,
    /// Its certificate on the TLS listener (`tls.rs`).
    pub tls: Option<Spanned<RawTls>>,
    /// Largest request body and the proxy's error pages (`policy.rs`).
    pub max_body: Option<Spanned<String>>,
    pub error_pages: Option<Spanned<String>>,
    pub env: Option<BTreeMap<Spanned<String>, String>>,
    /// A dotenv file under `env` (`env.rs`), relative to the config file.
    pub env_file: Option<Spanned<String>>,
    /// Names read at deploy time on the deploying machine (`env.rs`).
    pub secrets: Option<Spanned<Vec<Spanned<String>>>>,
    pub health: Option<RawHealth>,
    pub drain: Option<RawDrain>,
    /// Hooks and verification (`hooks.rs`).
    pub hooks: Option<RawHooks>,
    pub verify: Option<RawVerify>,
    /// `"http1"` (default) or `"h2c"`: what the proxy speaks to instances.
    pub protocol: Option<Spanned<String>>,
    /// Remote hosts to deploy to (`remote.rs`).
    pub servers: Option<Vec<Spanned<String>>>,
}

/// `[services.NAME.health]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub path: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub deadline: Option<Spanned<String>>,
    /// `true` or a gRPC service name: the standard gRPC health check.
    pub grpc: Option<Spanned<RawGrpcHealth>>,
}

/// `health.grpc`: `true` (the server as a whole, service `""`), `false`, or
/// the service name to ask about.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawGrpcHealth {
    On(bool),
    Service(String),
}

/// `[services.NAME.drain]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrain {
    pub timeout: Option<Spanned<String>>,
    pub keep_previous: Option<bool>,
}

/// `[services.NAME.hooks]`: one command per moment, plus defaults for all of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    pub pre_deploy: Option<Spanned<RawHook>>,
    pub pre_switch: Option<Spanned<RawHook>>,
    pub post_switch: Option<Spanned<RawHook>>,
    pub post_retire: Option<Spanned<RawHook>>,
    pub timeout: Option<Spanned<String>>,
    pub run_in: Option<Spanned<String>>,
    pub rollback_on_failure: Option<bool>,
}

/// One hook: a command array, or a table with its own `timeout` and `run_in`.
#[derive(Debug)]
pub(super) enum RawHook {
    Command(Vec<String>),
    Table(RawHookTable),
}

/// `pre_deploy = { command = [...], timeout = "10m", run_in = "image" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHookTable {
    pub command: Option<Spanned<Vec<String>>>,
    pub timeout: Option<Spanned<String>>,
    pub run_in: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawHook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HookVisitor;
        impl<'de> serde::de::Visitor<'de> for HookVisitor {
            type Value = RawHook;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command array such as [\"./bin/migrate\", \"expand\"], or a table with `command`")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawHook, A::Error> {
                Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(RawHook::Command)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawHook, A::Error> {
                RawHookTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawHook::Table)
            }
        }
        d.deserialize_any(HookVisitor)
    }
}

/// `[services.NAME.verify]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    pub window: Option<Spanned<String>>,
    pub max_error_rate: Option<Spanned<f64>>,
    pub max_p99: Option<Spanned<String>>,
    /// Signed so that a negative count gets teal's message.
    pub min_requests: Option<Spanned<i64>>,
    pub on_inconclusive: Option<Spanned<String>>,
}

/// `[ssh]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    pub config: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub teal_path: Option<Spanned<String>>,
    pub binary: Option<Spanned<String>>,
}

/// `[hosts."NAME"]`. `proxy` stays a table: it is laid over `[proxy]` key by key
/// and validated as the host's daemon will read it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub state_dir: Option<Spanned<String>>,
    pub teal_path: Option<Spanned<String>>,
    pub proxy: Option<Spanned<toml::Table>>,
}

/// `[services.NAME.limits]` (docker runtime).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    /// "512m", "1g", or a number of bytes as a string.
    pub memory: Option<Spanned<String>>,
    /// CPUs, fractions allowed: `cpus = 1.5`.
    pub cpus: Option<Spanned<RawNumber>>,
}

/// A TOML integer or float.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(super) enum RawNumber {
    Int(i64),
    Float(f64),
}

impl RawNumber {
    pub fn as_f64(self) -> f64 {
        match self {
            RawNumber::Int(n) => n as f64,
            RawNumber::Float(f) => f,
        }
    }
}
