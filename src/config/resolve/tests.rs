//! Raw → validated (`resolve.rs`): every default, paths resolved against the
//! file, the proxy's settings, a service's runtime, instances and version, each
//! error checked for its message and its line:column.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::fixtures::{FILE, WEB, assert_err, ok};
use crate::spec::{DrainSpec, HealthSpec, RouterKind, RuntimeSpec, Underscores};

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
fn versions_must_not_be_empty() {
    assert_err(
        &format!("{WEB}version = \" \"\n"),
        3,
        11,
        &["services.web.version must not be empty"],
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

#[test]
fn body_buffer_is_a_builtin_size_with_bounds() {
    assert_eq!(ok("[proxy]\n").proxy.body_buffer, None);
    assert_eq!(
        ok("[proxy]\nbody_buffer = \"1MiB\"\n").proxy.body_buffer,
        Some(1 << 20)
    );
    assert_eq!(
        ok("[proxy]\nbody_buffer = \"0\"\n").proxy.body_buffer,
        Some(0)
    );
    assert_err(
        "[proxy]\nbody_buffer = \"lots\"\n",
        2,
        15,
        &["invalid size \"lots\" for proxy.body_buffer", "\"64KiB\""],
    );
    assert_err(
        "[proxy]\nbody_buffer = \"1GiB\"\n",
        2,
        15,
        &["proxy.body_buffer must be at most 16MiB (got 1GiB)"],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nbody_buffer = \"1MiB\"\n",
        3,
        15,
        &[
            "proxy.body_buffer is for the builtin router",
            "client_body_buffer_size",
        ],
    );
}

#[test]
fn body_and_send_timeouts_are_builtin_settings_with_bounds() {
    let proxy = ok("[proxy]\n").proxy;
    assert_eq!((proxy.body_timeout, proxy.send_timeout), (None, None));
    let proxy = ok("[proxy]\nbody_timeout = \"5s\"\nsend_timeout = \"2m\"\n").proxy;
    assert_eq!(proxy.body_timeout, Some(Duration::from_secs(5)));
    assert_eq!(proxy.send_timeout, Some(Duration::from_secs(120)));
    assert_err(
        "[proxy]\nbody_timeout = \"0s\"\n",
        2,
        16,
        &["proxy.body_timeout must be greater than zero"],
    );
    assert_err(
        "[proxy]\nsend_timeout = \"2days\"\n",
        2,
        16,
        &["proxy.send_timeout must be at most 1day (got 2days)"],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nsend_timeout = \"90s\"\n",
        3,
        16,
        &[
            "proxy.send_timeout is for the builtin router",
            "proxy_send_timeout are 60s",
        ],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nbody_timeout = \"90s\"\n",
        3,
        16,
        &[
            "proxy.body_timeout is for the builtin router",
            "client_body_timeout is 60s",
        ],
    );
}

#[test]
fn max_concurrent_streams_is_a_builtin_setting_with_bounds() {
    assert_eq!(ok("[proxy]\n").proxy.max_concurrent_streams, None);
    assert_eq!(
        ok("[proxy]\nmax_concurrent_streams = 32\n")
            .proxy
            .max_concurrent_streams,
        Some(32)
    );
    for (value, column) in [("0", 26), ("-1", 26), ("10001", 26)] {
        assert_err(
            &format!("[proxy]\nmax_concurrent_streams = {value}\n"),
            2,
            column,
            &[&format!(
                "proxy.max_concurrent_streams must be between 1 and 10000 (got {value})"
            )],
        );
    }
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nmax_concurrent_streams = 32\n",
        3,
        26,
        &[
            "proxy.max_concurrent_streams is for the builtin router",
            "does not serve HTTP/2",
        ],
    );
}

#[test]
fn underscores_in_headers_is_a_builtin_setting_with_three_values() {
    assert_eq!(ok("[proxy]\n").proxy.underscores_in_headers, None);
    for (text, value) in [
        ("drop", Underscores::Drop),
        ("pass", Underscores::Pass),
        ("refuse", Underscores::Refuse),
    ] {
        let config = ok(&format!("[proxy]\nunderscores_in_headers = \"{text}\"\n"));
        assert_eq!(config.proxy.underscores_in_headers, Some(value));
    }
    assert_err(
        "[proxy]\nunderscores_in_headers = \"on\"\n",
        2,
        26,
        &[
            "unknown proxy.underscores_in_headers \"on\"",
            "expected \"drop\" (the default), \"pass\" or \"refuse\"",
        ],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nunderscores_in_headers = \"pass\"\n",
        3,
        26,
        &["proxy.underscores_in_headers is for the builtin router"],
    );
}

#[test]
fn access_log_is_a_file_beside_teal_toml_or_stdout_and_builtin_only() {
    use crate::spec::AccessLogTarget;
    assert_eq!(ok("[proxy]\n").proxy.access_log, None);
    let base = std::path::Path::new(FILE).parent().unwrap();
    assert_eq!(
        ok("[proxy]\naccess_log = \"logs/access.log\"\n")
            .proxy
            .access_log,
        Some(AccessLogTarget::File(base.join("logs/access.log")))
    );
    assert_eq!(
        ok("[proxy]\naccess_log = \"stdout\"\n").proxy.access_log,
        Some(AccessLogTarget::Stdout)
    );
    assert_err(
        "[proxy]\naccess_log = \"\"\n",
        2,
        14,
        &["proxy.access_log must not be empty"],
    );
    assert_err(
        "[proxy]\nrouter = \"nginx\"\naccess_log = \"a.log\"\n",
        3,
        14,
        &[
            "proxy.access_log is for the builtin router",
            "nginx writes its own access log",
        ],
    );
}
