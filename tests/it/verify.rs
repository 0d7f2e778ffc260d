//! Post-switch verification against the real daemon under real load: a version
//! that passes its health check but fails real traffic is switched back by the
//! proxy itself, with every failure clients saw counted and bounded by the
//! window's budget; passing, inconclusive and slow windows; the previous slot kept
//! warm through the window even with `keep_previous = false`.

use std::time::Duration;

use crate::support::hooks::*;
use crate::support::load::*;
use crate::support::nginx;
use crate::support::*;
use teal::slot::{Slot, SlotState};
use teal::spec::{Inconclusive, ServiceSpec, VerifySpec};
use teal::state::{HistoryResult, Verdict};
use teal::wire::Outcome;
use tokio_util::sync::CancellationToken;

/// A demo service whose health check is `/healthz` (what a `flaky` version
/// keeps answering), with a verify window.
fn service(dir: &std::path::Path, verify: VerifySpec) -> ServiceSpec {
    let mut spec = demo_service("web", dir, 2);
    spec.health.path = "/healthz".into();
    spec.verify = Some(verify);
    spec
}

/// A window long enough that only a crossing can end it early.
fn strict(max_error_rate: f64) -> VerifySpec {
    VerifySpec {
        window: Duration::from_secs(120),
        max_error_rate,
        max_p99: None,
        min_requests: 20,
        on_inconclusive: Inconclusive::Promote,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_real_traffic_is_switched_back_and_every_failure_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = service(dir.path(), strict(0.05));
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let load = steady_load(d.addr, "/");
    finish_more(&load, 300, Duration::from_secs(60)).await;
    let before = load.snapshot();
    assert_eq!(before.failed(), 0, "{}", before.render_table());

    // Healthy on /healthz, 30% of real requests answer 500.
    let result = d.deploy(&spec, "flaky30-2.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result.message.starts_with("verify failed: error rate")
            && result
                .message
                .ends_with("production switched back to 1.0.0"),
        "{}",
        result.message
    );
    // By state, not by the clock: it ended failed long before the 120 s window.
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, HistoryResult::Failed);
    let verify = entry.verify.clone().expect("a verify record");
    assert_eq!(verify.verdict, Verdict::Failed, "{verify:?}");
    assert!(verify.watched_ms < 120_000, "{verify:?}");
    let at_rollback = load.snapshot();

    // Nothing fails once production is back.
    finish_more(&load, 1_000, Duration::from_secs(60)).await;
    let report = load.stop().await;
    assert_eq!(
        report.failed(),
        at_rollback.failed(),
        "failures after the rollback: {}",
        report.render_table()
    );

    // The only failures clients saw are the new slot's own 500s, and teal counted
    // exactly those (the window's final figures, after the bad slot drained).
    eprintln!("window: {verify:?}\nload:\n{}", report.render_table());
    assert!(report.errors.is_empty(), "{}", report.render_table());
    let five_hundreds = report.statuses.get(&500).copied().unwrap_or(0);
    assert_eq!(report.failed(), five_hundreds, "{}", report.render_table());
    assert!(five_hundreds > 0, "the flaky version was seen failing");
    assert_eq!(
        five_hundreds,
        verify.errors,
        "{verify:?}\n{}",
        report.render_table()
    );
    assert_eq!(verify.upstream_failures, 0);
    // Bounded by the budget: the error that crossed it, the ones the budget
    // allowed before, and at most one per request already in flight.
    let budget = (0.05 * verify.requests.max(20) as f64).floor() as u64;
    assert!(
        verify.errors <= budget + 1 + LOAD_CONCURRENCY,
        "{} errors over {} requests exceed the budget {budget} + 1 + {LOAD_CONCURRENCY} in flight",
        verify.errors,
        verify.requests
    );
    assert!(
        report
            .versions
            .keys()
            .all(|v| v == "1.0.0" || v == "flaky30-2.0.0"),
        "{}",
        report.render_table()
    );

    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Blue));
    assert_eq!(web.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(web.slots.green.state, SlotState::Stopped);
    assert!(web.slots.green.instances.is_empty());
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let steps = steps(&entry);
    assert_eq!(
        steps[steps.len() - 4..],
        ["verify", "switch_back", "drain", "retire"]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_version_passes_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut verify = strict(0.01);
    verify.window = Duration::from_secs(1);
    verify.max_p99 = Some(Duration::from_secs(5));
    let spec = service(dir.path(), verify);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let first = d.deploy(&spec, "1.0.0").await;
    first.assert_live();
    let entry = last_entry(&d, "web").await;
    assert_eq!(
        entry.verify.as_ref().map(|v| v.verdict),
        Some(Verdict::Skipped),
        "nothing to go back to on a first deploy"
    );

    let load = steady_load(d.addr, "/");
    finish_more(&load, 100, Duration::from_secs(60)).await;
    d.deploy(&spec, "2.0.0").await.assert_live();
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{}", report.render_table());

    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, HistoryResult::Live);
    let verify = entry.verify.clone().unwrap();
    assert_eq!(verify.verdict, Verdict::Passed, "{verify:?}");
    assert!(verify.requests >= 20 && verify.errors == 0, "{verify:?}");
    assert!(verify.p99_ms.is_some(), "{verify:?}");
    assert_eq!(
        steps(&entry)[4..],
        ["switch", "persist", "verify", "drain", "retire"]
    );
    let step = entry.timeline.iter().find(|s| s.step == "verify").unwrap();
    assert!(
        step.note.as_deref().unwrap().starts_with("passed: 0 of"),
        "{step:?}"
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_window_promotes_or_fails_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut verify = strict(0.01);
    verify.window = Duration::from_millis(300);
    let mut spec = service(dir.path(), verify);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    // No traffic at all: inconclusive, promoted by default.
    d.deploy(&spec, "2.0.0").await.assert_live();
    let verify = last_entry(&d, "web").await.verify.unwrap();
    assert_eq!(verify.verdict, Verdict::Inconclusive, "{verify:?}");
    assert!(
        verify
            .reason
            .unwrap()
            .contains("fewer than min_requests = 20")
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));

    // The same with on_inconclusive = "fail": back to 2.0.0.
    spec.verify.as_mut().unwrap().on_inconclusive = Inconclusive::Fail;
    let result = d.deploy(&spec, "3.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result.message.contains("inconclusive")
            && result
                .message
                .ends_with("production switched back to 2.0.0"),
        "{}",
        result.message
    );
    let entry = last_entry(&d, "web").await;
    assert_eq!(entry.result, HistoryResult::Failed);
    assert_eq!(entry.verify.unwrap().verdict, Verdict::Inconclusive);
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Green));
    assert_eq!(web.slots.blue.state, SlotState::Stopped);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_version_fails_on_its_p99() {
    let dir = tempfile::tempdir().unwrap();
    let mut verify = strict(0.01);
    verify.max_p99 = Some(Duration::from_millis(50));
    verify.min_requests = 5;
    let spec = service(dir.path(), verify);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let load = steady_load(d.addr, "/slow?ms=200");

    let result = d.deploy(&spec, "2.0.0").await;
    let report = load.stop().await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result.message.starts_with("verify failed: p99 ")
            && result.message.contains("(max 50.0ms)"),
        "{}",
        result.message
    );
    // Slow is not broken: no request failed.
    assert_eq!(report.failed(), 0, "{}", report.render_table());
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_slot_stays_warm_through_the_window_without_keep_previous() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = service(dir.path(), strict(0.05));
    spec.drain.keep_previous = false;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let blue = instance_ids(&d.status().await.services[0].slots.blue);
    let load = steady_load(d.addr, "/");

    let result = d.deploy(&spec, "flaky50-2.0.0").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    finish_more(&load, 500, Duration::from_secs(60)).await;
    let report = load.stop().await;
    assert!(report.errors.is_empty(), "{}", report.render_table());

    // Back on the very same 1.0.0 processes, which were never stopped.
    let web = &d.status().await.services[0];
    assert_eq!(web.active_slot, Some(Slot::Blue));
    assert_eq!(instance_ids(&web.slots.blue), blue);

    // A good version passes and only then is the old slot stopped.
    let mut quick = spec.clone();
    quick.verify.as_mut().unwrap().window = Duration::from_millis(200);
    d.deploy(&quick, "3.0.0").await.assert_live();
    let web = &d.status().await.services[0];
    assert_eq!(web.slots.blue.state, SlotState::Stopped);
    assert!(web.slots.blue.instances.is_empty());
    let entry = last_entry(&d, "web").await;
    let at = |name: &str| steps(&entry).iter().position(|s| s == name).unwrap();
    assert!(at("verify") < at("retire"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_window_the_previous_slot_is_standby_and_the_service_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = service(dir.path(), strict(0.05));
    spec.drain.keep_previous = false;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let req = deploy_request(&spec, "2.0.0");
    let stream = d.client.deploy(&req).await.expect("deploy accepted");
    let deploy = tokio::spawn(ActionResult::collect(stream));
    let in_window = eventually(Duration::from_secs(30), || async {
        d.status().await.services[0].active_slot == Some(Slot::Green)
    })
    .await;
    assert!(in_window, "2.0.0 went live");
    let web = &d.status().await.services[0];
    assert!(web.busy);
    assert_eq!(web.slots.green.state, SlotState::Live);
    assert_eq!(
        web.slots.blue.state,
        SlotState::Standby,
        "warm for the window"
    );
    assert_eq!(web.slots.blue.instances.len(), 2);
    match d.client.rollback("web", &Default::default()).await {
        Err(refused) => assert!(is_busy(&refused), "{refused}"),
        Ok(_) => panic!("a rollback during the window must be refused as busy"),
    }

    // Stopping the daemon ends the window: inconclusive, and the version stays.
    d.stop().await;
    let result = deploy.await.unwrap();
    result.assert_live();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_nginx_router_the_window_is_skipped_and_hooks_still_run() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = nginx::service("web", dir.path(), 1);
    spec.verify = Some(strict(0.01));
    spec.hooks.pre_switch = Some(bash("echo smoke $1", &["{preview_url}"]));
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let result = d.deploy(&spec, "2.0.0").await;
    result.assert_live();
    assert!(
        result
            .text()
            .contains("verify skipped: this router cannot watch traffic"),
        "{}",
        result.text()
    );
    let verify = last_entry(&d, "web").await.verify.unwrap();
    assert_eq!(verify.verdict, Verdict::Skipped);
    let preview = spec.preview.unwrap();
    assert!(
        result
            .text()
            .contains(&format!("pre_switch | smoke http://{preview}")),
        "{}",
        result.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    d.stop().await;
}

/// Sends broken requests on fresh connections until `stop` (at most 1,000,
/// one every 50 ms): an invalid chunk size, then a `Content-Length` body cut
/// short, in turn. Returns what each got back.
async fn hostile_client(addr: std::net::SocketAddr, stop: CancellationToken) -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    const BROKEN: [&[u8]; 2] = [
        b"POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 100\r\n\r\nonly ten b",
    ];
    let mut answers = Vec::new();
    for round in 0..1_000 {
        if stop.is_cancelled() {
            break;
        }
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(BROKEN[round % 2]).await;
        let _ = stream.shutdown().await;
        answers.push(crate::support::proxy::read_to_close(&mut stream).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answers
}

/// Issue 15: one client's broken requests must not fail a deploy. A client
/// sends invalid chunk sizes and bodies cut short all through a deploy whose
/// window tolerates no error at all (before, each was a 502 counted as an
/// upstream failure: "verify failed: error rate 25% over 4 request(s)").
/// Each gets a 400 or a close, counts as a client error of the slot it
/// reached, and the window passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_client_requests_during_the_window_do_not_fail_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut verify = strict(0.01);
    verify.window = Duration::from_secs(2);
    let spec = service(dir.path(), verify);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let load = steady_load(d.addr, "/");
    finish_more(&load, 100, Duration::from_secs(60)).await;

    let stop = CancellationToken::new();
    let hostile = tokio::spawn(hostile_client(d.addr, stop.clone()));
    let result = d.deploy(&spec, "2.0.0").await;
    stop.cancel();
    let answers = hostile.await.unwrap();
    let report = load.stop().await;
    result.assert_live();
    assert_eq!(report.failed(), 0, "{}", report.render_table());

    let entry = last_entry(&d, "web").await;
    let verify = entry.verify.clone().unwrap();
    assert_eq!(verify.verdict, Verdict::Passed, "{verify:?}");
    assert_eq!(
        (verify.errors, verify.upstream_failures),
        (0, 0),
        "{verify:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.is_empty() || a.starts_with("HTTP/1.1 400")),
        "{answers:?}"
    );
    // The broken requests reached the new slot during its window: client
    // errors, not upstream failures.
    let green = d.daemon.deployer().router().stats("web", Slot::Green);
    assert!(
        green.client_errors > 0,
        "{green:?} after {} broken",
        answers.len()
    );
    assert_eq!(green.upstream_failures, 0, "{green:?}");
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    d.stop().await;
}
