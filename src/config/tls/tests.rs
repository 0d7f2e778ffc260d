//! `[proxy.tls]` and services' `tls` (`tls.rs`): real PEM files made with
//! rcgen in a temporary directory, each refusal checked for its message and
//! its line:column.

use std::path::Path;

use crate::config::fixtures::{assert_err, ok};

/// A self-signed certificate for `names` and its key, written to
/// `dir/NAME.pem` and `dir/NAME.key`; returns both paths as config text.
fn make_cert(dir: &Path, name: &str, names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

const TLS_PROXY: &str = "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\n";

fn service(hosts: &str, cert: &str, key: &str) -> String {
    format!(
        "[services.web]\ncommand = [\"./app\"]\nhosts = {hosts}\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}\n"
    )
}

#[test]
fn a_tls_service_with_its_own_files_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "web", &["example.com", "*.example.org"]);
    let text = format!(
        "{TLS_PROXY}{}",
        service("[\"example.com\", \"www.example.org\"]", &cert, &key)
    );
    let config = ok(&text);
    let tls = config.proxy.tls.expect("[proxy.tls]");
    assert_eq!(tls.listen, "127.0.0.1:8443".parse().unwrap());
    assert!(tls.redirect, "redirect is on by default");
    let files = config.services["web"].tls.clone().expect("tls files");
    assert_eq!(files.cert, Path::new(&cert));
    assert_eq!(files.key, Path::new(&key));

    let text = format!(
        "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\nredirect = false\n{}",
        service("[\"example.com\"]", &cert, &key)
    );
    assert!(!ok(&text).proxy.tls.unwrap().redirect);
}

const ACME_PROXY: &str =
    "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\nacme_email = \"ops@example.com\"\n";

fn acme_service(hosts: &str) -> String {
    format!("[services.web]\ncommand = [\"x\"]\nhosts = {hosts}\ntls = \"acme\"\n")
}

#[test]
fn an_acme_service_loads_with_the_defaults() {
    let config = ok(&format!("{ACME_PROXY}{}", acme_service("[\"a.example\"]")));
    let web = &config.services["web"];
    assert!(web.acme);
    assert_eq!(
        web.tls, None,
        "tls is filled by the daemon once it has a certificate"
    );
    let acme = config.proxy.tls.unwrap().acme.expect("acme settings");
    assert_eq!(acme.email, "ops@example.com");
    assert_eq!(acme.directory, crate::spec::LETS_ENCRYPT);
    assert_eq!(acme.ca, None);
    assert_eq!(acme.retry, crate::spec::DEFAULT_ACME_RETRY);
}

#[test]
fn acme_settings_are_read_and_acme_ca_is_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), made.cert.pem()).unwrap();
    let text = format!(
        "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\nacme_email = \"ops@example.com\"\nacme_directory = \"https://127.0.0.1:14000/dir\"\nacme_ca = \"ca.pem\"\nacme_retry = \"5s\"\n{}",
        acme_service("[\"a.example\"]")
    );
    let path = dir.path().join("teal.toml");
    std::fs::write(&path, text).unwrap();
    let config = crate::config::load(&path).unwrap();
    let acme = config.proxy.tls.unwrap().acme.unwrap();
    assert_eq!(acme.directory, "https://127.0.0.1:14000/dir");
    assert_eq!(acme.ca, Some(dir.path().join("ca.pem")));
    assert_eq!(acme.retry, std::time::Duration::from_secs(5));
}

#[test]
fn acme_needs_an_email() {
    assert_err(
        &format!("{TLS_PROXY}{}", acme_service("[\"a.example\"]")),
        1,
        1,
        &["services.web.tls = \"acme\" needs acme_email in [proxy.tls]"],
    );
    assert_err(
        &acme_service("[\"a.example\"]"),
        4,
        7,
        &["services.web.tls needs the TLS listener"],
    );
    assert_err(
        "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\nacme_retry = \"5s\"\n",
        3,
        14,
        &["the acme_* keys of [proxy.tls] need acme_email"],
    );
    assert_err(
        "[proxy.tls]\nlisten = \"127.0.0.1:8443\"\nacme_email = \"ops\"\n",
        3,
        14,
        &["proxy.tls.acme_email \"ops\" is not an email address"],
    );
}

#[test]
fn bad_acme_settings_are_refused() {
    let bad = |key_value: &str, col: usize, words: &[&str]| {
        assert_err(&format!("{ACME_PROXY}{key_value}\n"), 4, col, words);
    };
    bad(
        "acme_directory = \"http://acme.test/dir\"",
        18,
        &["proxy.tls.acme_directory \"http://acme.test/dir\" is not an https URL"],
    );
    bad(
        "acme_ca = \"/nonexistent/ca.pem\"",
        11,
        &["proxy.tls.acme_ca: cannot read /nonexistent/ca.pem"],
    );
    bad(
        "acme_retry = \"soon\"",
        14,
        &["invalid duration \"soon\" for proxy.tls.acme_retry"],
    );
    bad(
        "acme_retry = \"0s\"",
        14,
        &["proxy.tls.acme_retry must be greater than zero"],
    );
    bad(
        "acme_retry = \"2days\"",
        14,
        &["proxy.tls.acme_retry is at most 1day"],
    );
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    bad(
        &format!("acme_ca = \"{}\"", not_pem.display()),
        11,
        &["holds no PEM certificate"],
    );
}

