//! Every rule of `teal.toml`: defaults, paths, validation and clashes, each error
//! checked for its message and its line:column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::spec::{DrainSpec, HealthSpec, RouterKind, RuntimeSpec};

const FILE: &str = "/srv/app/teal.toml";

fn ok(text: &str) -> Config {
    parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("expected a valid config, got: {e}"))
}

fn err(text: &str) -> ConfigError {
    match parse(text, Path::new(FILE)) {
        Ok(config) => panic!("expected an error, got {config:#?}"),
        Err(e) => e,
    }
}

/// Asserts the error's location and that its message contains every piece.
#[track_caller]
fn assert_err(text: &str, line: usize, col: usize, pieces: &[&str]) {
    let e = err(text);
    assert_eq!(e.location, Some((line, col)), "location of: {e}");
    for piece in pieces {
        assert!(e.message.contains(piece), "{piece:?} not in: {e}");
    }
}

/// A process service, for tests about other keys.
const WEB: &str = "[services.web]\ncommand = [\"./app\"]\n";

const DESIGN_EXAMPLE: &str = r#"state_dir = ".teal"                  # daemon state

[proxy]
listen = "127.0.0.1:8080"            # production listener
router = "builtin"

[services.web]
runtime = "process"
command = ["python3", "app.py", "{version}"]
instances = 2
version = "1.0.0"
hosts = []
preview = "127.0.0.1:8081"
env = { GREETING = "hi" }

[services.web.health]
path = "/"
interval = "200ms"
timeout = "2s"
deadline = "60s"

[services.web.drain]
timeout = "30s"
keep_previous = true
"#;

#[test]
fn the_design_example_parses() {
    let config = ok(DESIGN_EXAMPLE);
    assert_eq!(config.path, PathBuf::from(FILE));
    assert_eq!(config.state_dir, PathBuf::from("/srv/app/.teal"));
    assert_eq!(config.proxy.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.proxy.router, RouterKind::Builtin);
    assert_eq!(
        config.proxy.control,
        PathBuf::from("/srv/app/.teal/teal.sock")
    );
    assert_eq!(config.proxy.admin, None);
    let web = &config.services["web"];
    assert_eq!(web.name, "web");
    assert_eq!(
        web.runtime,
        RuntimeSpec::Process {
            command: vec!["python3".into(), "app.py".into(), "{version}".into()]
        }
    );
    assert_eq!(web.instances, 2);
    assert_eq!(web.version.as_deref(), Some("1.0.0"));
    assert!(web.hosts.is_empty());
    assert_eq!(web.preview, Some("127.0.0.1:8081".parse().unwrap()));
    assert_eq!(web.env["GREETING"], "hi");
    assert_eq!(web.workdir, PathBuf::from("/srv/app"));
    assert_eq!(web.health, HealthSpec::default());
    assert_eq!(web.drain, DrainSpec::default());
}

#[test]
fn an_empty_file_gets_every_default_and_no_services() {
    let config = ok("");
    assert_eq!(config.state_dir, PathBuf::from("/srv/app/.teal"));
    assert_eq!(config.proxy.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.proxy.router, RouterKind::Builtin);
    assert_eq!(
        config.proxy.control,
        PathBuf::from("/srv/app/.teal/teal.sock")
    );
    assert_eq!(config.proxy.admin, None);
    assert!(config.services.is_empty());
}

#[test]
fn service_defaults() {
    let web = ok(WEB).services.remove("web").unwrap();
    assert_eq!(web.runtime.kind(), "process");
    assert_eq!(web.instances, 1);
    assert_eq!(web.version, None);
    assert!(web.hosts.is_empty() && web.env.is_empty());
    assert_eq!(web.preview, None);
    assert_eq!(web.health, HealthSpec::default());
    assert_eq!(web.drain, DrainSpec::default());
    assert_eq!(web.workdir, PathBuf::from("/srv/app"));
}

