//! Deploying to hosts over ssh, end to end: real sshd instances on loopback
//! ports (see `support::ssh_lab`), the teal binary as the CLI, a teal daemon per
//! "host" started by teal itself over ssh, and real demo-app instances.

use std::net::SocketAddr;
use std::process::Output;

use crate::support::ssh_lab::{Lab, assert_ok, json_events, output_text};
use crate::support::*;

/// teal.toml for the lab: service `web` on `servers`, every host's own state
/// dir, teal path and listener. The command refuses to start (exit 3) on a host
/// whose state dir holds a `fail-stage` file: a host-specific broken deploy.
fn write_config(lab: &Lab, servers: &[&str], extra: &str) {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"{head}
[services.web]
command = ["sh", "-c", "if [ -e fail-stage ]; then echo 'fail-stage is here' >&2; exit 3; fi; exec {TEAL} demo-app --port {{port}} --app-version {{version}} --boot-delay 100ms"]
instances = 2
version = "1.0.0"
preview = "127.0.0.1:0"
servers = [{servers}]

[services.web.health]
interval = "50ms"
deadline = "10s"

[services.web.drain]
timeout = "5s"

{hosts}"#,
        head = lab.config_head(extra),
        servers = servers.join(", "),
        hosts = lab.hosts_toml(),
    );
    std::fs::write(lab.root().join("teal.toml"), text).unwrap();
}

/// Each host's production listener, from `teal status --json`.
fn listeners(lab: &Lab) -> Vec<(String, SocketAddr)> {
    let out = lab.run(&["status", "web", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let addr = h["status"]["listen"][0].as_str().unwrap().parse().unwrap();
            (h["host"].as_str().unwrap().to_string(), addr)
        })
        .collect()
}

