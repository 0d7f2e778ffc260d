//! `teal serve --upgrade` with `router = "nginx"` (managed), the real binary
//! and the real nginx, under load (keep-alive and new-connection clients, no
//! retries). nginx holds the listening sockets and the client connections,
//! so the hand-over moves only the state lock: the old daemon leaves nginx
//! running, the new one adopts the same master (same pid) and the same
//! instances (same pids), and goes on reloading that nginx on deploys.
//! Clients never see the upgrade: no request fails, and with client
//! keep-alive on, no connection is closed either (the upgrade itself does not
//! reload nginx when the routes did not change).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::load::{finish_more, zero_drop};
use crate::support::served::{
    Served, blocking, demo_web_toml, logs, run_ok, stop_clean, teal_ok, terminated, upgraded,
};
use crate::support::*;
use teal::load::{Load, LoadSpec};

/// Production and preview addresses of one test's config.
struct Ports {
    listen: SocketAddr,
    preview: SocketAddr,
}

/// `dir/teal.toml`: the demo app (2 instances) through the managed nginx.
fn write_config(dir: &Path, ports: &Ports, keepalive: &str, keep_previous: bool) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "{listen}"
router = "nginx"

[proxy.nginx]
workers = 2
keepalive_timeout = "{keepalive}"

{web}
[services.web.drain]
timeout = "5s"
keep_previous = {keep_previous}
"#,
        listen = ports.listen,
        web = demo_web_toml(&ports.preview.to_string()),
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// A daemon through nginx with `versions` deployed in order, in a temp dir.
struct Setup {
    dir: PathBuf,
    /// `dir/state`.
    state: PathBuf,
    daemon: Served,
    ports: Ports,
    /// The managed nginx master.
    master: i32,
    /// Removed when dropped: the last field, so that a daemon still in
    /// `daemon` is dropped (and its instances and nginx stopped) before.
    _tmp: tempfile::TempDir,
}

async fn deployed(keepalive: &str, keep_previous: bool, versions: &[&str]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ports = Ports {
        listen: nginx::free_addr(),
        preview: nginx::free_addr(),
    };
    write_config(&dir, &ports, keepalive, keep_previous);
    let versions: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
    let daemon = blocking({
        let dir = dir.clone();
        move || {
            let daemon = Served::serve(&dir);
            for version in &versions {
                run_ok(&dir, &["deploy", "web", "--version", version]);
            }
            daemon
        }
    })
    .await;
    let state = dir.join("state");
    let master = nginx::master_pid(&state).expect("the managed nginx runs");
    Setup {
        _tmp: tmp,
        dir,
        state,
        daemon,
        ports,
        master,
    }
}