#[test]
fn acme_needs_hosts_that_are_names_with_either_router() {
    assert_err(
        &format!("{ACME_PROXY}{}", acme_service("[]")),
        7,
        7,
        &["services.web.tls needs hosts"],
    );
    assert_err(
        &format!("{ACME_PROXY}{}", acme_service("[\"127.0.0.1\"]")),
        7,
        7,
        &["host \"127.0.0.1\" is an IP address"],
    );
    // Either router: the nginx router serves the files teal orders too.
    let nginx = "[proxy]\nlisten = \"127.0.0.1:8080\"\nrouter = \"nginx\"\n";
    assert!(
        ok(&format!(
            "{nginx}{ACME_PROXY}{}",
            acme_service("[\"a.example\"]")
        ))
        .services["web"]
            .acme
    );
    assert_err(
        &format!(
            "{TLS_PROXY}[services.web]\ncommand = [\"x\"]\nhosts = [\"a.example\"]\ntls = \"auto\"\n"
        ),
        6,
        7,
        &["unknown services.web.tls \"auto\"; expected \"acme\""],
    );
}

#[test]
fn tls_needs_hosts_and_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "web", &["example.com"]);
    assert_err(
        &format!("{TLS_PROXY}{}", service("[]", &cert, &key)),
        6,
        7,
        &["services.web.tls needs hosts"],
    );
    assert_err(
        &service("[\"example.com\"]", &cert, &key),
        4,
        7,
        &["services.web.tls needs the TLS listener", "[proxy.tls]"],
    );
    assert_err(
        "[proxy.tls]\nredirect = true\n",
        1,
        1,
        &["[proxy.tls] needs listen"],
    );
}

#[test]
fn the_tls_listener_needs_its_own_address() {
    assert_err(
        "[proxy]\nlisten = \"127.0.0.1:8443\"\n[proxy.tls]\nlisten = \"127.0.0.1:8443\"\n",
        4,
        10,
        &["proxy.tls.listen 127.0.0.1:8443 is already used by proxy.listen"],
    );
}

#[test]
fn unreadable_mismatched_or_foreign_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "web", &["example.com"]);
    let (_, other_key) = make_cert(dir.path(), "other", &["example.com"]);
    let missing = dir.path().join("missing.pem").display().to_string();
    // line 6: tls = { cert = "...", key = "..." }; cert's value at column 16.
    let key_col = 16 + cert.len() + 2 + 8;
    assert_err(
        &format!(
            "{TLS_PROXY}{}",
            service("[\"example.com\"]", &missing, &key)
        ),
        6,
        16,
        &["cannot read", "missing.pem"],
    );
    assert_err(
        &format!(
            "{TLS_PROXY}{}",
            service("[\"example.com\"]", &cert, &other_key)
        ),
        6,
        key_col,
        &["does not match the certificate"],
    );
    assert_err(
        &format!("{TLS_PROXY}{}", service("[\"example.com\"]", &key, &key)),
        6,
        16,
        &["holds no PEM certificate"],
    );
    assert_err(
        &format!(
            "{TLS_PROXY}{}",
            service("[\"example.com\", \"api.example.com\"]", &cert, &key)
        ),
        6,
        16,
        &["does not cover host \"api.example.com\""],
    );
}

#[test]
fn hosts_of_a_tls_service_are_names() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "web", &["example.com"]);
    assert_err(
        &format!("{TLS_PROXY}{}", service("[\"10.0.0.1\"]", &cert, &key)),
        6,
        7,
        &["host \"10.0.0.1\" is an IP address"],
    );
    assert_err(
        &format!(
            "{TLS_PROXY}{}",
            service("[\"bad_host.example\"]", &cert, &key)
        ),
        5,
        10,
        &["invalid host \"bad_host.example\""],
    );
}

/// The nginx router serves TLS too: `[proxy.tls]` and a service's files load
/// as with the builtin router; nginx needs a real TLS port and certificate
/// paths it can quote.
#[test]
fn the_nginx_router_takes_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "web", &["example.com"]);
    let nginx = "[proxy]\nlisten = \"127.0.0.1:8080\"\nrouter = \"nginx\"\n";
    let config = ok(&format!(
        "{nginx}{TLS_PROXY}{}",
        service("[\"example.com\"]", &cert, &key)
    ));
    assert_eq!(config.proxy.router, crate::spec::RouterKind::Nginx);
    let tls = config.proxy.tls.expect("[proxy.tls]");
    assert_eq!(tls.listen, "127.0.0.1:8443".parse().unwrap());
    assert!(tls.redirect);
    assert!(config.services["web"].tls.is_some());
    // [proxy.tls] alone, for services to come.
    assert!(ok(&format!("{nginx}{TLS_PROXY}")).proxy.tls.is_some());

    assert_err(
        &format!("{nginx}[proxy.tls]\nlisten = \"127.0.0.1:0\"\n"),
        5,
        10,
        &[
            "proxy.tls.listen 127.0.0.1:0 uses port 0",
            "router = \"nginx\"",
        ],
    );
    let quoted = dir.path().join("we\"b");
    std::fs::create_dir(&quoted).unwrap();
    let (cert, key) = make_cert(&quoted, "web", &["example.com"]);
    let text = format!(
        "{nginx}{TLS_PROXY}[services.web]\ncommand = [\"./app\"]\nhosts = [\"example.com\"]\ntls = {{ cert = {cert:?}, key = {key:?} }}\n"
    );
    assert_err(&text, 9, 7, &["services.web.tls", "contains a quote"]);
    // The builtin router has no such limit on paths.
    let text = format!(
        "{TLS_PROXY}[services.web]\ncommand = [\"./app\"]\nhosts = [\"example.com\"]\ntls = {{ cert = {cert:?}, key = {key:?} }}\n"
    );
    assert!(ok(&text).services["web"].tls.is_some());
}
