//! TESTING.md's zero-downtime story (`support::zero_downtime`) with containers
//! on the real engine: every switch also changes the image (two builds
//! alternate), and besides the broken version an image that crashes at start
//! fails too, with production untouched. The test fails on a single failed
//! request.

use std::time::Duration;

use crate::support::docker::*;
use crate::support::zero_downtime::{FailingDeploy, Story};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_across_many_container_switches() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-zero";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), APP_1, 2);
    spec.drain.timeout = Duration::from_secs(3);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;

    let mut story = Story::new(spec);
    // Alternate builds too, so every switch also changes the image ID.
    story.version = |spec, n| {
        let mut next = spec.clone();
        docker_spec(&mut next).image = if n % 2 == 0 { APP_1 } else { APP_2 }.into();
        next
    };
    story.failing.push(FailingDeploy {
        after: 11,
        version: "crash-11",
        spec: |mut crash| {
            docker_spec(&mut crash).image = CRASH.into();
            docker_spec(&mut crash).command = None;
            crash
        },
        message: "exit code 2",
    });
    let run = story.run(&d).await;
    d.stop().await;
    remove_containers(&docker, name).await;
    run.assert_zero_failed_requests();
}
