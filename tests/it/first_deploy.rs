//! A user's first deploys with real Python servers (gunicorn, uvicorn from
//! PyPI) through the real `teal` binary: each usual mistake gets an answer that
//! names the cause and the fix, and nothing is left running afterwards.
//!
//! - `$PORT` in `command` (no shell expands it) and a `{prot}` typo: config
//!   errors before anything starts;
//! - an app on another port than its own: the gate says where it listens, at
//!   once instead of at the deadline;
//! - an app that daemonizes (`gunicorn --daemon`): the gate says it went into
//!   the background, and teal (a child subreaper) stops what it left and reaps
//!   it; a helper a running app forks into the background stops with its
//!   instance, also after an upgrade adopted the instance;
//! - an app on every interface (gunicorn without `-b`): a warning at deploy and
//!   in `teal status`;
//! - and the right commands of the README's quickstart deploy without warnings.

use std::path::Path;
use std::time::Duration;

use crate::support::served::{Served, run, run_ok, upgrade};
use crate::support::*;

const WSGI_APP: &str = include_str!("../apps/wsgi_app.py");
const ASGI_APP: &str = include_str!("../apps/asgi_app.py");
const NODE_APP: &str = include_str!("../apps/node_app.js");

/// gunicorn and uvicorn are installed (`scripts/test` installs them); with
/// CI=true a missing one fails the test.
fn require_servers() -> bool {
    let found = ["gunicorn", "uvicorn", "node"].iter().all(|server| {
        std::process::Command::new(server)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    require("gunicorn and uvicorn (pip), node (Debian's nodejs)", found)
}

/// `dir/teal.toml` with service `web` running `command` (a TOML array), the
/// apps next to it (`wsgi.py` for gunicorn, `asgi.py` for uvicorn,
/// `server.js` for Node).
fn setup(dir: &Path, command: &str, instances: usize, extra: &str) {
    std::fs::write(dir.join("wsgi.py"), WSGI_APP).unwrap();
    std::fs::write(dir.join("asgi.py"), ASGI_APP).unwrap();
    std::fs::write(dir.join("server.js"), NODE_APP).unwrap();
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"

[services.web]
command = {command}
instances = {instances}
version = "1"
{extra}
[services.web.health]
interval = "100ms"
deadline = "60s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `teal deploy web` in `dir` fails, and its error says every one of `words`;
/// returns what it printed.
fn deploy_fails_saying(dir: &Path, words: &[&str]) -> String {
    let out = run(dir, &["deploy", "web"]);
    let err = stderr(&out);
    eprintln!("{err}");
    assert!(!out.status.success(), "{err}");
    for words in words {
        assert!(err.contains(words), "{words:?} in: {err}");
    }
    err
}

/// Nothing of this test's config runs any more (no process with teal's
/// environment whose working directory is `dir`), and the daemon `daemon`
/// has no zombie child: what teal stopped, it reaped.
async fn nothing_left(dir: &Path, daemon: u32) {
    let clean = eventually(Duration::from_secs(20), async || {
        app_pids_in(dir).is_empty() && zombies(daemon).is_empty()
    })
    .await;
    assert!(
        clean,
        "left running: {:?}; zombie children of the daemon: {:?}",
        app_pids_in(dir),
        zombies(daemon)
    );
}

fn zombies(daemon: u32) -> Vec<i32> {
    teal::procs::children_with_stat(daemon as i32)
        .into_iter()
        .filter(|(_, stat)| stat.is_zombie())
        .map(|(pid, _)| pid)
        .collect()
}

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test]
async fn dollar_port_in_the_command_is_a_config_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        r#"["uvicorn", "asgi:app", "--port", "$PORT"]"#,
        1,
        "",
    );
    deploy_fails_saying(
        dir.path(),
        &[
            "teal.toml",
            "services.web.command",
            "\"$PORT\"",
            "without a shell",
            "use {port}",
            "[\"sh\", \"-c\", \"...\"]",
        ],
    );
    assert!(app_pids_in(dir.path()).is_empty());
}

#[tokio::test]
async fn dollar_port_through_a_shell_deploys() {
    if !require_servers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        r#"["sh", "-c", "exec uvicorn asgi:app --port $PORT"]"#,
        1,
        "",
    );
    let daemon = Served::start(dir.path()).await;
    let out = run_ok(dir.path(), &["deploy", "web"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    run_ok(dir.path(), &["stop", "web"]);
    nothing_left(dir.path(), daemon.pid()).await;
}

#[tokio::test]
async fn a_placeholder_typo_in_the_command_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        r#"["uvicorn", "asgi:app", "--port", "{prot}"]"#,
        1,
        "",
    );
    deploy_fails_saying(
        dir.path(),
        &[
            "teal.toml",
            "unknown placeholder {prot} in services.web.command",
            "known: {port}, {version}",
        ],
    );
}