#[test]
fn explicit_values_override_defaults() {
    let config = ok(&format!(
        "[proxy]\nrouter = \"nginx\"\nadmin = \"127.0.0.1:9100\"\n{WEB}\
         [services.web.health]\npath = \"/healthz?full=1\"\ninterval = \"1s\"\ntimeout = \"500ms\"\ndeadline = \"2m\"\n\
         [services.web.drain]\ntimeout = \"0s\"\nkeep_previous = false\n"
    ));
    assert_eq!(config.proxy.router, RouterKind::Nginx);
    assert_eq!(config.proxy.admin, Some("127.0.0.1:9100".parse().unwrap()));
    let web = &config.services["web"];
    assert_eq!(web.health.path, "/healthz?full=1");
    assert_eq!(web.health.interval, Duration::from_secs(1));
    assert_eq!(web.health.timeout, Duration::from_millis(500));
    assert_eq!(web.health.deadline, Duration::from_secs(120));
    // A zero drain timeout is allowed: stop the old slot at once.
    assert_eq!(web.drain.timeout, Duration::ZERO);
    assert!(!web.drain.keep_previous);
}

// ---- paths ----------------------------------------------------------------

#[test]
fn relative_paths_are_relative_to_the_file() {
    let config = ok("state_dir = \"var/state\"\n[proxy]\ncontrol = \"run/teal.sock\"\n");
    assert_eq!(config.state_dir, PathBuf::from("/srv/app/var/state"));
    assert_eq!(
        config.proxy.control,
        PathBuf::from("/srv/app/run/teal.sock")
    );
}

#[test]
fn the_control_socket_defaults_to_inside_state_dir() {
    let config = ok("state_dir = \"/var/lib/teal\"\n");
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/teal"));
    assert_eq!(
        config.proxy.control,
        PathBuf::from("/var/lib/teal/teal.sock")
    );
}

#[test]
fn empty_paths_are_rejected() {
    assert_err(
        "state_dir = \"\"\n",
        1,
        13,
        &["state_dir must not be empty"],
    );
    assert_err(
        "[proxy]\ncontrol = \"\"\n",
        2,
        11,
        &["proxy.control must not be empty"],
    );
}

#[test]
fn a_control_socket_path_too_long_for_unix_sockets_is_rejected() {
    let long = "d".repeat(120);
    assert_err(
        &format!("state_dir = \"{long}\"\n"),
        1,
        13,
        &["unix sockets allow at most 107"],
    );
}

#[test]
fn load_resolves_paths_against_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let file = app.join("teal.toml");
    std::fs::write(&file, format!("state_dir = \"state\"\n{WEB}")).unwrap();
    let config = load(&file).unwrap();
    assert_eq!(config.path, file);
    assert_eq!(config.state_dir, app.join("state"));
    assert_eq!(config.proxy.control, app.join("state/teal.sock"));
    assert_eq!(config.services["web"].workdir, app);
}

#[test]
fn load_reports_a_missing_file_without_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teal.toml");
    let e = load(&file).unwrap_err();
    assert_eq!(e.path, file);
    assert_eq!(e.location, None);
    assert!(e.message.contains("no such file"), "{e}");
    assert!(e.message.contains("TEAL_CONFIG"), "{e}");
}

#[test]
fn load_reports_errors_with_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teal.toml");
    std::fs::write(&file, "[services.web]\ncomand = [\"./app\"]\n").unwrap();
    let e = load(&file).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:1: unknown key \"comand\" in [services.web]; did you mean \"command\"?; \
             expected one of: runtime, command, image, port, volumes, restart, log_driver, limits, network, keep_images, instances, version, hosts, preview, env, health, drain, hooks, verify, servers",
            file.display()
        )
    );
}

#[test]
fn the_default_path_is_teal_config_or_teal_toml() {
    assert_eq!(path_from_env(None), PathBuf::from("teal.toml"));
    assert_eq!(path_from_env(Some("".into())), PathBuf::from("teal.toml"));
    assert_eq!(
        path_from_env(Some("/etc/teal/x.toml".into())),
        PathBuf::from("/etc/teal/x.toml")
    );
}

// ---- syntax, types and unknown keys ----------------------------------------

#[test]
fn toml_syntax_errors_are_located() {
    let e = err("[proxy]\nlisten = \"127.0.0.1:8080\n");
    assert_eq!(e.location.map(|(line, _)| line), Some(2), "{e}");
    let e = err("state_dir = \n");
    assert_eq!(e.location.map(|(line, _)| line), Some(1), "{e}");
}

