//! Shipping docker images to hosts over ssh, end to end: a real sshd per host
//! (`support::ssh_lab`), the teal binary as the CLI with its own Docker engine
//! (`support::workstation::Workstation`: a second dockerd), and the hosts'
//! teal and containers on this machine's engine. Each test builds its own
//! images (a unique label makes their IDs new to every engine) and names its
//! service uniquely, so tests and other runs on the same engine never meet.

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use crate::support::ssh_lab::{Lab, assert_ok, json_events, output_text};
use crate::support::workstation::{Workstation, remove_image, unique};
use crate::support::*;
use bollard::Docker;

/// teal.toml: docker service `service` of `repo:{version}` on `servers`.
fn write_config(lab: &Lab, service: &str, repo: &str, servers: &[&str]) {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"{head}
[services.{service}]
runtime = "docker"
image = "{repo}:{{version}}"
port = 8080
command = ["--boot-delay", "100ms"]
instances = 1
servers = [{servers}]

[services.{service}.health]
interval = "50ms"
deadline = "30s"

[services.{service}.drain]
timeout = "5s"

{hosts}"#,
        head = lab.config_head(""),
        servers = servers.join(", "),
        hosts = lab.hosts_toml(),
    );
    std::fs::write(lab.root().join("teal.toml"), text).unwrap();
}

/// Removes the test's containers and images from the hosts' engine, also when
/// the test fails half way (containers outlive the lab's teal daemons). Declare
/// it before the lab: a daemon that still runs would start removed containers
/// again.
struct Cleanup {
    service: String,
    images: Vec<String>,
}

impl Cleanup {
    fn new(service: &str) -> Cleanup {
        Cleanup {
            service: service.to_string(),
            images: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let service = self.service.clone();
        let images = std::mem::take(&mut self.images);
        // A runtime of its own: this runs inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let Ok(docker) = Docker::connect_with_defaults() else {
                    return;
                };
                docker::remove_containers(&docker, &service).await;
                for id in images {
                    remove_image(&docker, &id).await;
                }
            });
        })
        .join();
    }
}

/// `teal deploy SERVICE --version V --json` with the workstation's engine.
fn deploy(lab: &Lab, ws: &Workstation, service: &str, version: &str) -> Output {
    lab.teal()
        .env("DOCKER_HOST", ws.docker_host())
        .args(["deploy", service, "--version", version, "--json"])
        .output()
        .expect("teal runs")
}

/// The `transferred` events of a `--json` deploy.
fn transfers(out: &Output) -> Vec<serde_json::Value> {
    json_events(out)
        .into_iter()
        .filter(|e| e["event"] == "transferred" && e["what"].as_str().unwrap().starts_with("image"))
        .collect()
}