#[tokio::test]
async fn an_app_on_another_port_fails_the_gate_at_once_saying_where_it_listens() {
    if !require_servers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // What uvicorn does without --port (it listens on 8000), on a port that
    // is free on this machine: two instances, the second cannot bind it.
    let wrong = free_addr().port();
    setup(
        dir.path(),
        &format!(r#"["uvicorn", "asgi:app", "--port", "{wrong}"]"#),
        2,
        "",
    );
    let daemon = Served::start(dir.path()).await;
    let err = deploy_fails_saying(
        dir.path(),
        &[
            &format!("listens on 127.0.0.1:{wrong}, not on 127.0.0.1:"),
            "pass {port} (in command) or $PORT (in its environment) to your app",
        ],
    );
    // It did not wait for the 60 s deadline to say so.
    assert!(!err.contains("not healthy after"), "{err}");
    assert!(!accepts(wrong).await, "the failed slot was removed");
    nothing_left(dir.path(), daemon.pid()).await;
}

#[tokio::test]
async fn an_app_that_daemonizes_is_told_to_stay_in_the_foreground_and_stopped() {
    if !require_servers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        r#"["gunicorn", "--daemon", "-b", "127.0.0.1:{port}", "wsgi:app"]"#,
        1,
        "",
    );
    let daemon = Served::start(dir.path()).await;
    deploy_fails_saying(
        dir.path(),
        &[
            "went into the background",
            "exit code 0",
            "which teal stopped",
            "run it in the foreground",
        ],
    );
    nothing_left(dir.path(), daemon.pid()).await;
}

#[tokio::test]
async fn what_an_instance_forks_into_the_background_stops_with_it() {
    if !require_servers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A foreground server that also leaves a helper of its own in the
    // background (a subshell that exits: the helper's parent becomes teal).
    setup(
        dir.path(),
        r#"["sh", "-c", "(setsid sleep 300{version} &); exec uvicorn asgi:app --port {port}"]"#,
        1,
        "[services.web.drain]\nkeep_previous = false\n",
    );
    let daemon = Served::start(dir.path()).await;
    run_ok(dir.path(), &["deploy", "web", "--version", "1"]);
    // This test's helpers: their title, in this test's directory.
    let helper = |version: &str| {
        let title = format!("sleep 300{version}");
        teal::procs::every_process()
            .into_iter()
            .filter(|(pid, _)| {
                teal::procs::title(*pid) == title
                    && std::fs::read_link(format!("/proc/{pid}/cwd"))
                        .is_ok_and(|cwd| cwd == dir.path())
            })
            .map(|(pid, stat)| (pid, stat.ppid))
            .collect::<Vec<_>>()
    };
    let first = helper("1");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        first[0].1,
        daemon.pid() as i32,
        "teal is the helper's parent"
    );
    run_ok(dir.path(), &["deploy", "web", "--version", "2"]);
    assert!(
        helper("1").is_empty(),
        "the old slot's helper stopped with it"
    );
    assert_eq!(helper("2").len(), 1);
    assert!(
        zombies(daemon.pid()).is_empty() || {
            // The reaper answers SIGCHLD; give it a moment.
            eventually(Duration::from_secs(10), async || {
                zombies(daemon.pid()).is_empty()
            })
            .await
        }
    );
    // After an upgrade the successor has adopted the instance (the helper is
    // no child of it): the helper still stops with its instance.
    let daemon = upgrade(dir.path(), daemon);
    run_ok(dir.path(), &["stop", "web"]);
    assert!(helper("2").is_empty());
    nothing_left(dir.path(), daemon.pid()).await;
}

#[tokio::test]
async fn an_app_on_every_interface_is_warned_about_at_deploy_and_in_status() {
    if !require_servers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // gunicorn without -b reads $PORT and binds 0.0.0.0.
    setup(dir.path(), r#"["gunicorn", "wsgi:app"]"#, 1, "");
    let daemon = Served::start(dir.path()).await;
    let out = run_ok(dir.path(), &["deploy", "web"]);
    let err = stderr(&out);
    for words in [
        "warning: instance 0",
        "listens on 0.0.0.0:",
        "every interface",
        "reached without going through teal",
        "gunicorn -b 127.0.0.1:{port}",
    ] {
        assert!(err.contains(words), "{words:?} in: {err}");
    }
    let status = run_ok(dir.path(), &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("warning: instance 0"), "{text}");
    let json = run_ok(dir.path(), &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let instance = &json["services"][0]["slots"]["blue"]["instances"][0];
    assert!(
        instance["warning"]
            .as_str()
            .is_some_and(|w| w.contains("every interface")),
        "{instance}"
    );
    run_ok(dir.path(), &["stop", "web"]);
    nothing_left(dir.path(), daemon.pid()).await;
}

#[tokio::test]
async fn the_quickstart_commands_deploy_without_a_warning() {
    if !require_servers() {
        return;
    }
    for command in [
        r#"["gunicorn", "-b", "127.0.0.1:{port}", "wsgi:app"]"#,
        r#"["uvicorn", "asgi:app", "--port", "{port}"]"#,
        r#"["node", "server.js"]"#,
    ] {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path(), command, 2, "");
        let daemon = Served::start(dir.path()).await;
        let out = run_ok(dir.path(), &["deploy", "web"]);
        let err = stderr(&out);
        assert!(!err.contains("warning"), "{command}: {err}");
        let json = run_ok(dir.path(), &["status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let instances = &json["services"][0]["slots"]["blue"]["instances"];
        assert_eq!(instances.as_array().map(Vec::len), Some(2), "{json}");
        assert!(
            instances
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["healthy"] == true && i.get("warning").is_none()),
            "{command}: {json}"
        );
        run_ok(dir.path(), &["stop", "web"]);
        nothing_left(dir.path(), daemon.pid()).await;
    }
}
