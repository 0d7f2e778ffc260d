//! `teal init` and `teal check` as a new user runs them: the file init writes
//! passes check and deploys through the real daemon; check names a missing
//! program and a missing secret (never a value) and fails with 2; bad input to
//! either changes nothing.

use std::path::Path;

use crate::support::served::{Served, run, run_ok};
use crate::support::squatter::Squatter;
use crate::support::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What `dir` holds (files with their content), for "nothing changed".
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let content = if p.is_dir() {
                b"a directory".to_vec()
            } else {
                std::fs::read(&p).unwrap()
            };
            (p.display().to_string(), content)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_that_checks_and_deploys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let listen = free_addr().to_string();
    let out = run_ok(
        dir.path(),
        &[
            "init",
            "web",
            "--listen",
            &listen,
            "--health",
            "/healthz",
            "--",
            TEAL,
            "demo-app",
            "--port",
            "{port}",
            "--app-version",
            "{version}",
        ],
    );
    assert!(stdout(&out).contains("wrote teal.toml"), "{}", stdout(&out));
    let ignore = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == ".teal/"), "{ignore}");

    let out = run_ok(dir.path(), &["check"]);
    let report = stdout(&out);
    assert!(
        report.contains(&format!("process: {TEAL} demo-app --port {{port}}")),
        "{report}"
    );
    assert!(
        report.contains("ok: teal serve and teal deploy can use this file"),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(dir.path(), &["check", "--json"]).stdout).unwrap();
    assert_eq!(json["services"][0]["name"], "web");
    assert_eq!(json["services"][0]["program"], TEAL);
    assert_eq!(json["services"][0]["problems"], serde_json::json!([]));

    // A second init changes nothing; the .gitignore line is not added twice.
    let written = std::fs::read_to_string(dir.path().join("teal.toml")).unwrap();
    let again = run(dir.path(), &["init", "web", "--", "other"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("teal.toml")).unwrap(),
        written
    );

    // The tests' daemons keep state in ./state (their clean-up looks there).
    std::fs::write(
        dir.path().join("teal.toml"),
        format!("state_dir = \"state\"\n{written}"),
    )
    .unwrap();
    let _daemon = Served::start(dir.path()).await;
    let out = run_ok(dir.path(), &["deploy", "web", "--version", "1.0.0"]);
    assert!(stdout(&out).contains("1.0.0 is live"), "{}", stdout(&out));
    assert_eq!(
        serving(listen.parse().unwrap()).await.as_deref(),
        Some("1.0.0")
    );

    let forced = run_ok(
        dir.path(),
        &[
            "init",
            "web",
            "--force",
            "--image",
            "shop:{version}",
            "--port",
            "8000",
        ],
    );
    assert!(
        stdout(&forced).contains(".teal/ was already ignored"),
        "{}",
        stdout(&forced)
    );
    let ignore_after = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert_eq!(ignore_after, ignore);
    let replaced = std::fs::read_to_string(dir.path().join("teal.toml")).unwrap();
    assert!(
        replaced.contains("image = \"shop:{version}\""),
        "{replaced}"
    );
    let out = run_ok(dir.path(), &["check"]);
    assert!(
        stdout(&out).contains("docker: shop:{version}"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_names_what_is_missing_and_never_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("teal.toml"),
        format!(
            r#"[services.web]
command = ["teal", "demo-app", "--port", "{{port}}"]
env = {{ PATH = "{bin}" }}
hosts = ["web.test"]
secrets = ["WEB_TOKEN", "FILE_TOKEN"]

[services.worker]
command = ["no-such-program-here", "--port", "{{port}}"]
hosts = ["worker.test"]
secrets = ["ABSENT_TOKEN"]

[services.worker.hooks]
pre_deploy = ["./bin/migrate", "expand"]
"#,
            bin = Path::new(TEAL).parent().unwrap().display()
        ),
    )
    .unwrap();
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, "FILE_TOKEN=file-value-shh\n").unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let before = listing(dir.path());

    let check = |json: bool| {
        let mut cmd = crate::support::served::teal(dir.path());
        cmd.args(["check", "--secrets-file", "secrets.env"])
            .env("WEB_TOKEN", "env-value-shh");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = check(false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let (report, error) = (stdout(&out), stderr(&out));
    assert!(
        report.contains("problem: no-such-program-here is not in any directory of PATH"),
        "{report}"
    );
    assert!(
        report.contains("problem: secret ABSENT_TOKEN is not set"),
        "{report}"
    );
    assert!(
        report.contains("problem: the pre_deploy hook: ")
            && report.contains("bin/migrate: no such file"),
        "{report}"
    );
    // A bare name is looked up in the service's own PATH.
    assert!(
        report.contains(&format!("process: teal demo-app --port {{port}} ({TEAL})")),
        "{report}"
    );
    assert!(report.contains("WEB_TOKEN (environment)"), "{report}");
    assert!(report.contains("FILE_TOKEN ("), "{report}");
    assert!(error.contains("3 problems (listed above)"), "{error}");
    for value in ["env-value-shh", "file-value-shh"] {
        assert!(
            !report.contains(value) && !error.contains(value),
            "{value} shown"
        );
    }

    let out = check(true);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = &json["services"][0];
    assert_eq!(web["program"], TEAL);
    assert_eq!(web["secrets"][0]["name"], "WEB_TOKEN");
    assert_eq!(web["secrets"][0]["found_in"], "environment");
    assert!(
        web["secrets"][1]["found_in"]
            .as_str()
            .unwrap()
            .ends_with("secrets.env")
    );
    assert_eq!(json["services"][1]["problems"].as_array().unwrap().len(), 3);
    assert!(!stdout(&out).contains("shh"));
    assert_eq!(listing(dir.path()), before, "check wrote nothing");
}

#[test]
fn init_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], says: &str| {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert_eq!(listing(dir.path()), vec![], "{args:?} wrote nothing");
    };
    refused(&["check"], "no such file (`teal init` writes one;");
    refused(&["init", "web"], "say how web runs");
    refused(
        &["init", "web", "--image", "shop:1"],
        "--image needs --port",
    );
    refused(
        &["init", "web", "--port", "80", "--", "app"],
        "it goes with --image",
    );
    refused(&["init", "no spaces", "--", "app"], "teal.toml");
    refused(
        &["init", "web", "--listen", "nowhere", "--", "app"],
        "invalid value",
    );
    refused(
        &["init", "web", "--health", "healthz", "--", "app"],
        "health.path",
    );
}

