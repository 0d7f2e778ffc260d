//! Single values (`values.rs`): paths, durations, addresses, service names,
//! hosts, health paths and environment keys, each error checked for its message
//! and its line:column.

use std::time::Duration;

use crate::config::fixtures::{WEB, assert_err, ok};

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
