//! `run_in = "image"` hooks against the real Docker engine: the hook runs as a
//! one-off container of the new version's image with the hook's environment, its
//! output streamed; a failing one aborts the deploy with production untouched; one
//! past its timeout is stopped; and no hook container is left behind.

use std::time::Duration;

use crate::support::docker::*;
use crate::support::hooks::hook_lines;
use crate::support::*;
use teal::spec::{HookPlace, HookSpec};
use teal::wire::Outcome;

fn in_image(command: &[&str], timeout: Duration) -> HookSpec {
    HookSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        timeout,
        run_in: HookPlace::Image,
    }
}

async fn hook_containers(docker: &bollard::Docker, service: &str) -> usize {
    containers_labelled(docker, &format!("teal.hook-of={service}"))
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_in_the_new_image_and_leave_nothing_behind() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-hooks";
    remove_containers(&docker, name).await;
    // A network of its own: the hook containers run on the service's network.
    let network = "teal-test-hooks";
    create_network(&docker, network).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), APP_1, 1);
    docker_spec(&mut spec).network = Some(network.into());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1").await.assert_live();

    // `/teal` exists only inside the image. The demo app's help shows the
    // variables it reads, with the values the hook container got.
    spec.hooks.pre_deploy = Some(in_image(
        &["/teal", "demo-app", "--help"],
        Duration::from_secs(60),
    ));
    let result = d.deploy(&spec, "2").await;
    result.assert_live();
    let lines = hook_lines(&result, "pre_deploy").join("\n");
    assert!(lines.contains("TEAL_VERSION=2"), "{lines}");
    assert!(
        result.text().contains("in the image of 2"),
        "{}",
        result.text()
    );

    // A failing hook in the image aborts with production untouched.
    spec.hooks.pre_deploy = Some(in_image(
        &["/teal", "no-such-step"],
        Duration::from_secs(60),
    ));
    let failed = d.deploy(&spec, "3").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert!(
        failed
            .message
            .contains("pre_deploy hook failed: exit code 2")
            && failed.message.ends_with("production untouched"),
        "{}",
        failed.message
    );
    assert!(
        hook_lines(&failed, "pre_deploy")
            .iter()
            .any(|l| l.contains("no-such-step")),
        "{}",
        failed.text()
    );

    // One that never ends is stopped at its timeout.
    spec.hooks.pre_deploy = None;
    spec.hooks.pre_switch = Some(in_image(
        &["/teal", "demo-app", "--port", "9"],
        Duration::from_secs(2),
    ));
    let stuck = d.deploy(&spec, "3").await;
    assert_eq!(stuck.outcome, Outcome::Failed, "{}", stuck.text());
    assert!(
        stuck
            .message
            .contains("pre_switch hook failed: timed out after 2s"),
        "{}",
        stuck.message
    );

    assert_eq!(serving(d.addr).await.as_deref(), Some("2"));
    assert_eq!(
        hook_containers(&docker, name).await,
        0,
        "hook containers left"
    );
    d.stop().await;
    remove_containers(&docker, name).await;
    let _ = docker.remove_network(network).await;
}