/// Host `a`'s production listener and the image ID its live slot runs.
fn live(lab: &Lab, service: &str) -> (SocketAddr, String) {
    let out = lab.run(&["status", service, "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = &json["hosts"][0]["status"];
    let addr = status["listen"][0].as_str().unwrap().parse().unwrap();
    let svc = &status["services"][0];
    let slot = svc["active_slot"].as_str().unwrap();
    let id = svc["slots"][slot]["image_id"].as_str().unwrap().to_string();
    (addr, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_deploy_ships_the_image_and_a_repeated_one_does_not() {
    let Some(host_docker) = docker::connect().await else {
        return;
    };
    let Some(ws) = Workstation::start().await else {
        return;
    };
    // Declared before the lab: dropped after it stopped the hosts' daemons.
    let service = format!("ship{}", unique());
    let mut cleanup = Cleanup::new(&service);
    let Some(lab) = Lab::start(&["a"]) else {
        return;
    };
    lab.preinstall_teal();
    let repo = format!("teal-ship-test/{service}");
    let id = ws.build_app(&format!("{repo}:1"), "build-1").await;
    ws.tag(&id, &format!("{repo}:2")).await;
    cleanup.images.push(id.clone());
    assert!(
        host_docker.inspect_image(&id).await.is_err(),
        "the image is new to the host's engine"
    );
    write_config(&lab, &service, &repo, &["a"]);

    // First deploy: the image travels, compressed, and is on the host after.
    let out = deploy(&lab, &ws, &service, "1");
    assert_ok(&out);
    let sent = transfers(&out);
    assert_eq!(sent.len(), 1, "{}", output_text(&out));
    let sent = &sent[0];
    assert_eq!(sent["host"], "a");
    assert_eq!(sent["ok"], true);
    let (bytes, raw) = (
        sent["sent_bytes"].as_u64().unwrap(),
        sent["raw_bytes"].as_u64().unwrap(),
    );
    assert!(bytes > 0 && bytes < raw, "zstd sent {bytes} of {raw} bytes");
    let on_host = host_docker.inspect_image(&id).await.expect("on the host");
    assert!(
        on_host
            .repo_tags
            .unwrap_or_default()
            .contains(&format!("{repo}:1")),
        "the reference names the shipped image on the host"
    );
    let (addr, running) = live(&lab, &service);
    assert_eq!(running, id, "the host runs the shipped image ID");
    assert_eq!(serving(addr).await.as_deref(), Some("1"));

    // A repeated deploy of the same image (under another tag): nothing travels.
    let out = deploy(&lab, &ws, &service, "2");
    assert_ok(&out);
    assert!(transfers(&out).is_empty(), "{}", output_text(&out));
    assert!(
        json_events(&out).iter().any(|e| e["host"] == "a"
            && e["event"] == "note"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("is already there: not sent")),
        "{}",
        output_text(&out)
    );
    let (addr, running) = live(&lab, &service);
    assert_eq!(running, id);
    assert_eq!(serving(addr).await.as_deref(), Some("2"));

    // Without --json: one line per host says so, and the result names the host.
    let out = lab
        .teal()
        .env("DOCKER_HOST", ws.docker_host())
        .args(["deploy", &service, "--version", "1"])
        .output()
        .unwrap();
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let short = &id["sha256:".len()..][..12];
    assert!(
        stderr.contains(&format!(
            "a: image {repo}:1 ({short}) is already there: not sent"
        )),
        "{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_docker_access_stops_the_deploy_before_anything_stages() {
    let Some(_host_docker) = docker::connect().await else {
        return;
    };
    let Some(ws) = Workstation::start().await else {
        return;
    };
    let dead = "unix:///nonexistent/teal-test/docker.sock";
    let service = format!("ship{}", unique());
    let mut cleanup = Cleanup::new(&service);
    let Some(lab) = Lab::start_with(
        &["a", "nodocker"],
        &[("nodocker", &format!("SetEnv DOCKER_HOST={dead}"))],
    ) else {
        return;
    };
    lab.preinstall_teal();
    let repo = format!("teal-ship-test/{service}");
    let id = ws.build_app(&format!("{repo}:1"), "build-1").await;
    cleanup.images.push(id.clone());
    write_config(&lab, &service, &repo, &["a", "nodocker"]);

    let out = lab
        .teal()
        .env("DOCKER_HOST", ws.docker_host())
        .args(["deploy", &service, "--version", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{}", output_text(&out));
    let error = error[0];
    assert!(
        error.starts_with(&format!("error: nodocker: image {repo}:1 (")),
        "{error}"
    );
    assert!(
        error.contains(&format!("cannot reach the Docker engine at {dead}")),
        "{error}"
    );
    assert!(error.contains("nothing was staged or switched"), "{error}");

    // Nothing started anywhere: the healthy host has no slot of the service.
    let out = lab.run(&["status", "--host", "a", "--json"]);
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = json["hosts"][0]["status"]["services"].as_array().unwrap();
    assert!(
        services.iter().all(|s| s["name"] != service.as_str()),
        "{json}"
    );
    let docker = Docker::connect_with_defaults().unwrap();
    assert!(docker::containers(&docker, &service).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_at_the_host_while_shipped_images_switch() {
    use crate::support::load::zero_drop;
    use teal::load::{Load, LoadSpec};

    let Some(_host_docker) = docker::connect().await else {
        return;
    };
    let Some(ws) = Workstation::start().await else {
        return;
    };
    let service = format!("ship{}", unique());
    let mut cleanup = Cleanup::new(&service);
    let Some(lab) = Lab::start(&["a"]) else {
        return;
    };
    lab.preinstall_teal();
    let repo = format!("teal-ship-test/{service}");
    let first = ws.build_app(&format!("{repo}:1"), "build-1").await;
    let second = ws.build_app(&format!("{repo}:2"), "build-2").await;
    ws.tag(&first, &format!("{repo}:3")).await;
    ws.tag(&second, &format!("{repo}:4")).await;
    cleanup.images.extend([first.clone(), second.clone()]);
    write_config(&lab, &service, &repo, &["a"]);
    assert_ok(&deploy(&lab, &ws, &service, "1"));
    let (addr, _) = live(&lab, &service);

    let load = Load::start(LoadSpec {
        max_duration: Duration::from_secs(180),
        ..zero_drop(addr)
    });

    // The CLI blocks; the load's tasks move to the other worker meanwhile.
    let run = |version: &str| tokio::task::block_in_place(|| deploy(&lab, &ws, &service, version));
    // 2 ships a new image; 3 and 4 are images the host has by then.
    let mut shipped = Vec::new();
    for version in ["2", "3", "4", "1"] {
        let out = run(version);
        assert_ok(&out);
        shipped.push(transfers(&out).len());
    }
    assert_eq!(shipped, [1, 0, 0, 0]);

    let report = load.stop().await;
    assert_eq!(
        report.failed(),
        0,
        "failed requests:\n{}",
        report.render_table()
    );
    assert!(report.ok > 100, "the load ran: {}", report.render_table());
    for version in report.versions.keys() {
        assert!(
            ["1", "2", "3", "4"].contains(&version.as_str()),
            "served {version}"
        );
    }
    assert_eq!(serving(addr).await.as_deref(), Some("1"));
}
