//! A live container killed under load (`docker kill`, through the engine API): the
//! other instance carries the traffic with zero failed requests, and teal brings
//! the killed container back (the engine counts a kill as a manual stop and would
//! leave it down) at the same address.

use std::time::Duration;

use crate::support::docker::*;
use crate::support::load::zero_drop;
use crate::support::*;
use teal::load::{Load, LoadSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_live_container_costs_no_request_and_comes_back() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-kill";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = docker_service(name, dir.path(), APP_1, 2);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1").await.assert_live();
    let before = d.status().await.services[0].slots.blue.instances.clone();

    let load = Load::start(LoadSpec {
        max_duration: Duration::from_secs(120),
        ..zero_drop(d.addr)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = identity(&docker, "dkt-kill-blue-0").await;
    docker
        .kill_container(
            "dkt-kill-blue-0",
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("docker kill");

    // It comes back: running again, restarted once, healthy, same address.
    let back = eventually(Duration::from_secs(30), || async {
        let st = d.status().await;
        let i = &st.services[0].slots.blue.instances[0];
        i.healthy && i.restarts >= 1
    })
    .await;
    assert!(
        back,
        "the killed container came back: {:?}",
        d.status().await
    );
    assert_ne!(
        identity(&docker, "dkt-kill-blue-0").await.1,
        killed.1,
        "started again"
    );
    // Some traffic on both instances again before the load stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    let after = d.status().await.services[0].slots.blue.instances.clone();
    assert_eq!(
        after[0].addr, before[0].addr,
        "same address after the restart"
    );
    assert_eq!(after[0].id, "dkt-kill-blue-0");
    d.stop().await;
    remove_containers(&docker, name).await;
    eprintln!("{}", report.render_table());
    assert!(report.sent > 500, "the load ran: {report:?}");
    assert_eq!(report.failed(), 0, "failed requests: {report:?}");
}
