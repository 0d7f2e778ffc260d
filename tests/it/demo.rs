//! `teal demo` through the binary: the blue-green walk-through with the automatic rollback
//! step, zero failed requests outside it, and that step's failures exactly the
//! ones teal counted on the bad slot, within the error budget.

use std::time::Duration;

use crate::support::TEAL;

#[test]
fn teal_demo_catches_the_flaky_version_and_drops_nothing_else() {
    let output = assert_cmd::Command::new(TEAL)
        .args(["demo", "--json"])
        .timeout(Duration::from_secs(240))
        .output()
        .expect("teal demo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "teal demo:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");

    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("deploy 1.0.0", "live"),
            ("deploy broken-1.1.0", "failed"),
            ("deploy 1.1.1", "live"),
            ("rollback", "live"),
            ("deploy flaky-1.2.0", "failed"),
        ]
    );
    let caught = &report["auto_rollback"];
    let affected = caught["affected"].as_u64().unwrap();
    assert_eq!(
        caught["errors_counted"].as_u64().unwrap(),
        affected,
        "{report:#}"
    );
    assert!(affected <= caught["bound"].as_u64().unwrap(), "{report:#}");
    assert!(
        caught["reason"].as_str().unwrap().contains("error rate"),
        "{report:#}"
    );
    // Every failure the load saw is one of the flaky version's own 500s.
    let load = &report["load"];
    assert_eq!(load["errors"], serde_json::json!({}), "{report:#}");
    let failed = load["sent"].as_u64().unwrap() - load["ok"].as_u64().unwrap();
    assert_eq!(failed, affected, "{report:#}");
    assert_eq!(load["statuses"]["500"].as_u64().unwrap_or(0), affected);
    assert!(stderr.contains("switch_back"), "{stderr}");
}
