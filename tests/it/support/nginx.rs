//! Helpers for tests that run teal with `router = "nginx"` against the real nginx.
//!
//! nginx cannot listen on port 0 in a way teal can learn, so these tests pick free
//! loopback ports: bind port 0, read the port, close. Another process could take
//! the port in between; on a test machine that is rare, and it fails loudly.

use std::path::Path;

use teal::spec::{Config, NginxSpec, RouterKind, ServiceSpec};

/// True when an nginx binary can be found; use with `require("nginx", ...)`.
pub fn available() -> bool {
    teal::router::nginx::locate(&NginxSpec::default()).is_some()
}

/// Skips (or, with CI=true, fails) a test when nginx is missing.
pub fn required() -> bool {
    super::require("nginx", available())
}

pub use super::free_addr;

/// The demo-app service with a preview on a free port.
pub fn service(name: &str, dir: &Path, instances: usize) -> ServiceSpec {
    let mut spec = super::demo_service(name, dir, instances);
    spec.preview = Some(free_addr());
    spec
}

/// [`super::config`] with `router = "nginx"` (managed) on a free production port.
pub fn config(dir: &Path, services: Vec<ServiceSpec>) -> Config {
    let mut config = super::config(dir, services);
    config.proxy.router = RouterKind::Nginx;
    config.proxy.listen = free_addr();
    config.proxy.nginx = NginxSpec {
        // Two workers, like the builtin's two test threads.
        workers: Some(2),
        ..NginxSpec::default()
    };
    config
}

/// `config` with `[proxy.tls]` on a free port, redirects on.
pub fn with_tls(mut config: Config) -> Config {
    config.proxy.tls = Some(teal::spec::TlsListenSpec {
        listen: free_addr(),
        redirect: true,
        acme: None,
    });
    config
}

/// The managed nginx master of `state_dir`, from its pid file.
pub fn master_pid(state_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(state_dir.join("nginx/nginx.pid")).ok()?;
    text.trim().parse().ok()
}

/// The worker processes of an nginx master that are not shutting down: the
/// generation serving now. A reload replaces them, so the same set before and
/// after something means nginx was not reloaded in between.
pub fn serving_workers(master: i32) -> std::collections::BTreeSet<i32> {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
        .filter(|pid| {
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let title = String::from_utf8_lossy(&title);
            title.contains("worker process") && !title.contains("shutting down")
        })
        .collect()
}
