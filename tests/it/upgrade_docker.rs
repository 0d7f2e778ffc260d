//! `teal serve --upgrade` with the docker runtime and the builtin proxy, the
//! real binary and the real engine, under load (keep-alive and new-connection
//! clients, no retries): the new daemon takes the listening sockets and the
//! client connections, adopts the live containers (same container ids, no
//! restart), and the old one removes the standby it kept for rollback as it
//! leaves. Deploys and rollbacks through the new daemon work, with no failed
//! request and no keep-alive connection closed.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;

use crate::support::docker::*;
use crate::support::load::{finish_more, zero_drop};
use crate::support::served::{
    Served, blocking, listen_addr, logs, run_ok, stop_clean, teal_ok, terminated, upgraded,
};
use crate::support::*;
use teal::load::Load;

const SERVICE: &str = "dkt-upgrade";

/// `dir/teal.toml`: the demo app's `image`, 2 containers per slot.
fn write_config(dir: &Path, image: &str) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"

[services.{SERVICE}]
runtime = "docker"
image = "{image}"
port = {APP_PORT}
command = ["--boot-delay", "200ms"]
instances = 2
version = "1.0.0"

[services.{SERVICE}.health]
interval = "50ms"
deadline = "20s"

[services.{SERVICE}.drain]
timeout = "3s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// Ids of the service's containers (running or not) in `slot`, or in any slot.
async fn container_ids(docker: &Docker, slot: Option<&str>) -> BTreeSet<String> {
    containers(docker, SERVICE)
        .await
        .into_iter()
        .filter(|c| {
            slot.is_none_or(|slot| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get("teal.slot"))
                    .is_some_and(|s| s == slot)
            })
        })
        .filter_map(|c| c.id)
        .collect()
}

/// The active slot, from `teal status --json`.
fn active_slot(dir: &Path) -> String {
    let out = run_ok(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["services"][0]["active_slot"]
        .as_str()
        .expect("a live slot")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_adopts_the_containers_and_loses_no_request() {
    let Some(docker) = engine().await else { return };
    remove_containers(&docker, SERVICE).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    write_config(&dir, APP_1);

    // 2.0.0 live, 1.0.0 kept warm for rollback.
    let (old, addr) = blocking({
        let dir = dir.clone();
        move || {
            let daemon = Served::serve(&dir);
            run_ok(&dir, &["deploy", SERVICE, "--version", "1.0.0"]);
            run_ok(&dir, &["deploy", SERVICE, "--version", "2.0.0"]);
            (daemon, listen_addr(&dir))
        }
    })
    .await;
    let live_slot = active_slot(&dir);
    let live = container_ids(&docker, Some(&live_slot)).await;
    assert_eq!(live.len(), 2, "{live:?}");
    assert_eq!(
        container_ids(&docker, None).await.len(),
        4,
        "and the standby"
    );

    let spec = zero_drop(addr);
    let load = Load::start(spec.clone());
    // A slow request keeps the old daemon busy for a while after the new one
    // serves: long enough for its container watchers to notice (every 250 ms)
    // anything removed under them.
    let slow = tokio::spawn(get(addr, "/slow?ms=2000"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = upgraded(&dir, old).await;
    assert_eq!(active_slot(&dir), live_slot);
    assert_eq!(
        container_ids(&docker, Some(&live_slot)).await,
        live,
        "the same containers, adopted"
    );
    // The standby went with the old daemon, and nothing brought it back.
    let only_live = eventually(Duration::from_secs(30), async || {
        container_ids(&docker, None).await == live
    })
    .await;
    assert!(
        only_live,
        "{:?}\n{}",
        container_names(&docker, SERVICE).await,
        logs(&dir)
    );
    let (status, body) = get(addr, "/").await;
    assert_eq!((status, version_of(&body).as_deref()), (200, Some("2.0.0")));
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "the slow request spanning the upgrade: {body}");
    // Only the old daemon stopped its standby: the new one did not remove it
    // under the old one's watchers, which would have created it again.
    let log = logs(&dir);
    for fight in ["vanished", "removed leftover"] {
        assert!(!log.contains(fight), "{fight}:\n{log}");
    }
    finish_more(&load, 200, Duration::from_secs(60)).await;

    // A deploy of another build through the new daemon, then an instant
    // rollback to the adopted containers.
    write_config(&dir, APP_2);
    teal_ok(&dir, &["deploy", SERVICE, "--version", "3.0.0"]).await;
    let (_, body) = get(addr, "/").await;
    assert_eq!(version_of(&body).as_deref(), Some("3.0.0"));
    assert_eq!(greeting_of(&body).as_deref(), Some("build-2"));
    finish_more(&load, 200, Duration::from_secs(60)).await;
    teal_ok(&dir, &["rollback", SERVICE]).await;
    let (_, body) = get(addr, "/").await;
    assert_eq!(version_of(&body).as_deref(), Some("2.0.0"));
    assert_eq!(greeting_of(&body).as_deref(), Some("build-1"));
    assert_eq!(
        container_ids(&docker, Some(&live_slot)).await,
        live,
        "the rollback went back to the adopted containers"
    );
    finish_more(&load, 200, Duration::from_secs(60)).await;

    stop_clean(load, &dir, Some(spec.keepalive_connections)).await;

    terminated(next).await;
    remove_containers(&docker, SERVICE).await;
}
