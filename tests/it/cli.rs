//! The `teal` binary end to end: `teal serve` as a real process, the client verbs
//! against it, config errors, exit codes and output formats.

use std::path::Path;

use crate::support::served::{Served, teal};
use crate::support::*;

fn write_config(dir: &Path, extra: &str) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "100ms"]
instances = 2
version = "1.0.0"
preview = "127.0.0.1:0"
{extra}
[services.web.health]
interval = "50ms"
deadline = "5s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn serve_deploy_status_history_logs_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let mut daemon = Served::serve(dir.path());

    let out = teal(dir.path()).args(["deploy", "web"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for step in ["prepare", "start", "health", "switch", "persist"] {
        assert!(stderr.contains(step), "progress shows {step}: {stderr}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.0.0 is live"));

    let out = teal(dir.path())
        .args(["deploy", "web", "--version", "1.1.1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect();
    assert_eq!(events.last().unwrap()["event"], "done");
    assert_eq!(events.last().unwrap()["outcome"], "live");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step" && e["step"] == "drain")
    );

    let status = json(
        &teal(dir.path())
            .args(["status", "--json"])
            .output()
            .unwrap(),
    );
    let web = &status["services"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["active_slot"], "green");
    assert_eq!(web["active_version"], "1.1.1");
    assert_eq!(web["slots"]["green"]["state"], "live");
    assert_eq!(web["slots"]["blue"]["state"], "standby");
    assert_eq!(web["slots"]["blue"]["version"], "1.0.0");
    let instances = web["slots"]["green"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    assert!(
        instances
            .iter()
            .all(|i| i["healthy"] == true && i["addr"].is_string())
    );
    let listen: std::net::SocketAddr = status["listen"][0].as_str().unwrap().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(serving(listen)).as_deref(), Some("1.1.1"));

    let human = teal(dir.path()).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("1.1.1 on green") && text.contains("standby"),
        "{text}"
    );

    let history = json(
        &teal(dir.path())
            .args(["history", "web", "--json"])
            .output()
            .unwrap(),
    );
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["version"], "1.1.1");
    assert_eq!(entries[1]["result"], "live");
    assert_eq!(entries[1]["from_version"], "1.0.0");

    let logs = teal(dir.path()).args(["logs", "web"]).output().unwrap();
    assert!(logs.status.success());
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("1.1.1"),
        "live slot output"
    );
    let logs = teal(dir.path())
        .args(["logs", "web", "--slot", "blue"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("1.0.0"),
        "blue slot output"
    );

    let rb = teal(dir.path()).args(["rollback", "web"]).output().unwrap();
    assert!(
        rb.status.success(),
        "{}",
        String::from_utf8_lossy(&rb.stderr)
    );
    assert_eq!(rt.block_on(serving(listen)).as_deref(), Some("1.0.0"));

    // Live instances outlive `teal serve`; `teal stop` is how they go on purpose.
    let pids: Vec<i32> = json(
        &teal(dir.path())
            .args(["status", "--json"])
            .output()
            .unwrap(),
    )["services"][0]["slots"]["blue"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let out = teal(dir.path()).args(["stop", "web"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("web is stopped (4 instances)"));
    assert!(pids.iter().all(|pid| !alive(*pid)), "stopped: {pids:?}");

    let status = daemon.terminate();
    assert!(
        status.success(),
        "teal serve exits 0 after SIGTERM: {status:?}"
    );
    assert!(
        !dir.path().join("state/teal.sock").exists(),
        "control socket removed"
    );
}

#[test]
fn a_bad_config_is_located_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let mut daemon = Served::serve(dir.path());
    assert!(
        teal(dir.path())
            .args(["deploy", "web"])
            .status()
            .unwrap()
            .success()
    );
    let state_before = std::fs::read(dir.path().join("state/state.json")).unwrap();

    write_config(dir.path(), "comand = [\"oops\"]\n");
    let out = teal(dir.path())
        .args(["deploy", "web", "--version", "2.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad config exits 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("teal.toml:11:1"),
        "names file, line and column: {stderr}"
    );
    assert!(stderr.contains("comand"), "{stderr}");

    std::fs::write(
        dir.path().join("teal.toml"),
        std::fs::read_to_string(dir.path().join("teal.toml"))
            .unwrap()
            .replace("comand = [\"oops\"]\n", "")
            .replace("interval = \"50ms\"", "interval = \"fast\""),
    )
    .unwrap();
    let out = teal(dir.path())
        .args(["deploy", "web", "--version", "2.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("teal.toml:13:12"), "{stderr}");

    let state_after = std::fs::read(dir.path().join("state/state.json")).unwrap();
    assert_eq!(state_before, state_after, "state untouched by bad configs");
    write_config(dir.path(), "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = json(
        &teal(dir.path())
            .args(["status", "--json"])
            .output()
            .unwrap(),
    );
    let listen: std::net::SocketAddr = status["listen"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(rt.block_on(serving(listen)).as_deref(), Some("1.0.0"));
    assert!(daemon.terminate().success());
}

#[test]
fn verbs_explain_themselves_and_errors_map_to_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let help = teal(dir.path()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for verb in [
        "serve", "deploy", "promote", "rollback", "status", "history", "logs", "demo",
    ] {
        assert!(text.contains(verb), "--help lists {verb}");
    }
    assert!(!text.contains("demo-app"), "the demo app is hidden");

    let out = teal(dir.path()).arg("status").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing teal.toml is a config error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("teal.toml"));

    write_config(dir.path(), "");
    let out = teal(dir.path()).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "no daemon: unreachable");
    assert!(String::from_utf8_lossy(&out.stderr).contains("teal serve"));

    let out = teal(dir.path()).args(["deploy", "nope"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown service is bad input"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nope\" (known: web)"));
}
