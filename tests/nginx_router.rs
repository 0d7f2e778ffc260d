//! teal with `router = "nginx"` (managed mode) against the real nginx: deploys,
//! Host routing, preview vs production, promote, rollback, status and history, a
//! config nginx rejects, a reload nginx refuses, and the master's lifecycle.

mod common;

use std::time::Duration;

use common::*;
use teal::api::wire::Outcome;
use teal::slot::{Slot, SlotState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_switch_and_rollback_through_nginx() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 2);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;

    // Before any deploy, nginx answers 503 for everything.
    assert_eq!(get(d.addr, "/").await.0, 503);

    d.deploy(&spec, "1.0.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.deploy(&spec, "1.1.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.1.0"));

    // The preview port serves the standby (the previous version, kept warm).
    let preview = spec.preview.unwrap();
    assert_eq!(serving(preview).await.as_deref(), Some("1.0.0"));

    let status = d.status().await;
    let web = &status.services[0];
    assert_eq!(web.active_version.as_deref(), Some("1.1.0"));
    assert_eq!(web.active_slot, Some(Slot::Green));
    assert_eq!(web.slots.blue.state, SlotState::Standby);
    assert_eq!(web.preview, Some(preview));
    assert_eq!(status.listen[0], d.addr);

    d.rollback("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    assert_eq!(serving(preview).await.as_deref(), Some("1.1.0"));

    let history = d.client.history("web").await.unwrap();
    assert_eq!(history.entries.len(), 3, "{history:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promote_stages_on_preview_until_promoted() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let staged = d.deploy_with(&spec, "2.0.0", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());
    let preview = spec.preview.unwrap();
    assert_eq!(serving(preview).await.as_deref(), Some("2.0.0"));
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));

    d.promote("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    assert_eq!(serving(preview).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_never_reaches_nginx_production() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    spec.health.deadline = Duration::from_secs(2);
    let failed = d.deploy(&spec, "broken-1.1.0").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}
