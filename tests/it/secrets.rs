//! `secrets` and `env_file` end to end: the real `teal` binary reads the
//! values on the deploying machine (its environment, then `.teal/secrets`),
//! and they reach a process instance, a container, a hook and a remote host,
//! while no value shows in state, output, logs or a remote command line.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::served::{Served, blocking, logs, run, run_ok};
use crate::support::ssh_lab::output_text;
use crate::support::*;

pub(crate) const DB: &str = "postgres://app:pw-DB-7f3a9c@db/app";
pub(crate) const TOKEN_1: &str = "tok-one-5d8e1b";
const TOKEN_2: &str = "tok-two-93c0fa";
/// What must never show outside the store (the distinctive part of each).
const NEEDLES: [&str; 3] = ["pw-DB-7f3a9c", TOKEN_1, TOKEN_2];

fn write_config(dir: &Path) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"
access_log = "state/access.log"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "100ms"]
version = "1.0.0"
env_file = "app.env"
secrets = ["DATABASE_URL", "API_TOKEN"]

[services.web.health]
interval = "50ms"
deadline = "10s"

[services.web.drain]
timeout = "1s"
keep_previous = false

[services.web.hooks]
pre_deploy = ["sh", "-c", "printf '%s|%s' \"$DATABASE_URL\" \"$API_TOKEN\" > hook-seen"]
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
    std::fs::write(
        dir.join("app.env"),
        "# plain settings\nGREETING='from env_file'\n",
    )
    .unwrap();
}

fn write_secrets(dir: &Path, text: &str, mode: u32) {
    let file = dir.join(".teal/secrets");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `teal ARGS` with DATABASE_URL in its environment.
fn with_db(dir: &Path, args: &[&str]) -> Output {
    crate::support::served::teal(dir)
        .env("DATABASE_URL", DB)
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The environment of the live instance of `web` (by its pid in `teal status`).
fn live_env(dir: &Path) -> BTreeMap<String, String> {
    let status = json(&run(dir, &["status", "--json"]));
    let web = &status["services"][0];
    let slot = web["active_slot"].as_str().expect("a live slot");
    let pid = web["slots"][slot]["instances"][0]["id"].as_str().unwrap();
    environ(pid.parse().unwrap())
}

fn environ(pid: u32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `text` holds none of the values.
#[track_caller]
pub(crate) fn assert_clean(what: &str, text: &str) {
    for needle in NEEDLES {
        assert!(!text.contains(needle), "a secret value in {what}:\n{text}");
    }
}

/// Every file under `dir` but the store is free of values; the store is 0600.
pub(crate) fn assert_files_clean(dir: &Path, store: &Path) {
    let mut seen_store = false;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if path == store {
                seen_store = true;
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    path.display()
                );
            } else if meta.is_file() {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert_clean(&path.display().to_string(), &text);
            }
        }
    }
    assert!(seen_store, "the store {} exists", store.display());
}

