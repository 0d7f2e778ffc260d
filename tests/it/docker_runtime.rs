//! The docker runtime against the real engine: names, labels, ports, status,
//! history and logs; failures (a crash at start, a failing HEALTHCHECK) that leave
//! production untouched; image identity across a moved tag, and pruning; a daemon
//! restart that adopts live containers without restarting them; reconcile.
//!
//! Each test uses its own service name and removes its containers at both ends.

use std::time::Duration;

use crate::support::docker::*;
use crate::support::*;
use http_body_util::BodyExt;
use teal::slot::{Slot, SlotState};
use teal::wire::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_named_labelled_published_on_loopback_and_adopted_after_a_restart() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-basic";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), "teal-test/app:{version}", 2);
    spec.env.insert("EXTRA".into(), "yes".into());
    let cfg = config(dir.path(), vec![]);
    let d = TestDaemon::start(&cfg).await;

    d.deploy(&spec, "1").await.assert_live();
    let (status, body) = get(d.addr, "/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(version_of(&body).as_deref(), Some("1"));
    assert_eq!(greeting_of(&body).as_deref(), Some("build-1"));

    let result = d.deploy(&spec, "2").await;
    result.assert_live();
    assert!(
        result.text().contains("runs image sha256:"),
        "{}",
        result.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("2"));
    assert_eq!(
        container_names(&docker, name).await,
        [
            "dkt-basic-blue-0",
            "dkt-basic-blue-1",
            "dkt-basic-green-0",
            "dkt-basic-green-1"
        ]
    );
    let id_2 = image_id(&docker, APP_2).await;
    let live = docker
        .inspect_container("dkt-basic-green-1", None)
        .await
        .unwrap();
    let labels = live.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["teal.service"], name);
    assert_eq!(labels["teal.slot"], "green");
    assert_eq!(labels["teal.version"], "2");
    assert_eq!(labels["teal.image-id"], id_2);
    assert!(labels["teal.deploy-id"].starts_with('d'));
    assert_eq!(
        live.image.as_deref(),
        Some(id_2.as_str()),
        "runs by image ID"
    );
    let env = live.config.as_ref().unwrap().env.clone().unwrap();
    for var in [
        "EXTRA=yes",
        "PORT=8080",
        "TEAL_VERSION=2",
        "TEAL_SLOT=green",
        "TEAL_INSTANCE=1",
    ] {
        assert!(env.iter().any(|e| e == var), "{var} in {env:?}");
    }
    let bindings = live.host_config.unwrap().port_bindings.unwrap();
    let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));

    // Status and history name the containers and image IDs.
    let st = d.status().await;
    let svc = &st.services[0];
    assert_eq!(svc.runtime, "docker");
    assert_eq!(svc.slots.green.image_id.as_deref(), Some(id_2.as_str()));
    let instance = &svc.slots.green.instances[1];
    assert_eq!(instance.id, "dkt-basic-green-1");
    assert_eq!(instance.container.as_deref(), Some("dkt-basic-green-1"));
    assert_eq!(instance.image_id.as_deref(), Some(id_2.as_str()));
    assert!(instance.addr.ip().is_loopback());
    assert_eq!(
        instance.addr.port().to_string(),
        binding.host_port.clone().unwrap()
    );
    let history = d.client.history(name).await.unwrap();
    let last = history.entries.last().unwrap();
    assert_eq!(last.image_id.as_deref(), Some(id_2.as_str()));
    assert_eq!(last.instances, ["dkt-basic-green-0", "dkt-basic-green-1"]);

    // Logs come from the engine.
    let body = d
        .client
        .logs(name, &teal::wire::LogPick::Slot(Slot::Green), false)
        .await
        .unwrap();
    let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("[0] uptimer 2 listening"), "{text}");
    assert!(text.contains("[1] uptimer 2 listening"), "{text}");
    // --previous: the other slot's containers; --version: the kept containers
    // that run it; a version no container runs is a clear error.
    let read = async |pick: teal::wire::LogPick| {
        let body = d.client.logs(name, &pick, false).await?;
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        Ok::<_, teal::api::client::ClientError>(String::from_utf8(bytes).unwrap())
    };
    let previous = read(teal::wire::LogPick::Previous).await.unwrap();
    assert!(previous.contains("[0] uptimer 1 listening"), "{previous}");
    assert!(!previous.contains("uptimer 2"), "{previous}");
    let one = read(teal::wire::LogPick::Version("1".into()))
        .await
        .unwrap();
    assert!(one.contains("[1] uptimer 1 listening"), "{one}");
    let gone = read(teal::wire::LogPick::Version("0.9".into())).await;
    assert!(
        format!("{gone:?}").contains("teal keeps only the containers of the two slots"),
        "{gone:?}"
    );

    // A graceful daemon stop lets go of the live containers (they keep serving)
    // and removes the standby; the next daemon adopts them without a restart.
    let before = identity(&docker, "dkt-basic-green-1").await;
    let direct = instance.addr;
    d.stop_keeping_instances().await;
    assert_eq!(
        container_names(&docker, name).await,
        ["dkt-basic-green-0", "dkt-basic-green-1"]
    );
    let (status, body) = get(direct, "/").await;
    assert_eq!((status, version_of(&body).as_deref()), (200, Some("2")));

    // One live container is removed while no daemon runs: the next one starts it again.
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    docker
        .remove_container("dkt-basic-green-0", Some(options))
        .await
        .unwrap();
    let d = TestDaemon::start(&cfg).await;
    assert_eq!(serving(d.addr).await.as_deref(), Some("2"));
    assert_eq!(
        identity(&docker, "dkt-basic-green-1").await,
        before,
        "adopted, not restarted"
    );
    assert_ne!(
        identity(&docker, "dkt-basic-green-0").await.0,
        "",
        "started again"
    );
    let st = d.status().await;
    assert_eq!(st.services[0].slots.green.state, SlotState::Live);
    assert_eq!(st.services[0].slots.green.instances[1].addr, direct);
    assert!(
        st.services[0]
            .slots
            .green
            .instances
            .iter()
            .all(|i| i.healthy)
    );
    // Followed logs stream from the engine.
    let mut follow = d
        .client
        .logs(name, &teal::wire::LogPick::Live, true)
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), follow.frame())
        .await
        .expect("followed logs answer")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned();
    assert!(text.contains("listening"), "{text}");
    drop(follow);
    // And rollback still works: the blue slot is gone, so it redeploys 1.
    d.rollback(name).await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1"));
    d.stop().await;
    remove_containers(&docker, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_start_fails_with_the_exit_code_and_last_output() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-crash";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = docker_service(name, dir.path(), APP_1, 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1").await.assert_live();

    let mut crash = spec.clone();
    docker_spec(&mut crash).image = CRASH.into();
    docker_spec(&mut crash).command = None;
    let failed = d.deploy(&crash, "2").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert!(
        failed.message.contains("dkt-crash-green-0"),
        "{}",
        failed.message
    );
    assert!(failed.message.contains("exit code 2"), "{}", failed.message);
    assert!(
        failed.message.contains("unrecognized subcommand"),
        "the last output is in the error: {}",
        failed.message
    );
    assert!(
        failed.message.contains("production untouched"),
        "{}",
        failed.message
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1"));
    assert_eq!(container_names(&docker, name).await, ["dkt-crash-blue-0"]);
    d.stop().await;
    remove_containers(&docker, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_healthcheck_must_pass_too() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-hc";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = docker_service(name, dir.path(), HEALTHY, 1);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let ok = d.deploy(&spec, "1").await;
    ok.assert_live();
    assert!(ok.text().contains("HEALTHCHECK"), "{}", ok.text());
    let health = docker
        .inspect_container("dkt-hc-blue-0", None)
        .await
        .unwrap()
        .state
        .unwrap()
        .health
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        health.to_string(),
        "healthy",
        "live only once the engine said healthy"
    );

    // HTTP answers 200, but the image's own check fails: the deploy must fail.
    let mut bad = spec.clone();
    docker_spec(&mut bad).image = UNHEALTHY.into();
    bad.health.deadline = Duration::from_secs(6);
    let failed = d.deploy(&bad, "2").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert!(
        failed.message.contains("docker health is"),
        "{}",
        failed.message
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1"));
    d.stop().await;
    remove_containers(&docker, name).await;
}

/// Deploy `app:latest`, rebuild and retag `latest`, deploy, roll back: the first
/// image ID runs again (the previous slot is gone, so rollback redeploys it by ID).
/// Then pruning removes the untagged image nothing can roll back to, and keeps the
/// one that history still needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_runs_the_recorded_image_after_latest_moved_and_prune_keeps_it() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-ident";
    let repo = "teal-test/ident";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), &format!("{repo}:latest"), 1);
    spec.drain.keep_previous = false;
    docker_spec(&mut spec).keep_images = 1;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;

    let rebuild = |n: u32| {
        let docker = docker.clone();
        async move {
            let dockerfile = format!("FROM {APP_1}\nENV GREETING=ident-{n}\n");
            build(&docker, &format!("{repo}:latest"), &dockerfile, &[]).await;
            image_id(&docker, &format!("{repo}:latest")).await
        }
    };
    let first = rebuild(1).await;
    d.deploy(&spec, "one").await.assert_live();
    let second = rebuild(2).await;
    assert_ne!(first, second);
    d.deploy(&spec, "two").await.assert_live();
    let (_, body) = get(d.addr, "/").await;
    assert_eq!(greeting_of(&body).as_deref(), Some("ident-2"));
    assert!(
        docker.inspect_image(&first).await.is_ok(),
        "the previous image survives pruning although untagged"
    );

    let back = d.rollback(name).await;
    back.assert_live();
    let (_, body) = get(d.addr, "/").await;
    assert_eq!(version_of(&body).as_deref(), Some("one"));
    assert_eq!(
        greeting_of(&body).as_deref(),
        Some("ident-1"),
        "the first image runs again"
    );
    let st = d.status().await;
    let live = st.services[0].active_slot.unwrap();
    let slot = if live == Slot::Blue {
        &st.services[0].slots.blue
    } else {
        &st.services[0].slots.green
    };
    assert_eq!(slot.image_id.as_deref(), Some(first.as_str()));

    // A third build goes live: the second image is untagged, outside the window
    // (keep_images = 1) and not the previous version's: pruned. The first one is the
    // previous version's image now: kept.
    let third = rebuild(3).await;
    let deployed = d.deploy(&spec, "three").await;
    deployed.assert_live();
    assert!(
        deployed.text().contains("pruned 1 image"),
        "{}",
        deployed.text()
    );
    assert!(
        docker.inspect_image(&second).await.is_err(),
        "second image pruned"
    );
    assert!(
        docker.inspect_image(&first).await.is_ok(),
        "rollback target kept"
    );
    assert!(docker.inspect_image(&third).await.is_ok());

    d.stop().await;
    remove_containers(&docker, name).await;
    for id in [first, third] {
        let _ = docker
            .remove_image(
                &id,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_removes_leftover_containers_first() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-recon";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = docker_service(name, dir.path(), APP_1, 1);
    // A leftover: a labelled container of this service this daemon does not know,
    // started by another daemon (its own state dir) that is gone.
    let other = tempfile::tempdir().unwrap();
    let stray = TestDaemon::start(&config(other.path(), vec![])).await;
    stray.deploy(&spec, "0").await.assert_live();
    stray.stop_keeping_instances().await;
    assert_eq!(container_names(&docker, name).await, ["dkt-recon-blue-0"]);

    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let result = d.deploy(&spec, "1").await;
    result.assert_live();
    assert!(
        result
            .text()
            .contains("removed leftover container dkt-recon-blue-0"),
        "{}",
        result.text()
    );
    assert_eq!(serving(d.addr).await.as_deref(), Some("1"));
    assert_eq!(container_names(&docker, name).await, ["dkt-recon-blue-0"]);
    d.stop().await;
    remove_containers(&docker, name).await;
}

/// `network`, `volumes`, `restart`, `log_driver` and `limits` reach the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_docker_setting_reaches_the_engine() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-keys";
    let network = "teal-test-net";
    remove_containers(&docker, name).await;
    create_network(&docker, network).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), APP_1, 1);
    let d_spec = docker_spec(&mut spec);
    d_spec.network = Some(network.into());
    d_spec.volumes = vec![format!("{}:/data:ro", dir.path().display())];
    d_spec.restart = "unless-stopped".into();
    d_spec.log_driver = Some("local".into());
    d_spec.limits.memory = Some(64 << 20);
    d_spec.limits.cpus = Some(0.5);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "1").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1"));

    let info = docker
        .inspect_container("dkt-keys-blue-0", None)
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some(network));
    assert!(
        info.network_settings
            .unwrap()
            .networks
            .unwrap()
            .contains_key(network)
    );
    assert_eq!(
        host.binds.unwrap(),
        [format!("{}:/data:ro", dir.path().display())]
    );
    assert_eq!(
        host.restart_policy.unwrap().name.unwrap().to_string(),
        "unless-stopped"
    );
    assert_eq!(host.log_config.unwrap().typ.as_deref(), Some("local"));
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    // Logs still come through with the local driver.
    let body = d
        .client
        .logs(name, &teal::wire::LogPick::Live, false)
        .await
        .unwrap();
    let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("listening"), "{text}");

    d.stop().await;
    remove_containers(&docker, name).await;
    let _ = docker.remove_network(network).await;
}