async fn serving_everywhere(lab: &Lab) -> Vec<Option<String>> {
    let mut versions = Vec::new();
    for (_, addr) in listeners(lab) {
        versions.push(serving(addr).await);
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_one_host() {
    let Some(lab) = Lab::start(&["a"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a"], "");

    let out = lab.run(&["deploy", "web", "--version", "1.0.0"]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("web 1.0.0 is live on a"),
        "{}",
        output_text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a: teal at"), "{}", output_text(&out));
    assert!(
        stderr.contains("a: started teal serve detached"),
        "{}",
        output_text(&out)
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("a: [") && l.contains("health")),
        "every daemon line names the host: {}",
        output_text(&out)
    );
    assert!(lab.host("a").daemon_pid().is_some(), "teal serve runs on a");
    assert_eq!(serving_everywhere(&lab).await, [Some("1.0.0".to_string())]);

    // The daemon is reused, and drives the next deploy.
    let out = lab.run(&["deploy", "web", "--version", "1.1.0"]);
    assert_ok(&out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("started teal serve"),
        "{}",
        output_text(&out)
    );
    assert_eq!(serving_everywhere(&lab).await, [Some("1.1.0".to_string())]);

    // history and logs report per host; the lock was released.
    let out = lab.run(&["history", "web", "--host", "a"]);
    assert_ok(&out);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(history.starts_with("== a\n"), "{history}");
    assert!(
        history.contains("1.1.0") && history.contains("1.0.0"),
        "{history}"
    );
    let out = lab.run(&["logs", "web"]);
    assert_ok(&out);
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        !logs.is_empty() && logs.lines().all(|l| l.starts_with("a: ")),
        "{logs}"
    );
    let out = lab.run(&["status", "web", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["hosts"][0]["status"]["services"][0]
            .get("lock")
            .is_none(),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_two_hosts_in_two_phases_and_roll_back_across_them() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a", "b"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));
    let both = |v: &str| vec![Some(v.to_string()), Some(v.to_string())];
    assert_eq!(serving_everywhere(&lab).await, both("1.0.0"));

    let out = lab.run(&[
        "deploy",
        "web",
        "--version",
        "2.0.0",
        "--json",
        "--parallel",
        "2",
    ]);
    assert_ok(&out);
    assert_eq!(serving_everywhere(&lab).await, both("2.0.0"));
    // Two phases: every host staged before any host switched.
    let events = json_events(&out);
    let position = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(pred);
    for host in ["a", "b"] {
        let staged =
            position(&|e| e["host"] == host && e["event"] == "done" && e["outcome"] == "staged")
                .unwrap_or_else(|| panic!("{host} staged: {}", output_text(&out)));
        let first_switch = position(&|e| e["event"] == "step" && e["step"] == "switch").unwrap();
        assert!(
            staged < first_switch,
            "{host} staged before the first switch: {}",
            output_text(&out)
        );
        assert!(
            events
                .iter()
                .any(|e| e["host"] == host && e["event"] == "done" && e["outcome"] == "live")
        );
    }
    let result = events.last().unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(result["outcome"], "live");

    // Rollback across both hosts: instant, to the warm previous slot.
    let out = lab.run(&["rollback", "web"]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web is rolled back on a, b"),
        "{}",
        output_text(&out)
    );
    assert_eq!(serving_everywhere(&lab).await, both("1.0.0"));

    // --no-promote stages everywhere; promote switches everywhere.
    assert_ok(&lab.run(&["deploy", "web", "--version", "3.0.0", "--no-promote"]));
    assert_eq!(serving_everywhere(&lab).await, both("1.0.0"));
    assert_ok(&lab.run(&["promote", "web"]));
    assert_eq!(serving_everywhere(&lab).await, both("3.0.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_fails_to_stage_switches_nobody() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a", "b"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));

    std::fs::write(lab.host("b").state_dir.join("fail-stage"), "").unwrap();
    let out = lab.run(&["deploy", "web", "--version", "2.0.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    assert!(error.contains("deploy of web 2.0.0 failed: b: "), "{error}");
    assert!(
        error.contains("fail-stage is here"),
        "the cause from b: {error}"
    );
    assert!(
        error.contains("nobody switched (staged slots removed on a)"),
        "{error}"
    );
    // Both keep serving the old version; a's staged slot is gone.
    let both = vec![Some("1.0.0".to_string()), Some("1.0.0".to_string())];
    assert_eq!(serving_everywhere(&lab).await, both);
    let out = lab.run(&["status", "web", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &json["hosts"][0]["status"]["services"][0];
    assert_eq!(a["active_version"], "1.0.0");
    assert_eq!(a["slots"]["green"]["state"], "stopped", "{a}");
    let out = lab.run(&["history", "web", "--host", "a", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = json["hosts"][0]["history"]["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "discard", "{last}");
    assert_eq!(last["reason"], "b failed to stage", "{last}");

    // Once b is fixed, the deploy goes through on both.
    std::fs::remove_file(lab.host("b").state_dir.join("fail-stage")).unwrap();
    assert_ok(&lab.run(&["deploy", "web", "--version", "2.0.0"]));
    let both = vec![Some("2.0.0".to_string()), Some("2.0.0".to_string())];
    assert_eq!(serving_everywhere(&lab).await, both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_lock_keeps_a_second_deployer_out_until_forced() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a", "b"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));

    // Someone else's deploy holds b (its daemon is on this machine).
    let b = teal::api::client::Client::new(&lab.host("b").control());
    let req = teal::wire::LockRequest {
        owner: "alice@laptop".into(),
        reason: "teal deploy web 9.9.9".into(),
        force: false,
        ttl_ms: None,
    };
    b.lock("web", &req).await.unwrap();
    let out = lab.run(&["deploy", "web", "--version", "2.0.0"]);
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: b: service \"web\" is locked by alice@laptop since"),
        "{stderr}"
    );
    assert!(stderr.contains("--force-unlock"), "{stderr}");
    // Nothing moved, and a's lock was given back.
    let both = vec![Some("1.0.0".to_string()), Some("1.0.0".to_string())];
    assert_eq!(serving_everywhere(&lab).await, both);
    let a = teal::api::client::Client::new(&lab.host("a").control());
    assert!(
        a.status(Some("web")).await.unwrap().services[0]
            .lock
            .is_none()
    );

    let out = lab.run(&["deploy", "web", "--version", "2.0.0", "--force-unlock"]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("b: broke the deploy lock of alice@laptop"),
        "{}",
        output_text(&out)
    );
    let both = vec![Some("2.0.0".to_string()), Some("2.0.0".to_string())];
    assert_eq!(serving_everywhere(&lab).await, both);
    assert!(
        b.status(Some("web")).await.unwrap().services[0]
            .lock
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teal_installs_itself_on_a_host_without_it_and_reuses_it() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    write_config(&lab, &["a"], "");
    let installed = &lab.host("a").teal_path;
    assert!(!installed.exists());

    let out = lab.run(&["deploy", "web", "--version", "1.0.0"]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a: installing teal at") && stderr.contains("(not installed)"),
        "{}",
        output_text(&out)
    );
    assert!(
        stderr.contains("a: teal: sent "),
        "the transfer is reported: {}",
        output_text(&out)
    );
    let ours = teal::remote::LocalBinary::inspect(std::path::Path::new(TEAL)).unwrap();
    let theirs = teal::remote::LocalBinary::inspect(installed).unwrap();
    assert_eq!(theirs.sha256, ours.sha256, "the very same teal");
    assert!(!installed.symlink_metadata().unwrap().is_symlink());
    assert_eq!(serving_everywhere(&lab).await, [Some("1.0.0".to_string())]);

    // Identical: nothing travels the second time.
    let out = lab.run(&["deploy", "web", "--version", "1.1.0"]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("installing teal"), "{}", output_text(&out));
    assert!(
        stderr.contains(&format!("a: teal at {} is up to date", installed.display())),
        "{}",
        output_text(&out)
    );

    // A teal that cannot run on the host is refused and never installed.
    let fake = lab.root().join("fake-teal");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'cannot execute: required file not found' >&2\nexit 126\n",
    )
    .unwrap();
    std::fs::write(
        lab.root().join("fake.toml"),
        std::fs::read_to_string(lab.root().join("teal.toml"))
            .unwrap()
            .replace(
                "[ssh]\n",
                &format!("[ssh]\nbinary = {:?}\n", fake.display().to_string()),
            ),
    )
    .unwrap();
    let out = lab.run(&["--config", "fake.toml", "deploy", "web", "--host", "b"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        error.contains("error: b: ")
            && error.contains("cannot run there (cannot execute: required file not found)"),
        "{error}"
    );
    assert!(!lab.host("b").teal_path.exists(), "nothing installed on b");
    assert!(lab.host("b").daemon_pid().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_untrusted_hosts_fail_with_one_clear_line() {
    let Some(lab) = Lab::start(&["a", "stranger"]) else {
        return;
    };
    lab.preinstall_teal();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_a = lab.host("a").port;
    lab.write_ssh_config(&[("down", closed, "root"), ("nobody", port_a, "no-such-user")]);
    lab.forget_host_key("stranger");
    write_config(&lab, &["a"], "");

    let error_line = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one error line: {}", output_text(out));
        errors[0].to_string()
    };
    let out = lab.run(&["deploy", "web", "--host", "down"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let error = error_line(&out);
    assert!(
        error.starts_with("error: down: cannot reach the host over ssh"),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");

    let out = lab.run(&["deploy", "web", "--host", "stranger"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let error = error_line(&out);
    assert!(error.starts_with("error: stranger: the host key is not in known_hosts and teal never accepts one silently"), "{error}");
    let known = std::fs::read_to_string(lab.root().join("known_hosts")).unwrap();
    assert!(
        !known.contains(&format!(":{} ", lab.host("stranger").port)),
        "known_hosts untouched"
    );
    assert!(
        lab.host("stranger").daemon_pid().is_none(),
        "nothing started there"
    );

    let out = lab.run(&["status", "web", "--host", "nobody"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let error = error_line(&out);
    assert!(
        error.starts_with("error: nobody: ssh authentication failed"),
        "{error}"
    );
    assert!(error.contains("Permission denied"), "{error}");

    // A reachable host without teal: status says so, and does not install it.
    let out = lab.run(&["status", "--host", "a"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let error = error_line(&out);
    assert!(error.contains("a: teal serve is not running"), "{error}");

    // One bad host among good ones: nothing happens anywhere.
    let out = lab.run(&["deploy", "web", "--host", "a", "--host", "down"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    assert!(error_line(&out).starts_with("error: down: "));
    assert!(
        lab.host("a").daemon_pid().is_none() || {
            let a = teal::api::client::Client::new(&lab.host("a").control());
            a.status(None).await.unwrap().services.is_empty()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_at_every_host_while_they_switch() {
    use crate::support::load::zero_drop;
    use std::time::Duration;
    use teal::load::{Load, LoadSpec};

    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a", "b"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));
    let loads: Vec<(String, Load)> = listeners(&lab)
        .into_iter()
        .map(|(host, addr)| {
            let spec = LoadSpec {
                max_duration: Duration::from_secs(180),
                ..zero_drop(addr)
            };
            (host, Load::start(spec))
        })
        .collect();

    // The CLI blocks; the load's tasks move to the other worker meanwhile.
    let run = |args: &[&str]| tokio::task::block_in_place(|| lab.run(args));

    // Switches back and forth across both hosts, a failed stage on b, and a
    // rollback; production must answer every request throughout.
    let mut expected = vec!["1.0.0"];
    for version in ["1.1.0", "1.2.0", "1.3.0"] {
        assert_ok(&run(&["deploy", "web", "--version", version]));
        expected.push(version);
    }
    std::fs::write(lab.host("b").state_dir.join("fail-stage"), "").unwrap();
    let out = run(&["deploy", "web", "--version", "2.0.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    std::fs::remove_file(lab.host("b").state_dir.join("fail-stage")).unwrap();
    assert_ok(&run(&["rollback", "web"]));
    assert_ok(&run(&["deploy", "web", "--version", "1.4.0"]));
    expected.push("1.4.0");

    for (host, load) in loads {
        let report = load.stop().await;
        assert_eq!(
            report.failed(),
            0,
            "{host}: failed requests:\n{}",
            report.render_table()
        );
        assert!(report.ok > 0, "{host}: load ran");
        for version in report.versions.keys() {
            assert!(
                expected.contains(&version.as_str()),
                "{host} served {version}: {}",
                report.render_table()
            );
        }
        assert!(
            !report.versions.contains_key("2.0.0"),
            "{host}: the failed deploy never served"
        );
    }
    let all = vec![Some("1.4.0".to_string()), Some("1.4.0".to_string())];
    assert_eq!(serving_everywhere(&lab).await, all);
}

/// Another teal, `teal-NAME` (the same program with bytes appended: another
/// sha256), and `NAME.toml`, the lab's config installing it on hosts.
fn another_build(lab: &Lab, name: &str) {
    let binary = lab.root().join(format!("teal-{name}"));
    let mut bytes = std::fs::read(TEAL).unwrap();
    bytes.extend_from_slice(format!("\n{name} build\n").as_bytes());
    std::fs::write(&binary, bytes).unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        lab.root().join(format!("{name}.toml")),
        std::fs::read_to_string(lab.root().join("teal.toml"))
            .unwrap()
            .replace(
                "[ssh]\n",
                &format!("[ssh]\nbinary = {:?}\n", binary.display().to_string()),
            ),
    )
    .unwrap();
}

/// A deploy that installs a different teal on a host hands the host's running
/// daemon over to it in place (`teal upgrade` there) before anything is
/// staged, while load runs against the host: no request fails and no
/// keep-alive connection is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_teal_takes_over_the_hosts_daemon_in_place() {
    let Some(lab) = Lab::start(&["a"]) else {
        return;
    };
    write_config(&lab, &["a"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));
    let before = lab.host("a").daemon_pid().expect("the host's daemon runs");
    let (_, addr) = listeners(&lab)[0].clone();
    let load = teal::load::Load::start(teal::load::LoadSpec::new(addr));

    another_build(&lab, "next");
    let out = lab.run(&[
        "--config",
        "next.toml",
        "deploy",
        "web",
        "--version",
        "1.1.0",
    ]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a: teal 0.1.0 → 0.1.0, handed over (pid "),
        "{}",
        output_text(&out)
    );
    assert!(
        !stderr.contains("once it restarts"),
        "{}",
        output_text(&out)
    );
    let after = lab.host("a").daemon_pid().expect("the new daemon runs");
    assert_ne!(after, before);
    assert!(!alive(before), "the old daemon left");
    assert_eq!(serving_everywhere(&lab).await, [Some("1.1.0".to_string())]);

    // `teal upgrade --host`: the same hand-over, with no deploy.
    another_build(&lab, "third");
    let out = lab.run(&["--config", "third.toml", "upgrade", "--host", "a"]);
    assert_ok(&out);
    let newest = lab.host("a").daemon_pid().expect("the newest daemon runs");
    assert_ne!(newest, after);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("handed over (pid {after} → {newest})"))
            && stderr.contains(&format!("a: runs teal 0.1.0 (pid {newest})")),
        "{}",
        output_text(&out)
    );
    assert_eq!(serving_everywhere(&lab).await, [Some("1.1.0".to_string())]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.keepalive_connects, 8, "{report:?}");
}

/// `teal maintenance`, `pause` and `resume` act on the service's servers
/// (each its own daemon over ssh), or on the one `--host` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_and_pause_reach_every_host() {
    let Some(lab) = Lab::start(&["a", "b"]) else {
        return;
    };
    lab.preinstall_teal();
    write_config(&lab, &["a", "b"], "");
    assert_ok(&lab.run(&["deploy", "web", "--version", "1.0.0"]));
    let hosts = listeners(&lab);
    let statuses = async || {
        let mut statuses = Vec::new();
        for (_, addr) in &hosts {
            statuses.push(get(*addr, "/").await);
        }
        statuses
    };

    let out = lab.run(&["maintenance", "web", "on", "--message", "back soon"]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("== a\n") && text.contains("== b\n") && text.contains("back soon"),
        "{}",
        output_text(&out)
    );
    for (status, body) in statuses().await {
        assert_eq!((status, body.trim()), (503, "back soon"));
    }
    assert_ok(&lab.run(&["maintenance", "web", "off", "--host", "a"]));
    let now: Vec<u16> = statuses().await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(now, [200, 503], "only a serves again");
    let out = lab.run(&["status", "web", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let in_maintenance = |i: usize| {
        json["hosts"][i]["status"]["services"][0]["maintenance"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    };
    assert!(!in_maintenance(0) && in_maintenance(1), "{json}");
    assert_ok(&lab.run(&["maintenance", "web", "off"]));
    let now: Vec<u16> = statuses().await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(now, [200, 200]);

    // A pause on b holds b's requests until resumed there.
    assert_ok(&lab.run(&["pause", "web", "--host", "b", "--timeout", "60s"]));
    let b = hosts[1].1;
    let held = tokio::spawn(async move { get(b, "/").await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "b holds the request");
    assert_eq!(get(hosts[0].1, "/").await.0, 200, "a is not paused");
    let out = lab.run(&["resume", "web", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hosts"][1]["gate"]["changed"], true, "{json}");
    assert_eq!(json["hosts"][0]["gate"]["changed"], false, "{json}");
    assert_eq!(held.await.unwrap().0, 200, "served once resumed");
}
