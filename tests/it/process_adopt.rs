//! Process instances outlive `teal serve`: the real binary killed (SIGKILL) or
//! stopped (SIGTERM) and started again on the same state dir, with real demo-app
//! processes that write a line per request to stdout (a log pipe broken by the
//! daemon's death would fail requests). The next daemon adopts the live ones
//! (same pids, no restart), stops what no live slot accounts for, leaves alone a
//! pid that now names another process, and restarts an adopted instance that
//! dies. Processes are counted from `/proc` (their `TEAL_SERVICE`), not from
//! teal's records. Every wait is bounded.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::load::{assert_clean, restart_load};
use crate::support::served::Served;
use crate::support::*;
use teal::slot::{Slot, SlotState};
use teal::spec::{RuntimeSpec, ServiceSpec};
use teal::wire::{DeployRequest, Outcome, SlotStatus};

const PATIENCE: Duration = Duration::from_secs(30);

/// `dir/teal.toml` with only the daemon's settings (the spec comes with deploys).
fn write_config(dir: &Path, listen: SocketAddr) {
    std::fs::write(
        dir.join("teal.toml"),
        format!("state_dir = \"state\"\n\n[proxy]\nlisten = \"{listen}\"\n"),
    )
    .unwrap();
}

/// The demo app, two instances, a line per request on stdout.
fn service(name: &str, dir: &Path) -> ServiceSpec {
    let mut spec = demo_service(name, dir, 2);
    if let RuntimeSpec::Process { command } = &mut spec.runtime {
        command.push("--log-requests".into());
    }
    spec
}

/// A daemon (the binary) on a temp dir with a fixed production port, and
/// `name` (two instances) live at 1.0.0.
struct Setup {
    dir: tempfile::TempDir,
    listen: SocketAddr,
    spec: ServiceSpec,
    daemon: Served,
    /// The live (blue) instances, as status shows them.
    live: SlotStatus,
}

async fn setup(name: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    write_config(dir.path(), listen);
    let spec = service(name, dir.path());
    let daemon = Served::start(dir.path()).await;
    deploy(&daemon, &spec, "1.0.0", true).await.assert_live();
    let live = daemon.client.status(Some(name)).await.unwrap().services[0]
        .slots
        .blue
        .clone();
    Setup {
        dir,
        listen,
        spec,
        daemon,
        live,
    }
}

async fn deploy(d: &Served, spec: &ServiceSpec, version: &str, promote: bool) -> ActionResult {
    let req = DeployRequest {
        promote,
        ..deploy_request(spec, version)
    };
    ActionResult::collect(d.client.deploy(&req).await.expect("deploy accepted")).await
}

/// What instance `index` of the blue slot wrote, with teal's markers.
fn blue_log(dir: &Path, name: &str, index: usize) -> String {
    let path = teal::runtime::log_path(&dir.join("state"), name, Slot::Blue, index);
    std::fs::read_to_string(path).unwrap()
}

