//! teal with `router = "nginx"` (managed mode) against the real nginx: deploys,
//! Host routing, preview vs production, promote, rollback, status and history, a
//! config nginx rejects, a reload nginx refuses, and the master's lifecycle.

use std::time::Duration;

use crate::support::*;
use teal::slot::{Slot, SlotState};
use teal::wire::Outcome;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_switch_and_rollback_through_nginx() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 2);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;

    // Before any deploy, nginx answers 503 for everything.
    assert_eq!(get(d.addr, "/").await.0, 503);

    d.deploy(&spec, "1.0.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.deploy(&spec, "1.1.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.1.0"));

    // The preview port serves the standby (the previous version, kept warm).
    let preview = spec.preview.unwrap();
    assert_eq!(serving(preview).await.as_deref(), Some("1.0.0"));

    let status = d.status().await;
    let web = &status.services[0];
    assert_eq!(web.active_version.as_deref(), Some("1.1.0"));
    assert_eq!(web.active_slot, Some(Slot::Green));
    assert_eq!(web.slots.blue.state, SlotState::Standby);
    assert_eq!(web.preview, Some(preview));
    assert_eq!(status.listen[0], d.addr);

    d.rollback("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    assert_eq!(serving(preview).await.as_deref(), Some("1.1.0"));

    let history = d.client.history("web").await.unwrap();
    assert_eq!(history.entries.len(), 3, "{history:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promote_stages_on_preview_until_promoted() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let staged = d.deploy_with(&spec, "2.0.0", false).await;
    assert_eq!(staged.outcome, Outcome::Staged, "{}", staged.text());
    let preview = spec.preview.unwrap();
    assert_eq!(serving(preview).await.as_deref(), Some("2.0.0"));
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));

    d.promote("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("2.0.0"));
    assert_eq!(serving(preview).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_never_reaches_nginx_production() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    spec.health.deadline = Duration::from_secs(2);
    let failed = d.deploy(&spec, "broken-1.1.0").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_routing_through_nginx() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut api = nginx::service("api", dir.path(), 1);
    api.hosts = vec!["api.example.test".into()];
    api.drain.keep_previous = false;
    let web = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&nginx::config(dir.path(), vec![])).await;

    d.deploy(&api, "api-1").await.assert_live();
    let (status, body) = get_host(d.addr, "/", "API.example.test:80").await;
    assert_eq!((status, version_of(&body).as_deref()), (200, Some("api-1")));
    // No default service yet: an unknown Host is not proxied anywhere.
    assert_eq!(get_host(d.addr, "/", "unknown.test").await.0, 404);

    d.deploy(&web, "web-1").await.assert_live();
    let (status, body) = get_host(d.addr, "/", "unknown.test").await;
    assert_eq!((status, version_of(&body).as_deref()), (200, Some("web-1")));
    let (_, body) = get_host(d.addr, "/", "api.example.test").await;
    assert_eq!(version_of(&body).as_deref(), Some("api-1"));

    // keep_previous = false: after a switch api's preview has nothing to serve.
    d.deploy(&api, "api-2").await.assert_live();
    assert_eq!(get(api.preview.unwrap(), "/").await.0, 503);
    let (_, body) = get_host(d.addr, "/", "api.example.test").await;
    assert_eq!(version_of(&body).as_deref(), Some("api-2"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_nginx_rejects_fails_the_deploy_and_keeps_production() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.conf");
    std::fs::write(&extra, "add_header X-Teal yes;\n").unwrap();
    let mut config = nginx::config(dir.path(), vec![]);
    config.proxy.nginx.include = Some(extra.clone());
    let spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let conf = config.state_dir.join("nginx/nginx.conf");
    let before = std::fs::read_to_string(&conf).unwrap();

    // Someone breaks the included file: the next config nginx is asked to load fails.
    std::fs::write(&extra, "add_header X-Teal yes;\nbogus_directive on;\n").unwrap();
    let failed = d.deploy(&spec, "1.1.0").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert!(
        failed.message.contains("nginx -t")
            && failed
                .message
                .contains("unknown directive \"bogus_directive\""),
        "nginx's own words: {}",
        failed.message
    );
    eprintln!("{}", failed.message);
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    let status = d.status().await;
    assert_eq!(status.services[0].active_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.services[0].slots.green.state, SlotState::Stopped);
    let history = d.client.history("web").await.unwrap();
    let last = history.entries.last().unwrap();
    assert!(
        last.reason
            .as_deref()
            .is_some_and(|r| r.contains("bogus_directive")),
        "{last:?}"
    );

    // Fixed: the same deploy goes through.
    std::fs::write(&extra, "add_header X-Teal yes;\n").unwrap();
    d.deploy(&spec, "1.1.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.1.0"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_stops_with_teal_and_serves_the_restored_version_after_a_restart() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 1);
    let config = nginx::config(dir.path(), vec![]);
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "1.0.0").await.assert_live();
    let pid_file = config.state_dir.join("nginx/nginx.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    d.stop().await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the managed nginx stopped with teal"
    );
    assert!(
        tokio::net::TcpStream::connect(config.proxy.listen)
            .await
            .is_err()
    );

    let d = TestDaemon::start(&config).await;
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));
    d.stop().await;
}

#[test]
fn teal_demo_runs_through_nginx() {
    if !nginx::required() {
        return;
    }
    let output = assert_cmd::Command::new(TEAL)
        .args(["demo", "--router", "nginx", "--json"])
        .timeout(Duration::from_secs(240))
        .output()
        .expect("teal demo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "teal demo --router nginx:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["router"], "nginx");
    assert_eq!(
        report["load"]["errors"],
        serde_json::json!({}),
        "{report:#}"
    );
    assert_eq!(report["load"]["sent"], report["load"]["ok"], "{report:#}");
    assert!(stderr.contains("through a managed nginx"), "{stderr}");
}

/// The uid a process runs as, from `/proc/PID/status`.
fn uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_nginx_workers_do_not_run_as_root_and_can_buffer_bodies() {
    if !nginx::required() {
        return;
    }
    // The state dir sits in a 0700 dir, as one under /root would: a root
    // teal's workers then keep their temp files under /var/cache/teal-nginx.
    let dir = tempfile::tempdir().unwrap();
    let closed = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(dir.path(), closed).unwrap();
    let spec = nginx::service("web", dir.path(), 1);
    let config = nginx::config(dir.path(), vec![]);
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    let master = nginx::master_pid(&config.state_dir).expect("the managed master's pid");
    let workers = nginx::serving_workers(master);
    assert!(!workers.is_empty(), "no nginx workers under {master}");
    let me = nix::unistd::geteuid().as_raw();
    for worker in &workers {
        let uid = uid_of(*worker).expect("worker uid");
        if me == 0 {
            assert_ne!(uid, 0, "worker {worker} runs as root");
        } else {
            assert_eq!(uid, me, "worker {worker} runs as another user");
        }
    }

    // A 1 MiB body is larger than nginx's body buffer: the worker writes it
    // to a temp file first, which fails (500) if it cannot reach its temp dir.
    // The demo app's /upload reads it all and says how much came.
    let stream = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = Bytes::from(vec![b'b'; 1 << 20]);
    let req = http::Request::post("/upload")
        .header(http::header::HOST, "localhost")
        .body(http_body_util::Full::new(body))
        .unwrap();
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&answer[..], b"1048576\n", "the app read the whole body");
    d.stop().await;
}