#[test]
fn type_errors_point_at_the_value() {
    assert_err(
        &format!("{WEB}instances = \"2\"\n"),
        3,
        13,
        &["invalid type", "string"],
    );
    assert_err(
        "[services.web]\ncommand = \"./app\"\n",
        2,
        11,
        &["invalid type"],
    );
    assert_err(
        &format!("{WEB}[services.web.drain]\nkeep_previous = \"yes\"\n"),
        4,
        17,
        &["invalid type"],
    );
}

#[test]
fn unknown_keys_name_the_key_and_section() {
    assert_err(
        "stat_dir = \"x\"\n",
        1,
        1,
        &[
            "unknown key \"stat_dir\" in the top level",
            "did you mean \"state_dir\"",
            "state_dir, proxy, services",
        ],
    );
    assert_err(
        "[proxy]\nlisten = \"127.0.0.1:1\"\n  tls = true\n",
        3,
        3,
        &[
            "unknown key \"tls\" in [proxy]",
            "expected one of: listen, router, control, admin, workers, upstream_idle_timeout, response_timeout, nginx",
        ],
    );
    assert_err(
        &format!("{WEB}[services.web.health]\npaht = \"/\"\n"),
        4,
        1,
        &[
            "unknown key \"paht\" in [services.web.health]",
            "did you mean \"path\"",
            "path, interval, timeout, deadline",
        ],
    );
    assert_err(
        &format!("{WEB}[services.web.drain]\nkeep = true\n"),
        4,
        1,
        &[
            "unknown key \"keep\" in [services.web.drain]",
            "timeout, keep_previous",
        ],
    );
}

#[test]
fn unknown_keys_in_inline_and_dotted_tables_are_found_too() {
    assert_err(
        &format!("{WEB}health = {{ path = \"/\", intervall = \"1s\" }}\n"),
        3,
        24,
        &[
            "unknown key \"intervall\" in [services.web.health]",
            "did you mean \"interval\"",
        ],
    );
    assert_err(
        "[services.web]\ncommand = [\"x\"]\ndrain.keep_prev = true\n",
        3,
        7,
        &["unknown key \"keep_prev\" in [services.web.drain]"],
    );
    assert_err(
        "[services.\"my app\"]\nfoo = 1\n",
        2,
        1,
        &["in [services.\"my app\"]"],
    );
}

#[test]
fn the_first_unknown_key_in_the_file_is_reported() {
    let e = err("[proxy]\nlistn = \"x\"\n[services.web]\nxx = 1\n");
    assert_eq!(e.location, Some((2, 1)), "{e}");
}

#[test]
fn unknown_key_lists_match_the_serde_types() {
    use super::keys::fields_of;
    use super::raw::*;
    assert_eq!(
        fields_of::<RawConfig>(),
        ["state_dir", "proxy", "services", "ssh", "hosts"]
    );
    assert_eq!(
        fields_of::<RawProxy>(),
        [
            "listen",
            "router",
            "control",
            "admin",
            "workers",
            "upstream_idle_timeout",
            "response_timeout",
            "nginx"
        ]
    );
    assert_eq!(
        fields_of::<RawHealth>(),
        ["path", "interval", "timeout", "deadline"]
    );
    assert_eq!(fields_of::<RawDrain>(), ["timeout", "keep_previous"]);
    assert_eq!(fields_of::<RawService>().len(), 20);
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(line_col("é = 1\nab", 8), (2, 2));
    assert_eq!(line_col("abc", 0), (1, 1));
    assert_eq!(line_col("abc", 99), (1, 4));
}

// ---- single values ----------------------------------------------------------

#[test]
fn bad_durations_are_rejected() {
    let health =
        |key: &str, value: &str| format!("{WEB}[services.web.health]\n{key} = \"{value}\"\n");
    assert_err(
        &health("interval", "fast"),
        4,
        12,
        &[
            "invalid duration \"fast\" for services.web.health.interval",
            "\"200ms\"",
        ],
    );
    assert_err(
        &health("timeout", "2"),
        4,
        11,
        &["invalid duration \"2\" for services.web.health.timeout"],
    );
    assert_err(
        &format!("{WEB}[services.web.drain]\ntimeout = \"-1s\"\n"),
        4,
        11,
        &["invalid duration \"-1s\" for services.web.drain.timeout"],
    );
    assert_eq!(
        ok(&health("deadline", "1m")).services["web"]
            .health
            .deadline,
        Duration::from_secs(60)
    );
}

