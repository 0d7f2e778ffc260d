use super::*;

const T: &str = "2026-12-05T18:00:00Z";

fn on(host: Option<&str>, message: Option<&str>) -> GateChange {
    GateChange::MaintenanceOn {
        host: host.map(str::to_string),
        message: message.map(str::to_string),
        retry_after: None,
    }
}

#[test]
fn maintenance_on_replaces_the_same_host_and_off_without_host_ends_all() {
    let (gates, changed) = Gates::default().with(&on(None, Some("a")), T);
    assert!(changed);
    assert_eq!(gates.maintenance[0].retry_after, MAINTENANCE_RETRY_AFTER);
    let (gates, _) = gates.with(&on(None, Some("b")), T);
    let (gates, _) = gates.with(&on(Some("API.example.com"), None), T);
    assert_eq!(gates.maintenance.len(), 2);
    assert_eq!(gates.maintenance[0].message.as_deref(), Some("b"));
    assert_eq!(
        gates.maintenance[1].host.as_deref(),
        Some("api.example.com")
    );
    let off_one = GateChange::MaintenanceOff {
        host: Some("api.example.com".into()),
    };
    let (one, changed) = gates.with(&off_one, T);
    assert!(changed);
    assert_eq!(one.maintenance.len(), 1);
    let (none, _) = gates.with(&GateChange::MaintenanceOff { host: None }, T);
    assert!(none.is_empty());
}

#[test]
fn lifting_what_is_not_set_changes_nothing() {
    let (gates, changed) = Gates::default().with(&GateChange::Resume { host: None }, T);
    assert!(!changed);
    assert!(gates.is_empty());
}

#[test]
fn a_pause_gets_the_default_timeout_and_resume_lifts_it() {
    let pause = GateChange::Pause {
        host: None,
        timeout_ms: None,
        retry_after: None,
    };
    let (gates, _) = Gates::default().with(&pause, T);
    assert_eq!(gates.pause[0].timeout_ms, 30_000);
    let (gates, changed) = gates.with(&GateChange::Resume { host: None }, T);
    assert!(changed && gates.is_empty());
}