/// The instances of `dir`'s config that run now.
fn instances(dir: &Path) -> BTreeSet<u32> {
    app_pids_in(&std::fs::canonicalize(dir).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_keeps_nginx_and_the_instances_and_loses_no_request() {
    if !nginx::required() {
        return;
    }
    // teal's default under nginx: no client keep-alive. 2.0.0 live, 1.0.0
    // kept warm on the preview port.
    let setup = deployed("0s", true, &["1.0.0", "2.0.0"]).await;
    let (dir, state, ports, master) = (&setup.dir, &setup.state, &setup.ports, setup.master);
    let old = setup.daemon;
    let before = instances(dir);
    assert_eq!(before.len(), 4, "live and standby: {before:?}");
    assert_eq!(serving(ports.listen).await.as_deref(), Some("2.0.0"));

    let spec = zero_drop(ports.listen);
    let load = Load::start(spec);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let next = upgraded(dir, old).await;
    assert_eq!(
        nginx::master_pid(state),
        Some(master),
        "the same nginx master"
    );
    assert!(alive(master));
    let after = instances(dir);
    assert_eq!(
        after.len(),
        2,
        "the live slot's two instances run on, the standby went with the old daemon: {after:?}\n{}",
        logs(dir)
    );
    assert!(
        after.is_subset(&before),
        "adopted, not restarted: {before:?} -> {after:?}"
    );
    finish_more(&load, 200, Duration::from_secs(60)).await;

    // The new daemon deploys through the same nginx (a reload, not a restart),
    // and rolls back.
    let workers = nginx::serving_workers(master);
    teal_ok(dir, &["deploy", "web", "--version", "3.0.0"]).await;
    assert_eq!(serving(ports.listen).await.as_deref(), Some("3.0.0"));
    assert_eq!(nginx::master_pid(state), Some(master));
    assert_ne!(nginx::serving_workers(master), workers, "reloaded");
    assert_eq!(
        serving(ports.preview).await.as_deref(),
        Some("2.0.0"),
        "the adopted 2.0.0 is the standby now"
    );
    teal_ok(dir, &["rollback", "web"]).await;
    assert_eq!(serving(ports.listen).await.as_deref(), Some("2.0.0"));
    finish_more(&load, 200, Duration::from_secs(60)).await;

    stop_clean(load, dir, None).await;

    terminated(next).await;
    assert!(!alive(master), "the new daemon stops the nginx it adopted");
}

/// With client keep-alive on, a reload closes idle client connections (README
/// "builtin vs nginx"); an upgrade whose routes did not change does not reload
/// at all, so every keep-alive client keeps the connection it opened first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_keepalive_an_upgrade_reloads_nothing_and_closes_no_connection() {
    if !nginx::required() {
        return;
    }
    let setup = deployed("75s", false, &["1.0.0"]).await;
    let (dir, state, ports, master) = (&setup.dir, &setup.state, &setup.ports, setup.master);
    let old = setup.daemon;
    let workers = nginx::serving_workers(master);
    let before = instances(dir);

    let spec = LoadSpec {
        max_duration: Duration::from_secs(120),
        ..zero_drop(ports.listen)
    };
    let load = Load::start(spec.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = upgraded(dir, old).await;
    finish_more(&load, 200, Duration::from_secs(60)).await;
    stop_clean(load, dir, Some(spec.keepalive_connections)).await;
    assert_eq!(nginx::master_pid(state), Some(master));
    assert_eq!(nginx::serving_workers(master), workers, "no reload");
    assert_eq!(instances(dir), before, "the same instances");

    // A deploy after the upgrade (no load: its reload closes idle connections).
    teal_ok(dir, &["deploy", "web", "--version", "2.0.0"]).await;
    assert_eq!(serving(ports.listen).await.as_deref(), Some("2.0.0"));
    assert_eq!(nginx::master_pid(state), Some(master));
    terminated(next).await;
    assert!(!alive(master));
}

/// A successor that fails after it adopted the running nginx (its admin
/// listener cannot bind) leaves that nginx as it is: the old daemon serves on
/// through the same master, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_leaves_nginx_serving() {
    if !nginx::required() {
        return;
    }
    let setup = deployed("0s", false, &["1.0.0"]).await;
    let (dir, state, ports, master) = (&setup.dir, &setup.state, &setup.ports, setup.master);
    let load = Load::start(zero_drop(ports.listen));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The same config and state dir, with an admin port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let next = dir.join("next");
    std::fs::create_dir(&next).unwrap();
    let text = std::fs::read_to_string(dir.join("teal.toml")).unwrap();
    let text = text
        .replace(
            "state_dir = \"state\"",
            &format!("state_dir = {:?}", state.display().to_string()),
        )
        .replace(
            "router = \"nginx\"",
            &format!(
                "router = \"nginx\"\nadmin = \"{}\"",
                taken.local_addr().unwrap()
            ),
        );
    std::fs::write(next.join("teal.toml"), text).unwrap();
    let out = blocking({
        let config = next.join("teal.toml");
        move || {
            std::process::Command::new(TEAL)
                .arg("--config")
                .arg(config)
                .args(["serve", "--upgrade"])
                .output()
                .unwrap()
        }
    })
    .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("admin listener"),
        "{said}"
    );

    assert_eq!(nginx::master_pid(state), Some(master));
    assert!(alive(master), "the failed successor did not stop nginx");
    finish_more(&load, 200, Duration::from_secs(60)).await;
    assert_eq!(serving(ports.listen).await.as_deref(), Some("1.0.0"));
    stop_clean(load, dir, None).await;
    // The old daemon still drives that nginx.
    teal_ok(dir, &["deploy", "web", "--version", "2.0.0"]).await;
    assert_eq!(serving(ports.listen).await.as_deref(), Some("2.0.0"));
    assert_eq!(nginx::master_pid(state), Some(master));
}
