//! Hooks against the real daemon with real demo-app processes and real hook
//! commands: each hook at its moment with its environment, failures before the
//! switch leaving production untouched under load, timeouts, and post hooks with
//! and without `rollback_on_failure`.

use std::time::Duration;

use crate::support::hooks::*;
use crate::support::load::*;
use crate::support::*;
use teal::slot::{Slot, SlotState};
use teal::wire::{Event, Outcome, Step};

/// Prints what the hook sees, and what production and the preview answer now.
/// bash's /dev/tcp keeps the hooks free of curl.
const REPORT: &str = r#"
fetch() {
  local hostport=${1#http://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return
  printf 'GET / HTTP/1.0\r\nHost: hook\r\n\r\n' >&3
  tail -n 1 <&3
  exec 3>&-
}
echo "env hook=$TEAL_HOOK service=$TEAL_SERVICE version=$TEAL_VERSION previous=$TEAL_PREVIOUS_VERSION slot=$TEAL_SLOT greeting=$GREETING arg=$1"
echo "urls preview=$TEAL_PREVIEW_URL production=$TEAL_PRODUCTION_URL"
echo "production serves $(fetch "$TEAL_PRODUCTION_URL")"
echo "preview serves $(fetch "$TEAL_PREVIEW_URL")"
"#;

/// The position of `step` in the action's events.
fn position(result: &ActionResult, step: Step) -> usize {
    result
        .events
        .iter()
        .position(|e| matches!(e, Event::Step { step: s, .. } if *s == step))
        .unwrap_or_else(|| panic!("no {step:?} step in {}", result.text()))
}

fn line_with<'a>(lines: &'a [String], start: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hook_runs_at_its_moment_with_the_right_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 2);
    spec.env.insert("GREETING".into(), "hello".into());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    spec.hooks.pre_deploy = Some(bash(REPORT, &["{version}"]));
    spec.hooks.pre_switch = Some(bash(REPORT, &["{preview_url}"]));
    spec.hooks.post_switch = Some(bash(REPORT, &["{previous_version}"]));
    spec.hooks.post_retire = Some(bash(REPORT, &["{slot}"]));
    let result = d.deploy(&spec, "2.0.0").await;
    result.assert_live();

    // In deploy order, each inside its moment.
    let at = |step| position(&result, step);
    assert!(at(Step::Prepare) < at(Step::PreDeploy));
    assert!(at(Step::PreDeploy) < at(Step::Start));
    assert!(at(Step::Health) < at(Step::PreSwitch));
    assert!(at(Step::Preview) < at(Step::PreSwitch));
    assert!(at(Step::PreSwitch) < at(Step::Switch));
    assert!(at(Step::Persist) < at(Step::PostSwitch));
    assert!(at(Step::PostSwitch) < at(Step::Drain));
    assert!(at(Step::Retire) < at(Step::PostRetire));

    let status = d.status().await;
    let preview = format!("http://{}", status.services[0].preview.unwrap());
    let production = format!("http://{}", d.addr);
    for (point, arg) in [
        ("pre_deploy", "2.0.0".to_string()),
        ("pre_switch", preview.clone()),
        ("post_switch", "1.0.0".to_string()),
        ("post_retire", "green".to_string()),
    ] {
        let lines = hook_lines(&result, point);
        assert_eq!(
            line_with(&lines, "env "),
            format!(
                "env hook={point} service=web version=2.0.0 previous=1.0.0 slot=green greeting=hello arg={arg}"
            ),
            "{point}"
        );
        assert_eq!(
            line_with(&lines, "urls "),
            format!("urls preview={preview} production={production}")
        );
    }
    // What each moment sees: before the switch production is the old version and
    // the preview listener shows the new one (once started); after it, the reverse.
    let serves = |point: &str, listener: &str| {
        let lines = hook_lines(&result, point);
        let line = line_with(&lines, &format!("{listener} serves ")).to_string();
        version_of(line.trim_start_matches(&format!("{listener} serves ")))
    };
    assert_eq!(serves("pre_deploy", "production").as_deref(), Some("1.0.0"));
    assert_eq!(serves("pre_deploy", "preview"), None, "nothing staged yet");
    assert_eq!(serves("pre_switch", "production").as_deref(), Some("1.0.0"));
    assert_eq!(serves("pre_switch", "preview").as_deref(), Some("2.0.0"));
    assert_eq!(
        serves("post_switch", "production").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(serves("post_switch", "preview").as_deref(), Some("1.0.0"));
    assert_eq!(
        serves("post_retire", "production").as_deref(),
        Some("2.0.0")
    );

    // The timeline records every step, hooks included, with their exits.
    let entry = last_entry(&d, "web").await;
    assert_eq!(
        steps(&entry),
        [
            "prepare",
            "pre_deploy",
            "start",
            "health",
            "preview",
            "pre_switch",
            "switch",
            "persist",
            "post_switch",
            "drain",
            "retire",
            "post_retire"
        ]
    );
    for step in entry
        .timeline
        .iter()
        .filter(|s| s.step.starts_with("p") && s.step.contains('_'))
    {
        assert!(!step.failed, "{step:?}");
        assert!(
            step.note.as_deref().unwrap_or("").starts_with("exit 0"),
            "{step:?}"
        );
    }
    assert_eq!(entry.reason, None);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_deploy_aborts_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let before = d.status().await;

    spec.hooks.pre_deploy = Some(bash(
        "echo migrating; echo 'no such table' >&2; exit 4",
        &[],
    ));
    let result = d.deploy(&spec, "2.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result
            .message
            .contains("pre_deploy hook failed: exit code 4")
            && result.message.contains("no such table")
            && result.message.ends_with("production untouched"),
        "{}",
        result.message
    );
    // stdout and stderr are separate pipes: both arrive, in either order.
    let mut lines = hook_lines(&result, "pre_deploy");
    lines.sort();
    assert_eq!(lines, ["migrating", "no such table"]);
    assert!(!result.text().contains("\"start\""), "nothing started");

    let after = d.status().await;
    assert_eq!(after.services[0].slots, before.services[0].slots);
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, teal::state::HistoryResult::Failed);
    assert_eq!(steps(&entry), ["prepare", "pre_deploy"]);
    assert!(entry.timeline[1].failed);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_switch_aborts_with_production_untouched_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let before = d.status().await;
    let load = steady_load(d.addr, "/");
    finish_more(&load, 200, Duration::from_secs(60)).await;

    // The smoke test finds the new version wanting: production must not move.
    spec.hooks.pre_switch = Some(bash(
        "echo \"smoke testing $1\"; echo 'expected 42, got 41'; exit 3",
        &["{preview_url}"],
    ));
    for version in ["2.0.0", "2.0.1"] {
        let result = d.deploy(&spec, version).await;
        assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
        assert!(
            result
                .message
                .contains("pre_switch hook failed: exit code 3"),
            "{}",
            result.message
        );
        assert!(!result.text().contains("\"switch\""), "{}", result.text());
    }
    finish_more(&load, 200, Duration::from_secs(60)).await;
    let report = load.stop().await;

    assert_eq!(report.failed(), 0, "{}", report.render_table());
    assert_eq!(
        report.versions.keys().collect::<Vec<_>>(),
        ["1.0.0"],
        "{}",
        report.render_table()
    );
    let after = d.status().await;
    let web = &after.services[0];
    assert_eq!(web.active_slot, Some(Slot::Blue));
    assert_eq!(
        web.slots.blue, before.services[0].slots.blue,
        "the same live instances"
    );
    assert_eq!(web.slots.green.state, SlotState::Stopped);
    assert!(web.slots.green.instances.is_empty());
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, teal::state::HistoryResult::Failed);
    let failed: Vec<_> = entry.timeline.iter().filter(|s| s.failed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].step, "pre_switch");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_outlives_its_timeout_is_stopped_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let pids = dir.path().join("pids");
    let mut hook = bash(
        "sleep 600 & echo $! > \"$1\"; echo started; wait",
        &[pids.to_str().unwrap()],
    );
    hook.timeout = Duration::from_millis(500);
    spec.hooks.pre_switch = Some(hook);
    let result = d.deploy(&spec, "2.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result
            .message
            .contains("pre_switch hook failed: timed out after 500ms")
            && result.message.contains("started"),
        "{}",
        result.message
    );
    // The hook's child went with it: its whole process group was stopped.
    let child: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = eventually(Duration::from_secs(10), || async move {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), None).is_err()
    })
    .await;
    assert!(gone, "the hook's child {child} still runs");
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_post_switch_is_recorded_and_the_new_version_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    spec.hooks.post_switch = Some(bash("echo 'chat is down' >&2; exit 1", &[]));
    spec.hooks.post_retire = Some(bash("exit 2", &[]));
    let result = d.deploy(&spec, "2.0.0").await;
    result.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, teal::state::HistoryResult::Live);
    let reason = entry.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("post_switch hook failed: exit code 1") && reason.contains("chat is down"),
        "{reason}"
    );
    assert!(
        reason.contains("post_retire hook failed: exit code 2"),
        "{reason}"
    );
    let failed: Vec<_> = entry
        .timeline
        .iter()
        .filter(|s| s.failed)
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(failed, ["post_switch", "post_retire"]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_post_switch_with_rollback_on_failure_switches_back_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let load = steady_load(d.addr, "/");
    finish_more(&load, 200, Duration::from_secs(60)).await;

    spec.hooks.rollback_on_failure = true;
    spec.hooks.post_switch = Some(bash("exit 9", &[]));
    let result = d.deploy(&spec, "2.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result
            .message
            .contains("post_switch hook failed: exit code 9")
            && result.message.contains("production switched back to 1.0.0"),
        "{}",
        result.message
    );
    finish_more(&load, 200, Duration::from_secs(60)).await;
    let report = load.stop().await;
    // 2.0.0 was healthy: moving there and back drops nothing.
    assert_eq!(report.failed(), 0, "{}", report.render_table());

    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Blue));
    assert_eq!(web.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(web.slots.blue.state, SlotState::Live);
    assert_eq!(web.slots.green.state, SlotState::Stopped);
    assert!(web.slots.green.instances.is_empty());
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, teal::state::HistoryResult::Failed);
    assert_eq!(
        steps(&entry)[4..],
        [
            "switch",
            "persist",
            "post_switch",
            "switch_back",
            "drain",
            "retire"
        ]
    );
    // One entry per action: the switch's own entry became the failure.
    assert_eq!(d.client.history("web").await.unwrap().entries.len(), 2);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_runs_pre_switch_and_a_failure_keeps_the_slot_staged() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let marker = dir.path().join("pre_deploy-ran");
    spec.hooks.pre_deploy = Some(bash("touch \"$1\"", &[marker.to_str().unwrap()]));
    spec.hooks.pre_switch = Some(bash("echo \"checking $1\"; exit 1", &["{preview_url}"]));
    let staged = d.deploy_with(&spec, "2.0.0", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());
    assert!(marker.exists(), "pre_deploy runs when staging");
    assert!(
        !staged.text().contains("pre_switch"),
        "pre_switch waits for the promote"
    );

    let promoted = d.promote("web").await;
    assert_eq!(promoted.outcome, Outcome::Failed, "{}", promoted.text());
    assert!(
        promoted
            .message
            .contains("pre_switch hook failed: exit code 1"),
        "{}",
        promoted.message
    );
    let web = &d.status().await.services[0];
    assert_eq!(web.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(
        web.slots.green.state,
        SlotState::Staged,
        "still staged for another try"
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_runs_no_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    spec.drain.keep_previous = false;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    // Hooks that would refuse 1.0.0: the rollback to it must not run them.
    let refuse = bash("[ \"$TEAL_VERSION\" != 1.0.0 ]", &[]);
    spec.hooks.pre_deploy = Some(refuse.clone());
    spec.hooks.pre_switch = Some(refuse.clone());
    spec.hooks.post_switch = Some(refuse);
    d.deploy(&spec, "2.0.0").await.assert_live();

    // 1.0.0's slot was stopped (keep_previous = false): the rollback redeploys it.
    let rollback = d.rollback("web").await;
    rollback.assert_live();
    assert!(rollback.text().contains("\"start\""), "a redeploy");
    assert!(
        !rollback.text().contains("pre_deploy"),
        "{}",
        rollback.text()
    );
    assert!(
        !rollback.text().contains("pre_switch"),
        "{}",
        rollback.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}