#[test]
fn secrets_reach_instances_and_hooks_and_show_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_config(dir);
    let mut daemon = Served::serve(dir);
    let mut outputs: Vec<(String, Output)> = Vec::new();

    // No value anywhere: refused before anything starts, naming the key and
    // where teal looked.
    let out = run(dir, &["deploy", "web"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad input: {}",
        output_text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret DATABASE_URL, API_TOKEN is not set"),
        "{err}"
    );
    assert!(
        err.contains(".teal/secrets") && err.contains("environment"),
        "{err}"
    );
    let status = json(&run(dir, &["status", "--json"]));
    assert!(
        status["services"].as_array().unwrap().is_empty(),
        "{status}"
    );

    // A secrets file others can read is refused, and says how to fix it.
    write_secrets(dir, &format!("API_TOKEN={TOKEN_1}\n"), 0o644);
    let out = with_db(dir, &["deploy", "web"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad input: {}",
        output_text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing the secrets file") && err.contains("chmod 600"),
        "{err}"
    );
    outputs.push(("refused deploy".into(), out));

    // DATABASE_URL from the environment, API_TOKEN from the file.
    write_secrets(
        dir,
        &format!("# from the vault\nAPI_TOKEN=\"{TOKEN_1}\"\n"),
        0o600,
    );
    let out = with_db(dir, &["deploy", "web", "--json"]);
    assert!(out.status.success(), "{}\n{}", output_text(&out), logs(dir));
    outputs.push(("deploy --json".into(), out));
    let env = live_env(dir);
    assert_eq!(env["DATABASE_URL"], DB);
    assert_eq!(env["API_TOKEN"], TOKEN_1);
    assert_eq!(env["GREETING"], "from env_file");
    let seen = std::fs::read_to_string(dir.join("hook-seen")).unwrap();
    assert_eq!(seen, format!("{DB}|{TOKEN_1}"));
    let before = json(&run(dir, &["status", "--json"]));
    let listen: std::net::SocketAddr = before["listen"][0].as_str().unwrap().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(serving(listen)).as_deref(), Some("1.0.0"));

    // A new value and the same version: new instances with the new value,
    // and status says which secret changed.
    write_secrets(dir, &format!("API_TOKEN={TOKEN_2}\n"), 0o600);
    let out = with_db(dir, &["deploy", "web"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(progress.contains("API_TOKEN (changed)"), "{progress}");
    assert!(!progress.contains("DATABASE_URL (changed)"), "{progress}");
    outputs.push(("deploy".into(), out));
    assert_eq!(live_env(dir)["API_TOKEN"], TOKEN_2);
    let after = json(&run(dir, &["status", "--json"]));
    let digests = |s: &serde_json::Value| -> BTreeMap<String, String> {
        s["services"][0]["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["name"].as_str().unwrap().into(),
                    x["digest"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_ne!(digests(&before)["API_TOKEN"], digests(&after)["API_TOKEN"]);
    assert_eq!(
        digests(&before)["DATABASE_URL"],
        digests(&after)["DATABASE_URL"]
    );

    // A rollback that redeploys (no previous slot kept) takes the values
    // from the host's store: nothing is sent with it.
    outputs.push((
        "deploy 1.1.0".into(),
        with_db(dir, &["deploy", "web", "--version", "1.1.0"]),
    ));
    let out = run(dir, &["rollback", "web"]);
    assert!(out.status.success(), "{}\n{}", output_text(&out), logs(dir));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("redeploying 1.0.0"),
        "{}",
        output_text(&out)
    );
    outputs.push(("rollback".into(), out));
    let env = live_env(dir);
    assert_eq!(
        (env["DATABASE_URL"].as_str(), env["API_TOKEN"].as_str()),
        (DB, TOKEN_2)
    );

    // A daemon restart with its instances gone starts them from the store.
    daemon.kill();
    daemon.hand_instances_over();
    drop(daemon);
    teal::runtime::process::stop_recorded(&dir.join("state"), Duration::from_secs(5)).unwrap();
    let _daemon = Served::serve(dir);
    let back = (0..300).any(|_| {
        let status = json(&run(dir, &["status", "--json"]));
        let web = &status["services"][0];
        let healthy = ["blue", "green"]
            .iter()
            .any(|slot| web["slots"][slot]["instances"][0]["healthy"] == true);
        if !healthy {
            std::thread::sleep(Duration::from_millis(100));
        }
        healthy
    });
    assert!(back, "the live version came back:\n{}", logs(dir));
    let env = live_env(dir);
    assert_eq!(
        (env["DATABASE_URL"].as_str(), env["API_TOKEN"].as_str()),
        (DB, TOKEN_2)
    );
    let status = json(&run(dir, &["status", "--json"]));
    let listen: std::net::SocketAddr = status["listen"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(rt.block_on(serving(listen)).as_deref(), Some("1.0.0"));

    // Keys, never values, in what the CLI shows, with and without --json.
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["history", "web"],
        &["history", "web", "--json"],
        &["logs", "web"],
    ] {
        outputs.push((format!("teal {}", args.join(" ")), run_ok(dir, args)));
    }
    let human = String::from_utf8_lossy(&outputs[outputs.len() - 5].1.stdout).into_owned();
    assert!(
        human.contains("secret API_TOKEN") && human.contains("digest"),
        "{human}"
    );
    for (what, out) in &outputs {
        assert_clean(what, &output_text(out));
    }
    assert_clean("the daemon's log", &logs(dir));
    assert_files_clean(&dir.join("state"), &dir.join("state/secret-store/web.json"));
}

/// Every process command line on this machine that holds a value, read over
/// and over until `done` is set (the lab's hosts run here too).
fn watch_command_lines(done: &std::sync::atomic::AtomicBool) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut found = Vec::new();
    let mut rounds = 0;
    while !done.load(Ordering::Relaxed) && rounds < 20_000 {
        rounds += 1;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if NEEDLES.iter().any(|n| line.contains(n)) {
                found.push(line);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_deploy_delivers_secrets_in_the_request_not_on_command_lines() {
    let Some(lab) = crate::support::ssh_lab::Lab::start(&["a"]) else {
        return;
    };
    lab.preinstall_teal();
    let text = format!(
        r#"state_dir = "local"

[proxy]
listen = "127.0.0.1:0"

[ssh]
config = "ssh_config"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "100ms"]
version = "1.0.0"
servers = ["a"]
secrets = ["DATABASE_URL", "API_TOKEN"]

[services.web.health]
interval = "50ms"
deadline = "10s"

{hosts}"#,
        hosts = lab.hosts_toml(),
    );
    std::fs::write(lab.root().join("teal.toml"), text).unwrap();
    write_secrets(lab.root(), &format!("API_TOKEN={TOKEN_1}\n"), 0o600);

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || watch_command_lines(&done))
    };
    let mut deploy = lab.teal();
    deploy.env("DATABASE_URL", DB).args(["deploy", "web"]);
    let out = blocking(move || deploy.output().unwrap()).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let command_lines = watcher.join().unwrap();
    crate::support::ssh_lab::assert_ok(&out);
    assert!(
        command_lines.is_empty(),
        "values on command lines: {command_lines:?}"
    );
    assert_clean("the remote deploy's output", &output_text(&out));

    let out = lab.run(&["status", "web", "--json"]);
    crate::support::ssh_lab::assert_ok(&out);
    assert_clean("remote status", &output_text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = &status["hosts"][0]["status"]["services"][0];
    let slot = web["active_slot"].as_str().unwrap();
    let pid = web["slots"][slot]["instances"][0]["id"].as_str().unwrap();
    let env = environ(pid.parse().unwrap());
    assert_eq!(
        (env["DATABASE_URL"].as_str(), env["API_TOKEN"].as_str()),
        (DB, TOKEN_1)
    );
    let state = &lab.host("a").state_dir;
    assert_files_clean(state, &state.join("secret-store/web.json"));
}