#[test]
fn zero_health_durations_are_rejected() {
    for key in ["interval", "timeout", "deadline"] {
        let text = format!("{WEB}[services.web.health]\n{key} = \"0s\"\n");
        let col = key.len() + 4;
        assert_err(
            &text,
            4,
            col,
            &[&format!(
                "services.web.health.{key} must be greater than zero"
            )],
        );
    }
}

#[test]
fn bad_socket_addresses_are_rejected() {
    assert_err(
        "[proxy]\nlisten = \"localhost:8080\"\n",
        2,
        10,
        &[
            "invalid address \"localhost:8080\" for proxy.listen",
            "IP:PORT",
        ],
    );
    assert_err(
        "[proxy]\nadmin = \"127.0.0.1\"\n",
        2,
        9,
        &["invalid address \"127.0.0.1\" for proxy.admin"],
    );
    assert_err(
        &format!("{WEB}preview = \":8081\"\n"),
        3,
        11,
        &["invalid address \":8081\" for services.web.preview"],
    );
    assert_eq!(
        ok("[proxy]\nlisten = \"[::1]:80\"\n").proxy.listen,
        "[::1]:80".parse().unwrap()
    );
}

#[test]
fn instances_must_be_between_1_and_64() {
    for (n, col) in [("0", 13), ("65", 13), ("-1", 13)] {
        assert_err(
            &format!("{WEB}instances = {n}\n"),
            3,
            col,
            &[&format!(
                "services.web.instances must be between 1 and 64 (got {n})"
            )],
        );
    }
    assert_eq!(
        ok(&format!("{WEB}instances = 64\n")).services["web"].instances,
        64
    );
}

#[test]
fn the_process_runtime_needs_a_command() {
    assert_err(
        "[services.web]\ncommand = []\n",
        2,
        11,
        &["services.web.command is empty"],
    );
    assert_err(
        "[services.web]\ncommand = [\"\", \"x\"]\n",
        2,
        11,
        &["empty program name"],
    );
    assert_err(
        "[services.web]\ninstances = 2\n",
        1,
        11,
        &["service \"web\" uses the process runtime but has no command"],
    );
    assert_err(
        "[services.web]\nruntime = \"process\"\n",
        1,
        11,
        &["has no command"],
    );
}

#[test]
fn docker_settings_are_rejected_for_the_process_runtime() {
    assert_err(
        &format!("{WEB}image = \"app:1\"\n"),
        3,
        9,
        &["services.web.image is for the docker runtime"],
    );
    assert_err(
        &format!("{WEB}port = 80\n"),
        3,
        8,
        &["services.web.port is for the docker runtime"],
    );
}

#[test]
fn unknown_runtimes_and_routers_are_rejected() {
    assert_err(
        "[services.web]\nruntime = \"podman\"\n",
        2,
        11,
        &["unknown runtime \"podman\"; expected \"process\" or \"docker\""],
    );
    assert_err(
        "[proxy]\nrouter = \"haproxy\"\n",
        2,
        10,
        &["unknown router \"haproxy\"; expected \"builtin\" or \"nginx\""],
    );
}

#[test]
fn service_names_are_checked() {
    for name in ["Web", "-web", "_web", "web.api", "my app"] {
        let text = format!("[services.\"{name}\"]\ncommand = [\"x\"]\n");
        assert_err(&text, 1, 11, &[&format!("invalid service name {name:?}")]);
    }
    let long = "a".repeat(64);
    assert_err(
        &format!("[services.{long}]\ncommand = [\"x\"]\n"),
        1,
        11,
        &["invalid service name"],
    );
    let config = ok(&format!(
        "[services.{}]\ncommand = [\"x\"]\n[services.web_1-x]\ncommand = [\"x\"]\nhosts = [\"a\"]\n",
        "a".repeat(63)
    ));
    assert!(config.services.contains_key("web_1-x"));
}

