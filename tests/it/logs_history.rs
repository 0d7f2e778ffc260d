//! `teal logs` keeps history, through the binary: every start of a slot keeps
//! the run before it, so older versions' output (and why they stopped) stays
//! readable with `--version` and `--previous`, stale files of instance indexes
//! that no longer exist are not shown, and what is kept is bounded.

use std::path::Path;

use crate::support::TEAL;
use crate::support::served::{Served, teal};

fn write_config(dir: &Path, instances: usize) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "50ms"]
instances = {instances}

[services.web.health]
interval = "50ms"
deadline = "10s"

[services.web.drain]
timeout = "1s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

fn deploy(dir: &Path, version: &str) {
    let out = teal(dir)
        .args(["deploy", "web", "--version", version])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy {version}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `teal logs web ARGS`: (success, stdout, stderr).
fn logs(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = teal(dir).args(["logs", "web"]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The output of a run that printed `version` and no other of `others`.
#[track_caller]
fn shows(dir: &Path, args: &[&str], version: &str, others: &[&str]) -> String {
    let (ok, out, err) = logs(dir, args);
    assert!(ok, "teal logs web {args:?}: {err}");
    assert!(
        out.contains(version),
        "teal logs web {args:?} shows {version}: {out}"
    );
    for other in others.iter().filter(|o| **o != version) {
        assert!(
            !out.contains(other),
            "teal logs web {args:?} is {version} only: {out}"
        );
    }
    out
}

#[test]
fn older_runs_stay_readable_and_what_is_kept_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 2);
    let _daemon = Served::serve(dir.path());
    let all = ["v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0"];
    let versions: Vec<&str> = all.iter().map(|v| &v[1..]).collect();
    for version in &versions {
        deploy(dir.path(), version);
    }

    // Two deploys later, 1.0.0 and 2.0.0 are still there, with why they stopped.
    let one = shows(dir.path(), &["--version", "1.0.0"], "1.0.0", &versions);
    assert!(
        one.contains("--- teal: stopped"),
        "why 1.0.0 stopped: {one}"
    );
    assert!(
        one.contains("[0] ") && one.contains("[1] "),
        "both instances: {one}"
    );
    shows(dir.path(), &["--version", "2.0.0"], "2.0.0", &versions);
    shows(dir.path(), &[], "4.0.0", &versions);
    shows(dir.path(), &["--previous"], "3.0.0", &versions);
    shows(dir.path(), &["--slot", "blue"], "3.0.0", &versions);

    // One instance now: blue's instance 1 (of 3.0.0) is not shown as 5.0.0's.
    write_config(dir.path(), 1);
    deploy(dir.path(), "5.0.0");
    let live = shows(dir.path(), &[], "5.0.0", &["3.0.0", "4.0.0"]);
    assert!(!live.contains("[1] "), "no stale instance 1: {live}");
    shows(dir.path(), &["--version", "3.0.0"], "3.0.0", &versions);

    // A version nobody kept is a clear error.
    let (ok, _, err) = logs(dir.path(), &["--version", "0.9.0"]);
    assert!(!ok);
    assert!(
        err.contains("no output of web version 0.9.0 is kept"),
        "{err}"
    );
    let (ok, _, err) = logs(dir.path(), &["--version", "1.0.0", "--previous"]);
    assert!(!ok, "one choice at a time: {err}");

    // Kept runs are bounded: ten earlier runs besides the two slots' latest.
    for n in 6..=14 {
        deploy(dir.path(), &format!("{n}.0.0"));
    }
    let runs = std::fs::read_dir(dir.path().join("state/logs/web/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 10, "archived runs kept");
    let (ok, _, err) = logs(dir.path(), &["--version", "1.0.0"]);
    assert!(!ok, "1.0.0 is the oldest, gone: {err}");
    assert!(
        err.contains("no output of web version 1.0.0 is kept"),
        "{err}"
    );
    shows(
        dir.path(),
        &["--version", "3.0.0"],
        "3.0.0",
        &["1.0.0", "14.0.0"],
    );
    shows(dir.path(), &["--previous"], "13.0.0", &["14.0.0"]);
}
