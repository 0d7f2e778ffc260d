//! The daemon side of multi-host deploys, without ssh: the persisted deploy lock
//! (owner, time, lease, force) and discarding a staged slot.

use crate::support::*;
use teal::api::client::ClientError;
use teal::slot::SlotState;
use teal::wire::{DeployRequest, DiscardRequest, ErrorKind, LockRequest, Outcome};

fn lock_request(owner: &str, force: bool) -> LockRequest {
    LockRequest {
        owner: owner.into(),
        reason: "teal deploy web 2.0.0".into(),
        force,
        ttl_ms: None,
    }
}

fn api_kind(result: Result<impl std::fmt::Debug, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Api(e)) => (e.kind, e.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_service_refuses_actions_without_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let grant = d
        .client
        .lock("web", &lock_request("alice@laptop", false))
        .await
        .unwrap();
    assert_eq!(grant.lock.owner, "alice@laptop");
    assert!(!grant.lock.lease.is_empty() && grant.broke.is_none());

    // Anyone without the lease is refused at once, with owner and time.
    let req = DeployRequest {
        spec: spec.clone(),
        version: "2.0.0".into(),
        image: None,
        promote: true,
        secrets: Default::default(),
    };
    let (kind, message) = api_kind(d.client.deploy(&req).await.map(|_| ()));
    assert_eq!(kind, ErrorKind::Busy);
    assert!(
        message.contains("locked by alice@laptop since"),
        "{message}"
    );
    assert!(message.contains("teal deploy web 2.0.0"), "{message}");
    assert!(message.contains("--force-unlock"), "{message}");
    let (kind, _) = api_kind(
        d.client
            .rollback("web", &Default::default())
            .await
            .map(|_| ()),
    );
    assert_eq!(kind, ErrorKind::Busy);
    let (kind, _) = api_kind(d.client.lock("web", &lock_request("bob@desk", false)).await);
    assert_eq!(kind, ErrorKind::Busy);
    let (kind, _) = api_kind(d.client.unlock("web", false).await);
    assert_eq!(kind, ErrorKind::Busy);
    let status = d.status().await;
    let shown = status.services[0]
        .lock
        .as_ref()
        .expect("status shows the lock");
    assert_eq!(shown.owner, "alice@laptop");
    assert!(shown.lease.is_empty(), "status never shows the lease");
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));

    // The holder acts with its lease.
    let alice = d.client.clone().with_lease(Some(grant.lock.lease.clone()));
    let stream = alice.deploy(&req).await.expect("the holder may deploy");
    ActionResult::collect(stream).await.assert_live();

    // The lock survives a daemon restart: it is state on the host.
    d.stop().await;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let (kind, _) = api_kind(d.client.deploy(&req).await.map(|_| ()));
    assert_eq!(kind, ErrorKind::Busy);

    // --force-unlock: bob breaks alice's lock and is told whose it was.
    let bob = d
        .client
        .lock("web", &lock_request("bob@desk", true))
        .await
        .unwrap();
    assert_eq!(
        bob.broke.as_ref().map(|l| l.owner.as_str()),
        Some("alice@laptop")
    );
    let bob_client = d.client.clone().with_lease(Some(bob.lock.lease.clone()));
    let released = bob_client.unlock("web", false).await.unwrap();
    assert_eq!(released.released.map(|l| l.owner), Some("bob@desk".into()));
    assert!(d.status().await.services[0].lock.is_none());
    assert!(
        d.client
            .unlock("web", false)
            .await
            .unwrap()
            .released
            .is_none()
    );
    d.deploy(&spec, "3.0.0").await.assert_live();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_stops_the_staged_slot_and_production_never_moves() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let staged = d.deploy_with(&spec, "2.0.0", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());
    let preview = d.status().await.services[0].preview.expect("preview bound");
    assert_eq!(serving(preview).await.as_deref(), Some("2.0.0"));

    let req = DiscardRequest {
        reason: Some("host b failed to stage".into()),
    };
    let result = ActionResult::collect(d.client.discard("web", &req).await.unwrap()).await;
    assert_eq!(result.outcome, Outcome::Discarded, "{}", result.text());
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    let web = &d.status().await.services[0];
    assert_eq!(web.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(web.slots.green.state, SlotState::Stopped);
    assert!(web.slots.green.instances.is_empty());
    assert_ne!(serving(preview).await.as_deref(), Some("2.0.0"));
    let history = d.client.history("web").await.unwrap();
    let last = history.entries.last().unwrap();
    assert_eq!(serde_json::to_value(last.action).unwrap(), "discard");
    assert_eq!(serde_json::to_value(last.result).unwrap(), "discarded");
    assert_eq!(last.version, "2.0.0");
    assert_eq!(last.reason.as_deref(), Some("host b failed to stage"));

    // Nothing staged any more: nothing to discard.
    let again = ActionResult::collect(d.client.discard("web", &req).await.unwrap()).await;
    assert_eq!(again.outcome, Outcome::Failed);
    assert!(
        again.message.contains("no staged slot"),
        "{}",
        again.message
    );
    // And the next deploy works as usual.
    d.deploy(&spec, "2.0.1").await.assert_live();
    d.stop().await;
}