#[test]
fn hosts_are_checked_and_lowercased() {
    for (host, reason) in [
        ("*.example.com", "wildcard hosts are not supported"),
        ("example.com:80", "without a port"),
        ("exa mple.com", "labels of letters"),
        ("-a.example.com", "labels of letters"),
        ("example.com.", "labels of letters"),
        ("a..b", "labels of letters"),
        ("", "it is empty"),
    ] {
        let text = format!("{WEB}hosts = [\"ok.example.com\", \"{host}\"]\n");
        assert_err(&text, 3, 28, &[&format!("invalid host {host:?}"), reason]);
    }
    let config = ok(&format!(
        "{WEB}hosts = [\"Example.COM\", \"localhost\", \"a-1.b2.io\"]\n"
    ));
    assert_eq!(
        config.services["web"].hosts,
        ["example.com", "localhost", "a-1.b2.io"]
    );
}

#[test]
fn health_paths_must_start_with_a_slash() {
    let text = format!("{WEB}[services.web.health]\npath = \"health\"\n");
    assert_err(
        &text,
        4,
        8,
        &["services.web.health.path must start with '/'"],
    );
    let text = format!("{WEB}[services.web.health]\npath = \"/a b\"\n");
    assert_err(&text, 4, 8, &["not a valid URL path"]);
}

#[test]
fn env_keys_must_be_valid_names() {
    for key in ["1X", "A-B", "A B", ""] {
        let text = format!("{WEB}env = {{ OK = \"1\", \"{key}\" = \"v\" }}\n");
        assert_err(
            &text,
            3,
            19,
            &[&format!("invalid environment variable name {key:?}")],
        );
    }
    for key in ["PORT", "TEAL_SLOT"] {
        let text = format!("{WEB}env = {{ {key} = \"v\" }}\n");
        assert_err(&text, 3, 9, &[&format!("{key} is set by teal")]);
    }
    let config = ok(&format!(
        "{WEB}[services.web.env]\n_X1 = \"a\"\nlower = \"b\"\n"
    ));
    assert_eq!(config.services["web"].env.len(), 2);
}

#[test]
fn versions_must_not_be_empty() {
    assert_err(
        &format!("{WEB}version = \" \"\n"),
        3,
        11,
        &["services.web.version must not be empty"],
    );
}

// ---- clashes ----------------------------------------------------------------

#[test]
fn only_one_service_can_be_the_default() {
    let text = "[services.web]\ncommand = [\"x\"]\n[services.api]\ncommand = [\"y\"]\n";
    assert_err(
        text,
        3,
        11,
        &[
            "services \"web\" and \"api\" both have no hosts",
            "only one service can be the default",
        ],
    );
    let config = ok(
        "[services.web]\ncommand = [\"x\"]\n[services.api]\ncommand = [\"y\"]\nhosts = [\"api.local\"]\n",
    );
    assert_eq!(config.services.len(), 2);
}

#[test]
fn a_host_belongs_to_one_service() {
    let text = "[services.web]\ncommand = [\"x\"]\nhosts = [\"a.io\"]\n[services.api]\ncommand = [\"y\"]\nhosts = [\"b.io\", \"A.io\"]\n";
    assert_err(
        text,
        6,
        18,
        &["host \"a.io\" is already routed to service \"web\""],
    );
    let text = format!("{WEB}hosts = [\"a.io\", \"a.io\"]\n");
    assert_err(
        &text,
        3,
        18,
        &["host \"a.io\" is listed twice in service \"web\""],
    );
}

#[test]
fn a_preview_needs_its_own_address() {
    assert_err(
        &format!("{WEB}preview = \"127.0.0.1:8080\"\n"),
        3,
        11,
        &["preview 127.0.0.1:8080 is already used by proxy.listen"],
    );
    assert_err(
        &format!("[proxy]\nlisten = \"127.0.0.1:9000\"\n{WEB}preview = \"127.0.0.1:9000\"\n"),
        5,
        11,
        &["already used by proxy.listen"],
    );
    assert_err(
        &format!("[proxy]\nadmin = \"127.0.0.1:9100\"\n{WEB}preview = \"127.0.0.1:9100\"\n"),
        5,
        11,
        &["already used by proxy.admin"],
    );
    let two = "[services.web]\ncommand = [\"x\"]\npreview = \"127.0.0.1:8081\"\n\
               [services.api]\ncommand = [\"y\"]\nhosts = [\"api\"]\npreview = \"127.0.0.1:8081\"\n";
    assert_err(
        two,
        7,
        11,
        &["preview 127.0.0.1:8081 is already used by the preview of service \"web\""],
    );
    assert_err(
        &format!("{WEB}preview = \"0.0.0.0:8080\"\n"),
        3,
        11,
        &["preview 0.0.0.0:8080 overlaps proxy.listen 127.0.0.1:8080"],
    );
}

