//! The deploy lock's lease over ssh, as a user meets it: a deploy longer than
//! the lease keeps its lock on every host by renewing it, a second deployer is
//! told who holds it, since when and when it lapses, and a CLI killed with
//! SIGKILL mid-deploy leaves locks that lapse on their own.

use std::process::Stdio;
use std::time::Duration;

use crate::support::ssh_lab::{Lab, assert_ok, output_text};
use crate::support::*;
use teal::api::client::Client;
use teal::slot::SlotState;
use teal::state::DeployLock;

/// The lease the CLI asks for in this test (`TEAL_LOCK_LEASE`).
const LEASE: &str = "1500ms";

/// teal.toml: `web` on hosts `a` and `b`; a version named `slow-*` takes 25 s
/// to become healthy (the demo app answers 503 while it boots).
fn write_config(lab: &Lab) {
    let text = format!(
        r#"{head}
[services.web]
command = ["sh", "-c", "case {{version}} in slow-*) d=25s;; *) d=100ms;; esac; exec {TEAL} demo-app --port {{port}} --app-version {{version}} --boot-delay $d"]
instances = 1
version = "1.0.0"
servers = ["a", "b"]

[services.web.health]
interval = "50ms"
deadline = "60s"

[services.web.drain]
timeout = "2s"

{hosts}"#,
        head = lab.config_head(""),
        hosts = lab.hosts_toml(),
    );
    std::fs::write(lab.root().join("teal.toml"), text).unwrap();
}

/// The lock of `web` on each host, as its daemon shows it.
async fn locks(hosts: &[Client]) -> Vec<Option<DeployLock>> {
    let mut all = Vec::new();
    for client in hosts {
        all.push(
            client.status(Some("web")).await.unwrap().services[0]
                .lock
                .clone(),
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploys_lock_lapses_and_a_long_one_keeps_it_by_renewing() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab);
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));
    let hosts = [
        Client::new(&lab.host("a").control()),
        Client::new(&lab.host("b").control()),
    ];

    // A deploy whose health gate takes longer than several leases.
    let mut slow = lab
        .teal()
        .env("TEAL_LOCK_LEASE", LEASE)
        .args(["deploy", "web", "--version", "slow-2.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let locked = eventually(Duration::from_secs(60), async || {
        locks(&hosts).await.iter().all(Option::is_some)
    })
    .await;
    assert!(locked, "the slow deploy locked both hosts");
    let first = locks(&hosts).await;
    // Three leases later the lock is still there, renewed on every host.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let later = locks(&hosts).await;
    for (before, after) in first.iter().zip(&later) {
        let (before, after) = (
            before.as_ref().unwrap(),
            after.as_ref().expect("still held"),
        );
        assert_eq!(before.since, after.since, "the same lock");
        assert!(
            after.lapses > before.lapses,
            "renewed: {before:?} -> {after:?}"
        );
    }
    assert!(
        slow.try_wait().unwrap().is_none(),
        "the slow deploy still runs"
    );

    // A second deployer is refused, and told who, since when, lapsing when.
    let out = lab.run(&["deploy", "web", "--version", "3.0.0"]);
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let held = later[0].as_ref().unwrap();
    assert!(
        stderr.contains(&format!("locked by {} since ", held.owner)),
        "{stderr}"
    );
    assert!(stderr.contains("(teal deploy web slow-2.0.0)"), "{stderr}");
    assert!(stderr.contains(", lapsing at "), "{stderr}");
    assert!(stderr.contains("lapses on its own"), "{stderr}");

    // The deploying CLI dies without a word: its locks lapse on their own.
    slow.kill().unwrap();
    slow.wait().unwrap();
    let lapsed = eventually(Duration::from_secs(30), async || {
        locks(&hosts).await.iter().all(Option::is_none)
    })
    .await;
    assert!(lapsed, "the locks lapsed: {:?}", locks(&hosts).await);

    // Once the hosts finished what was sent (staging slow-2.0.0), the next
    // deploy goes ahead without --force-unlock, saying what it took over.
    let settled = eventually(Duration::from_secs(60), async || {
        let mut idle = true;
        for client in &hosts {
            let status = client.status(Some("web")).await.unwrap();
            let web = &status.services[0];
            idle &= [&web.slots.blue, &web.slots.green]
                .iter()
                .all(|s| s.state != SlotState::Starting);
        }
        idle
    })
    .await;
    assert!(settled, "the hosts finished staging");
    let out = lab.run(&["deploy", "web", "--version", "3.0.0"]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("took over the lapsed deploy lock of"),
        "{}",
        output_text(&out)
    );
    assert!(locks(&hosts).await.iter().all(Option::is_none), "released");

    // The detached daemons write their own bounded serve.log, in plain text.
    for name in ["a", "b"] {
        let host = lab.host(name);
        let pid = host.daemon_pid().expect("a detached daemon");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let at = args.iter().position(|a| *a == b"--log-file");
        assert_eq!(
            at.map(|i| args[i + 1]),
            Some(&b"serve.log"[..]),
            "{name}: {}",
            String::from_utf8_lossy(&cmdline)
        );
        let log = std::fs::read(host.state_dir.join("serve.log")).unwrap();
        assert!(
            String::from_utf8_lossy(&log).contains("INFO"),
            "{name}: log lines"
        );
        assert!(!log.contains(&0x1b), "{name}: no colour codes in serve.log");
    }
}