fn pids(slot: &SlotStatus) -> Vec<u32> {
    slot.instances
        .iter()
        .map(|i| i.id.parse().expect("a pid"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_leaves_its_instances_serving_and_the_next_adopts_them() {
    let name = "adopt-kill";
    let Setup {
        dir,
        listen,
        spec,
        daemon: mut d,
        ..
    } = setup(name).await;
    // A staged slot: not live, so the next daemon must stop it.
    let staged = deploy(&d, &spec, "1.1.0", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());
    let before = d.client.status(Some(name)).await.unwrap().services[0].clone();
    let (blue, green) = (pids(&before.slots.blue), pids(&before.slots.green));
    let all: BTreeSet<u32> = blue.iter().chain(&green).copied().collect();
    assert_eq!(app_pids(name), all, "the four instances and nothing else");

    let proxied = restart_load(listen, 6, 2);
    let direct = restart_load(before.slots.blue.instances[0].addr, 2, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_clean("through the proxy before the kill", &proxied.stop().await);

    d.kill();
    let killed = Instant::now();
    // No daemon: every instance still runs and the live ones answer, logging.
    assert_eq!(app_pids(name), all, "nothing died with the daemon");
    for instance in &before.slots.blue.instances {
        assert_eq!(get(instance.addr, "/").await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let d = Served::start(dir.path()).await;
    let back = eventually(PATIENCE, async || serving(listen).await.is_some()).await;
    assert!(back, "the new daemon serves production");
    eprintln!(
        "RESTART GAP: production answered again {:?} after the SIGKILL",
        killed.elapsed()
    );

    let after = d.client.status(Some(name)).await.unwrap().services[0].clone();
    assert_eq!(after.active_version.as_deref(), Some("1.0.0"));
    assert_eq!(pids(&after.slots.blue), blue, "adopted with the same pids");
    assert!(
        after
            .slots
            .blue
            .instances
            .iter()
            .all(|i| i.healthy && i.restarts == 0)
    );
    assert_eq!(after.slots.green.state, SlotState::Stopped);
    // The staged leftovers are stopped before the control socket opens.
    assert_eq!(app_pids(name), blue.iter().copied().collect(), "no orphans");
    assert!(green.iter().all(|pid| !alive(*pid as i32)));

    let proxied = restart_load(listen, 6, 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_clean("through the proxy after the restart", &proxied.stop().await);
    assert_clean(
        "straight at a live instance, across the kill",
        &direct.stop().await,
    );
    let log = blue_log(dir.path(), name, 0);
    assert!(log.contains("adopted pid"), "{log}");
    assert!(log.contains("1.0.0 GET /"), "request lines reach the log");

    drop(d);
    assert!(app_pids(name).is_empty(), "the test leaves nothing running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_live_instances_and_an_adopted_one_that_dies_is_restarted() {
    let name = "adopt-term";
    let Setup {
        dir,
        listen,
        spec,
        daemon: mut d,
        live,
    } = setup(name).await;
    let blue = pids(&live);

    assert!(d.terminate().success(), "teal serve exits 0 on SIGTERM");
    assert_eq!(
        app_pids(name),
        blue.iter().copied().collect(),
        "live instances kept"
    );
    for instance in &live.instances {
        assert_eq!(get(instance.addr, "/").await.0, 200);
    }

    let mut d = Served::start(dir.path()).await;
    let after = d.client.status(Some(name)).await.unwrap().services[0].clone();
    assert_eq!(pids(&after.slots.blue), blue, "adopted with the same pids");
    assert_eq!(serving(listen).await.as_deref(), Some("1.0.0"));

    // An adopted instance is no child of this daemon: a pidfd tells of its death.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(blue[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = eventually(PATIENCE, async || {
        let s = d.client.status(Some(name)).await.unwrap();
        let i = &s.services[0].slots.blue.instances[0];
        i.restarts == 1 && i.healthy && i.id != blue[0].to_string()
    })
    .await;
    assert!(restarted, "the adopted instance was restarted");
    let s = d.client.status(Some(name)).await.unwrap().services[0].clone();
    assert_eq!(s.slots.blue.instances[0].addr, live.instances[0].addr);
    assert_eq!(app_pids(name).len(), 2);
    let log = blue_log(dir.path(), name, 0);
    assert!(
        log.contains("exited, restarting in"),
        "no exit status: {log}"
    );

    // `teal stop` is how instances are stopped on purpose; a restart keeps them so.
    let stopped = ActionResult::collect(d.client.stop(name).await.unwrap()).await;
    assert_eq!(stopped.outcome, Outcome::Stopped, "{}", stopped.text());
    assert!(app_pids(name).is_empty(), "stopped: {:?}", app_pids(name));
    assert_eq!(get(listen, "/").await.0, 503);
    assert!(d.terminate().success());
    let d = Served::start(dir.path()).await;
    let s = d.client.status(Some(name)).await.unwrap().services[0].clone();
    assert_eq!(s.slots.blue.state, SlotState::Stopped, "not brought back");
    assert!(app_pids(name).is_empty());
    deploy(&d, &spec, "1.0.1", true).await.assert_live();
    assert_eq!(serving(listen).await.as_deref(), Some("1.0.1"));
    drop(d);
    assert!(app_pids(name).is_empty(), "the test leaves nothing running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_pid_that_names_another_process_now_is_neither_adopted_nor_killed() {
    let name = "adopt-reuse";
    let Setup {
        dir,
        daemon: mut d,
        live,
        ..
    } = setup(name).await;
    let blue = pids(&live);
    d.kill();

    // Instance 0 dies while no daemon runs, and its pid is taken by another
    // process: the record now names a process with another start time.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(blue[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(PATIENCE, async || !alive(blue[0] as i32)).await);
    let mut other = tokio::process::Command::new("sleep")
        .arg("300")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let other_pid = other.id().unwrap();
    let book = teal::state::ProcessBook::open(&dir.path().join("state")).unwrap();
    book.update(|records| {
        for r in records.iter_mut().filter(|r| r.pid == blue[0]) {
            r.pid = other_pid;
        }
    })
    .unwrap();
    drop(book);

    let d = Served::start(dir.path()).await;
    let s = d.client.status(Some(name)).await.unwrap().services[0].clone();
    let now = pids(&s.slots.blue);
    assert_eq!(now[1], blue[1], "instance 1 adopted");
    assert!(
        now[0] != blue[0] && now[0] != other_pid,
        "instance 0 started afresh: {now:?}"
    );
    assert!(s.slots.blue.instances.iter().all(|i| i.healthy));
    assert!(alive(other_pid as i32), "the other process was not touched");
    assert!(other.try_wait().unwrap().is_none());
    let records = teal::state::ProcessBook::open(&dir.path().join("state"))
        .unwrap()
        .records();
    assert!(records.iter().all(|r| r.pid != other_pid), "{records:?}");
    assert_eq!(app_pids(name), now.iter().copied().collect());
    drop(d);
    assert!(app_pids(name).is_empty(), "the test leaves nothing running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_of_a_service_the_state_no_longer_names_are_stopped() {
    let name = "adopt-unknown";
    let Setup {
        dir,
        daemon: mut d,
        live,
        ..
    } = setup(name).await;
    d.kill();
    // The state file loses the service (reset by hand); processes.json keeps it.
    let store = teal::state::Store::open(&dir.path().join("state")).unwrap();
    let mut state = store.load().unwrap();
    assert!(state.services.remove(name).is_some());
    store.save(&state).unwrap();
    drop(store);
    assert_eq!(app_pids(name), pids(&live).into_iter().collect());

    let d = Served::start(dir.path()).await;
    assert!(d.client.status(None).await.unwrap().services.is_empty());
    assert!(
        app_pids(name).is_empty(),
        "no orphans: {:?}",
        app_pids(name)
    );
    drop(d);
}