#[test]
fn admin_needs_its_own_address() {
    assert_err(
        "[proxy]\nlisten = \"127.0.0.1:80\"\nadmin = \"127.0.0.1:80\"\n",
        3,
        9,
        &["proxy.admin 127.0.0.1:80 is already used by proxy.listen"],
    );
}

#[test]
fn port_zero_never_clashes() {
    let text = "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
                [services.web]\ncommand = [\"x\"]\npreview = \"127.0.0.1:0\"\n\
                [services.api]\ncommand = [\"y\"]\nhosts = [\"api\"]\npreview = \"127.0.0.1:0\"\n";
    let config = ok(text);
    assert_eq!(
        config.services["api"].preview,
        Some("127.0.0.1:0".parse().unwrap())
    );
}

#[test]
fn errors_display_as_file_line_column_message() {
    let e = parse("[services.web]\ncomand = 1\n", Path::new("teal.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("teal.toml:2:1: unknown key \"comand\" in [services.web]"),
        "{e}"
    );
}

#[test]
fn proxy_workers_are_bounded_and_default_to_one_per_core() {
    assert_eq!(ok("[proxy]\n").proxy.workers, None);
    assert_eq!(ok("[proxy]\nworkers = 4\n").proxy.workers, Some(4));
    for bad in ["0", "-1", "257"] {
        assert_err(
            &format!("[proxy]\nworkers = {bad}\n"),
            2,
            11,
            &[&format!(
                "proxy.workers must be between 1 and 256 (got {bad})"
            )],
        );
    }
}

#[test]
fn upstream_idle_timeout_is_a_builtin_setting_with_bounds() {
    assert_eq!(ok("[proxy]\n").proxy.upstream_idle_timeout, None);
    assert_eq!(
        ok("[proxy]\nupstream_idle_timeout = \"30s\"\n")
            .proxy
            .upstream_idle_timeout,
        Some(Duration::from_secs(30))
    );
    assert_err(
        "[proxy]\nupstream_idle_timeout = \"0s\"\n",
        2,
        25,
        &["proxy.upstream_idle_timeout must be greater than zero"],
    );
    assert_err(
        "[proxy]\nupstream_idle_timeout = \"2h\"\n",
        2,
        25,
        &["proxy.upstream_idle_timeout must be at most 1h (got 2h)"],
    );
    assert_err(
        "[proxy]\nupstream_idle_timeout = \"soon\"\n",
        2,
        25,
        &["invalid duration \"soon\" for proxy.upstream_idle_timeout"],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nupstream_idle_timeout = \"30s\"\n",
        3,
        25,
        &[
            "proxy.upstream_idle_timeout is for the builtin router",
            "proxy.nginx.keepalive_timeout",
        ],
    );
}

#[test]
fn response_timeout_is_a_builtin_setting_with_bounds() {
    assert_eq!(ok("[proxy]\n").proxy.response_timeout, None);
    assert_eq!(
        ok("[proxy]\nresponse_timeout = \"90s\"\n")
            .proxy
            .response_timeout,
        Some(Duration::from_secs(90))
    );
    assert_err(
        "[proxy]\nresponse_timeout = \"0s\"\n",
        2,
        20,
        &["proxy.response_timeout must be greater than zero"],
    );
    assert_err(
        "[proxy]\nresponse_timeout = \"2days\"\n",
        2,
        20,
        &["proxy.response_timeout must be at most 1day (got 2days)"],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nresponse_timeout = \"90s\"\n",
        3,
        20,
        &[
            "proxy.response_timeout is for the builtin router",
            "proxy_read_timeout is 300s",
        ],
    );
}