/// `teal check` asks the real engine: the image of the version to deploy is
/// there (with its ID), a version it lacks is pulled at deploy (no problem),
/// and an engine that does not answer is a problem that fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_asks_the_engine_for_the_image() {
    let Some(docker) = engine().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let write = |version: &str| {
        std::fs::write(
            dir.path().join("teal.toml"),
            format!(
                "[services.shop]\nruntime = \"docker\"\nimage = \"teal-test/app:{{version}}\"\nport = {APP_PORT}\nversion = \"{version}\"\n"
            ),
        )
        .unwrap();
    };
    let check = |docker_host: Option<&str>| {
        let mut cmd = crate::support::served::teal(dir.path());
        cmd.arg("check");
        if let Some(host) = docker_host {
            cmd.env("DOCKER_HOST", host);
        }
        cmd.output().unwrap()
    };
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    // `teal check` succeeds and says `line`.
    let passes_saying = |line: &str| {
        let out = check(None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text(&out).contains(line), "{}", text(&out));
    };

    write("1");
    let id = image_id(&docker, APP_1).await;
    let short = id.trim_start_matches("sha256:")[..12].to_owned();
    passes_saying(&format!(
        "image: teal-test/app:1 ({short}), on this machine"
    ));
    write("no-such-version");
    passes_saying("teal-test/app:no-such-version is not on this machine: teal pulls it at deploy");

    let nowhere = dir.path().join("no-engine.sock");
    let out = check(Some(&format!("unix://{}", nowhere.display())));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "problem: the Docker engine at unix://{} does not answer",
            nowhere.display()
        )),
        "{}",
        text(&out)
    );
}
