//! Clashes between services and listeners (`conflicts.rs`): one default service,
//! each host routed to one service, each listener on its own address, port 0
//! never clashing.

use crate::config::fixtures::{WEB, assert_err, ok};

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