#[test]
fn an_address_another_program_holds_is_named_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    write_web_config(dir.path(), listen, "");
    let squatter = Squatter::start(listen);
    let named = format!("{} listens there", squatter.named());

    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("daemon    not running"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!("listen address {listen}: {named}")),
        "{}",
        stdout(&out)
    );

    // teal serve says the same when it cannot listen, and exits.
    let out = serve_fails(dir.path());
    assert!(
        stderr(&out).contains(&format!(
            "cannot listen on {listen}: Address already in use"
        )),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&named), "{}", stderr(&out));
    drop(squatter);

    let out = run_ok(dir.path(), &["check"]);
    assert!(stdout(&out).contains("ok: "), "{}", stdout(&out));
}

#[test]
fn with_the_nginx_router_serve_names_who_holds_the_address() {
    if !crate::support::nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    write_web_config(dir.path(), listen, "router = \"nginx\"\n");
    let squatter = Squatter::start(listen);
    let out = serve_fails(dir.path());
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "bind() to {listen} failed (98: Address already in use)"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("{} listens on {listen}", squatter.named())),
        "{said}"
    );
}

/// `dir/teal.toml`: the proxy on `listen` (with the `[proxy]` lines
/// `proxy_extra`), service `web` the demo app, state in ./state.
fn write_web_config(dir: &Path, listen: std::net::SocketAddr, proxy_extra: &str) {
    std::fs::write(
        dir.join("teal.toml"),
        format!(
            "state_dir = \"state\"\n[proxy]\nlisten = \"{listen}\"\n{proxy_extra}\n[services.web]\ncommand = [\"{TEAL}\", \"demo-app\", \"--port\", \"{{port}}\"]\n"
        ),
    )
    .unwrap();
}

/// `teal serve` in `dir`, which must exit (within 30 s) and fail.
fn serve_fails(dir: &Path) -> std::process::Output {
    let mut serve = crate::support::served::teal(dir)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        serve.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = serve.kill();
    }
    let out = serve.wait_with_output().unwrap();
    assert!(
        exited && !out.status.success(),
        "teal serve exited, failing: {}",
        stderr(&out)
    );
    out
}
