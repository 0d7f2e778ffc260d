//! `teal serve` (the real binary, a child process) killed with SIGKILL in the
//! middle of a container deploy, then started again. The live containers outlive
//! the daemon and serve throughout (load straight at one of them never fails); the
//! proxy is down only for the restart gap, which is measured and printed; the new
//! daemon adopts the live slot without restarting it, removes the interrupted
//! deploy's containers, and the state is consistent enough to deploy again.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::docker::*;
use crate::support::load::{assert_clean, restart_load};
use crate::support::*;
use teal::api::client::Client;
use teal::slot::{Slot, SlotState};
use tokio::process::{Child, Command};

/// Starts `teal serve` on `dir/teal.toml`, output appended to `dir/serve.log`.
fn serve(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    Command::new(TEAL)
        .args(["serve", "--config"])
        .arg(dir.join("teal.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn teal serve")
}

/// The status of one GET on a fresh connection, or None when nothing answers.
async fn answers(addr: SocketAddr) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header(http::header::HOST, "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    Some(sender.send_request(req).await.ok()?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_deploy_restarts_clean_with_production_served_throughout() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-sigkill";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        dir.path().join("teal.toml"),
        format!("state_dir = \"state\"\n\n[proxy]\nlisten = \"{listen}\"\n"),
    )
    .unwrap();
    let client = Client::new(&dir.path().join("state/teal.sock"));
    let up = |client: Client| async move {
        eventually(Duration::from_secs(30), || {
            let client = client.clone();
            async move { client.status(None).await.is_ok() }
        })
        .await
    };

    let mut daemon = serve(dir.path());
    assert!(up(client.clone()).await, "teal serve came up");
    let spec = docker_service(name, dir.path(), APP_1, 2);
    let result =
        ActionResult::collect(client.deploy(&deploy_request(&spec, "v1")).await.unwrap()).await;
    result.assert_live();
    let live = client.status(None).await.unwrap().services[0]
        .slots
        .blue
        .clone();
    let blue = [
        identity(&docker, "dkt-sigkill-blue-0").await,
        identity(&docker, "dkt-sigkill-blue-1").await,
    ];

    // Production through the proxy, and straight at a live container.
    let proxied = restart_load(listen, 6, 2);
    let direct = restart_load(live.instances[0].addr, 2, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A deploy whose new slot takes long to boot: it is in its health gate when
    // the daemon dies.
    let mut slow = spec.clone();
    docker_spec(&mut slow).command = Some(vec!["--boot-delay".into(), "60s".into()]);
    slow.health.deadline = Duration::from_secs(90);
    let deploying = {
        let client = client.clone();
        tokio::spawn(async move {
            let req = deploy_request(&slow, "v2");
            let mut stream = client.deploy(&req).await?;
            while stream.next().await?.is_some() {}
            Ok::<_, teal::api::client::ClientError>(())
        })
    };
    let staged = eventually(Duration::from_secs(30), || {
        let docker = docker.clone();
        async move { container_names(&docker, name).await.len() == 4 }
    })
    .await;
    assert!(staged, "the new slot's containers were created");
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_clean("through the proxy before the kill", &proxied.stop().await);
    daemon.start_kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    daemon.wait().await.unwrap();
    assert!(
        deploying.await.unwrap().is_err(),
        "the deploy died with the daemon"
    );

    let mut daemon = serve(dir.path());
    let serving_again = eventually(Duration::from_secs(30), || async {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), answers(listen)).await,
            Ok(Some(200))
        )
    })
    .await;
    let gap = killed.elapsed();
    assert!(serving_again, "the restarted daemon serves production");
    eprintln!(
        "RESTART GAP: production answered again {gap:?} after the SIGKILL (daemon restart included)"
    );
    assert!(up(client.clone()).await);

    // Consistent: v1 live on blue, adopted without a restart; green gone.
    let st = client.status(None).await.unwrap();
    let svc = &st.services[0];
    assert_eq!(svc.active_slot, Some(Slot::Blue));
    assert_eq!(svc.active_version.as_deref(), Some("v1"));
    assert_eq!(svc.slots.green.state, SlotState::Stopped);
    assert!(!svc.busy);
    assert_eq!(svc.slots.blue.instances[0].addr, live.instances[0].addr);
    // The interrupted deploy's containers go right after production is back.
    let clean = eventually(Duration::from_secs(30), || {
        let docker = docker.clone();
        async move {
            container_names(&docker, name).await == ["dkt-sigkill-blue-0", "dkt-sigkill-blue-1"]
        }
    })
    .await;
    assert!(
        clean,
        "no stray containers: {:?}",
        container_names(&docker, name).await
    );
    assert_eq!(
        identity(&docker, "dkt-sigkill-blue-0").await,
        blue[0],
        "adopted, not restarted"
    );
    assert_eq!(
        identity(&docker, "dkt-sigkill-blue-1").await,
        blue[1],
        "adopted, not restarted"
    );
    let history = client.history(name).await.unwrap();
    assert!(
        history.entries.iter().all(|e| e.version == "v1"),
        "{history:?}"
    );

    let proxied = restart_load(listen, 6, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // And it deploys again, under load.
    let result =
        ActionResult::collect(client.deploy(&deploy_request(&spec, "v2")).await.unwrap()).await;
    result.assert_live();
    assert_eq!(serving(listen).await.as_deref(), Some("v2"));
    assert_clean("through the proxy after the restart", &proxied.stop().await);
    assert_clean(
        "straight at a live container, across the kill",
        &direct.stop().await,
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(60), daemon.wait()).await;
    remove_containers(&docker, name).await;
    if std::env::var("KEEP_LOG").is_ok() {
        std::fs::copy(dir.path().join("serve.log"), "/tmp/serve.log").unwrap();
    }
}
