//! The blue-green flow against the real daemon with real demo-app processes:
//! broken deploys, preview and promote, rollback, restart, concurrency, crashes.

use std::time::Duration;

use crate::support::*;
use teal::slot::{Slot, SlotState};
use teal::wire::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_version_fails_and_production_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let before = d.status().await;

    let mut broken = spec.clone();
    broken.health.deadline = Duration::from_secs(2);
    let result = d.deploy(&broken, "broken-1.1.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result.message.contains("HTTP 500"),
        "reason names the last answer: {}",
        result.message
    );
    assert!(
        result.message.contains("Errors everywhere"),
        "{}",
        result.message
    );

    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let after = d.status().await;
    let web = &after.services[0];
    assert_eq!(web.active_slot, before.services[0].active_slot);
    assert_eq!(web.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(web.slots.green.state, SlotState::Stopped);
    assert!(web.slots.green.instances.is_empty());
    // The live instances are the very same processes as before.
    assert_eq!(
        instance_ids(&before.services[0].slots.blue),
        instance_ids(&after.services[0].slots.blue)
    );
    let history = d.client.history("web").await.unwrap();
    let last = history.entries.last().unwrap();
    assert_eq!(last.version, "broken-1.1.0");
    assert_eq!(serde_json::to_value(last.result).unwrap(), "failed");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promote_stages_on_preview_and_promote_switches() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let staged = d.deploy_with(&spec, "1.1.1", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());

    let status = d.status().await;
    let web = &status.services[0];
    let preview = web.preview.expect("preview listener bound");
    assert_eq!(web.slots.green.state, SlotState::Staged);
    assert_eq!(
        serving(d.addr).await.as_deref(),
        Some("1.0.0"),
        "production still old"
    );
    assert_eq!(
        serving(preview).await.as_deref(),
        Some("1.1.1"),
        "preview shows the new version"
    );

    d.promote("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.1.1"));
    assert_eq!(
        serving(preview).await.as_deref(),
        Some("1.0.0"),
        "preview now shows the standby"
    );
    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Green));
    assert_eq!(web.slots.blue.state, SlotState::Standby);

    let again = d.client.promote("web").await.unwrap();
    let again = ActionResult::collect(again).await;
    assert_eq!(again.outcome, Outcome::Failed, "nothing staged any more");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_instant_while_the_previous_slot_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let v1_ids = instance_ids(&d.status().await.services[0].slots.blue);
    d.deploy(&spec, "2.0.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));

    let rb = d.rollback("web").await;
    rb.assert_live();
    assert!(
        !rb.text().contains("\"start\""),
        "no start step in an instant rollback: {}",
        rb.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Blue));
    assert_eq!(
        instance_ids(&web.slots.blue),
        v1_ids,
        "the same processes serve again: no restart"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_redeploys_when_the_previous_slot_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    spec.drain.keep_previous = false;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    d.deploy(&spec, "2.0.0").await.assert_live();
    let web = &d.status().await.services[0];
    assert_eq!(
        web.slots.blue.state,
        SlotState::Stopped,
        "old slot stopped without keep_previous"
    );

    let rb = d.rollback("web").await;
    rb.assert_live();
    assert!(
        rb.text().contains("\"start\""),
        "a redeploy starts instances: {}",
        rb.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let history = d.client.history("web").await.unwrap();
    let last = history.entries.last().unwrap();
    assert_eq!(serde_json::to_value(last.action).unwrap(), "rollback");
    assert_eq!(last.version, "1.0.0");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_serves_the_same_live_version() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 2);
    let cfg = config(dir.path(), vec![]);
    let d = TestDaemon::start(&cfg).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    d.deploy(&spec, "1.2.0").await.assert_live();
    d.stop().await;

    let d = TestDaemon::start(&cfg).await;
    // Restore health-gates before the proxy serves: the first request already works.
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.2.0"));
    let web = &d.status().await.services[0];
    assert_eq!(web.active_version.as_deref(), Some("1.2.0"));
    assert_eq!(web.active_slot, Some(Slot::Green));
    assert_eq!(web.slots.green.instances.len(), 2);
    assert!(web.slots.green.instances.iter().all(|i| i.healthy));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deploy_while_one_runs_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    // A slow-booting version keeps the first deploy in its health gate.
    #[allow(irrefutable_let_patterns)]
    if let teal::spec::RuntimeSpec::Process { command } = &mut spec.runtime {
        let last = command.len() - 1;
        command[last] = "3s".into();
    }
    let first = d
        .client
        .deploy(&deploy_request(&spec, "2.0.0"))
        .await
        .unwrap();
    let second = d.client.deploy(&deploy_request(&spec, "3.0.0")).await;
    let err = second.err().expect("second deploy refused");
    assert!(is_busy(&err), "busy error: {err}");
    assert!(err.to_string().contains("deploy in progress"), "{err}");
    ActionResult::collect(first).await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_is_bypassed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let status = d.status().await;
    let victim = &status.services[0].slots.blue.instances[0];
    let pid: i32 = victim
        .id
        .trim_start_matches("pid ")
        .parse()
        .expect("process id");

    let load = teal::load::Load::start(teal::load::LoadSpec {
        target: d.addr,
        host: None,
        tls: None,
        path: "/".into(),
        keepalive_connections: 4,
        fresh_connection_workers: 1,
        max_requests: 200_000,
        max_duration: Duration::from_secs(60),
        request_timeout: Duration::from_secs(5),
        pause: Duration::from_millis(2),
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = eventually(Duration::from_secs(20), || async {
        let s = d.status().await;
        let i = &s.services[0].slots.blue.instances[0];
        i.restarts >= 1 && i.healthy
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    assert!(restarted, "the killed instance came back healthy");
    assert!(report.ok > 0);
    assert_eq!(
        report.failed(),
        0,
        "no request failed while an instance was killed: {report:?}"
    );
    d.stop().await;
}

/// While a successor daemon takes over (`teal serve --upgrade` holds every
/// action lock), no action begins: not on a known service, and not a first
/// deploy of a service this daemon never saw. A failed upgrade lets them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_action_begins_while_a_successor_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let web = demo_service("web", dir.path(), 1);
    let mut api = demo_service("api", dir.path(), 1);
    api.hosts = vec!["api.example.com".into()];
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&web, "1.0.0").await.assert_live();

    let upgrading = d
        .daemon
        .deployer()
        .lock_all_actions()
        .expect("nothing runs");
    for spec in [&web, &api] {
        let err = d
            .client
            .deploy(&deploy_request(spec, "2.0.0"))
            .await
            .err()
            .unwrap_or_else(|| panic!("a deploy of {} during an upgrade is refused", spec.name));
        assert!(is_busy(&err), "{err}");
        assert!(err.to_string().contains("being upgraded"), "{err}");
    }
    drop(upgrading);
    d.deploy(&api, "1.0.0").await.assert_live();
    d.stop().await;
}
