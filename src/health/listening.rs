//! What the kernel says about where an instance listens, in the words the
//! gate and `teal status` use: an app that listens on a port other than the
//! one teal gave it (it will never pass the gate: say so at once), and one
//! that listens on every interface (reachable without going through teal).
//! Only runtimes that can tell ([`Instance::listening`]) get these answers.

use std::net::SocketAddr;

use crate::runtime::Instance;

/// Why `instance` cannot be reached on its address although it runs: its
/// processes listen, but none on its port. None when that is not the case (or
/// the runtime cannot tell).
pub fn wrong_port(instance: &dyn Instance) -> Option<String> {
    let addr = instance.addr();
    let listens = instance.listening()?;
    if listens.is_empty() || listens.iter().any(|a| a.port() == addr.port()) {
        return None;
    }
    Some(format!(
        "instance {} (pid {}) listens on {}, not on {addr}: pass {{port}} (in command) or $PORT (in its environment) to your app",
        instance.index(),
        instance.id(),
        list(&listens)
    ))
}

/// A warning when `instance` listens on its port on every interface
/// (`0.0.0.0`, `::`): anyone who can reach this host reaches the app without
/// teal's proxy.
pub fn wildcard(instance: &dyn Instance) -> Option<String> {
    let port = instance.addr().port();
    let open: Vec<SocketAddr> = instance
        .listening()?
        .into_iter()
        .filter(|a| a.port() == port && a.ip().is_unspecified())
        .collect();
    if open.is_empty() {
        return None;
    }
    Some(format!(
        "instance {} (pid {}) listens on {}, every interface: it can be reached without going through teal; bind it to {} (e.g. gunicorn -b 127.0.0.1:{{port}}, uvicorn --host 127.0.0.1)",
        instance.index(),
        instance.id(),
        list(&open),
        instance.addr()
    ))
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
