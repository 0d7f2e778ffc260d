//! Deploying to hosts over ssh, end to end: real sshd instances on loopback
//! ports (see `remote_support`), the teal binary as the CLI, a teal daemon per
//! "host" started by teal itself over ssh, and real demo-app instances.

mod common;
mod remote_support;

use std::net::SocketAddr;
use std::process::Output;

use common::*;
use remote_support::Lab;

/// teal.toml for the lab: service `web` on `servers`, every host's own state
/// dir, teal path and listener. The command refuses to start (exit 3) on a host
/// whose state dir holds a `fail-stage` file: a host-specific broken deploy.
fn write_config(lab: &Lab, servers: &[&str], extra: &str) {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"state_dir = "local"
{extra}
[proxy]
listen = "127.0.0.1:0"

[ssh]
config = "ssh_config"

[services.web]
command = ["sh", "-c", "if [ -e fail-stage ]; then echo 'fail-stage is here' >&2; exit 3; fi; exec {TEAL} demo-app --port {{port}} --app-version {{version}} --boot-delay 100ms"]
instances = 2
version = "1.0.0"
preview = "127.0.0.1:0"
servers = [{servers}]

[services.web.health]
interval = "50ms"
deadline = "10s"

[services.web.drain]
timeout = "5s"

{hosts}"#,
        servers = servers.join(", "),
        hosts = lab.hosts_toml(),
    );
    std::fs::write(lab.root().join("teal.toml"), text).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(out.status.success(), "expected success: {}", text(out));
}

/// Each host's production listener, from `teal status --json`.
fn listeners(lab: &Lab) -> Vec<(String, SocketAddr)> {
    let out = lab.run(&["status", "web", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let addr = h["status"]["listen"][0].as_str().unwrap().parse().unwrap();
            (h["host"].as_str().unwrap().to_string(), addr)
        })
        .collect()
}

async fn serving_everywhere(lab: &Lab) -> Vec<Option<String>> {
    let mut versions = Vec::new();
    for (_, addr) in listeners(lab) {
        versions.push(serving(addr).await);
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_one_host() {
    let Some(lab) = Lab::start(&["a"]) else { return };
    lab.preinstall_teal();
    write_config(&lab, &["a"], "");

    let out = lab.run(&["deploy", "web", "--version", "1.0.0"]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("web 1.0.0 is live on a"), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a: teal at"), "{}", text(&out));
    assert!(stderr.contains("a: started teal serve detached"), "{}", text(&out));
    assert!(stderr.lines().any(|l| l.starts_with("a: [") && l.contains("health")), "every daemon line names the host: {}", text(&out));
    assert!(lab.host("a").daemon_pid().is_some(), "teal serve runs on a");
    assert_eq!(serving_everywhere(&lab).await, [Some("1.0.0".to_string())]);

    // The daemon is reused, and drives the next deploy.
    let out = lab.run(&["deploy", "web", "--version", "1.1.0"]);
    assert_ok(&out);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("started teal serve"), "{}", text(&out));
    assert_eq!(serving_everywhere(&lab).await, [Some("1.1.0".to_string())]);

    // history and logs report per host; the lock was released.
    let out = lab.run(&["history", "web", "--host", "a"]);
    assert_ok(&out);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(history.starts_with("== a\n"), "{history}");
    assert!(history.contains("1.1.0") && history.contains("1.0.0"), "{history}");
    let out = lab.run(&["logs", "web"]);
    assert_ok(&out);
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(!logs.is_empty() && logs.lines().all(|l| l.starts_with("a: ")), "{logs}");
    let out = lab.run(&["status", "web", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["hosts"][0]["status"]["services"][0].get("lock").is_none(), "{json}");
}
