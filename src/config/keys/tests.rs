//! Unknown keys (`keys.rs`): named with their section and the closest known key,
//! found in inline and dotted tables too, the first one in the file reported,
//! and the known keys the same as the serde types'.

use crate::config::fixtures::{WEB, assert_err, err};

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
        "[proxy]\nlisten = \"127.0.0.1:1\"\n  ssl = true\n",
        3,
        3,
        &[
            "unknown key \"ssl\" in [proxy]",
            "expected one of: listen, router, control, admin, workers, upstream_idle_timeout, response_timeout, body_buffer, body_timeout, send_timeout, max_concurrent_streams, underscores_in_headers, max_body, error_pages, access_log, nginx, tls",
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
    use super::fields_of;
    use crate::config::raw::*;
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
            "body_buffer",
            "body_timeout",
            "send_timeout",
            "max_concurrent_streams",
            "underscores_in_headers",
            "max_body",
            "error_pages",
            "access_log",
            "nginx",
            "tls"
        ]
    );
    assert_eq!(
        fields_of::<RawProxyTls>(),
        [
            "listen",
            "redirect",
            "acme_email",
            "acme_directory",
            "acme_ca",
            "acme_retry"
        ]
    );
    assert_eq!(fields_of::<RawTlsFiles>(), ["cert", "key"]);
    assert_eq!(
        fields_of::<RawHealth>(),
        ["path", "interval", "timeout", "deadline", "grpc"]
    );
    assert_eq!(fields_of::<RawDrain>(), ["timeout", "keep_previous"]);
    assert_eq!(fields_of::<RawService>().len(), 26);
}

#[test]
fn misspelt_tls_keys_get_a_suggestion() {
    assert_err(
        "[proxy.tls]\nlisten = \"127.0.0.1:0\"\nacme_mail = \"ops@example.com\"\n",
        3,
        1,
        &[
            "unknown key \"acme_mail\" in [proxy.tls]",
            "did you mean \"acme_email\"",
            "expected one of: listen, redirect, acme_email, acme_directory, acme_ca, acme_retry",
        ],
    );
    assert_err(
        &format!("{WEB}tls = {{ cert = \"c.pem\", kye = \"k.pem\" }}\n"),
        3,
        25,
        &[
            "unknown key \"kye\" in services.web.tls",
            "did you mean \"key\"",
        ],
    );
}
