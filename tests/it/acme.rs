//! `tls = "acme"` end to end: the real `teal serve` binary orders its
//! certificates from a real Pebble (`support::pebble`), which validates
//! HTTP-01 against teal's plain listener. A full order (the certificate
//! chains to pebble's root, ALPN h2, the redirect once it is there), no new
//! order across a restart and `teal serve --upgrade`, a refused name that
//! leaves the other service alone and backs off, and TLS clients under load
//! across 20 deploys, a rollback and a renewal with no failed request.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::pebble::{self, Pebble, PebbleSpec};
use crate::support::proxy::{Conn, raw_exchange};
use crate::support::served::{Served, demo_web_toml, logs, run, teal_ok, terminated, upgraded};
use crate::support::tls::{connect_trusting, served_cert};
use crate::support::tls_load::TlsLoad;
use crate::support::{eventually, free_addr};

/// A teal (plain and TLS listeners on fixed loopback ports) and the pebble
/// that validates against its plain one.
struct Lab {
    dir: tempfile::TempDir,
    plain: SocketAddr,
    tls: SocketAddr,
    pebble: Pebble,
}

impl Lab {
    async fn start(pebble_spec: PebbleSpec) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let plain = free_addr();
        let spec = PebbleSpec {
            http_port: plain.port(),
            ..pebble_spec
        };
        let pebble = Pebble::start(dir.path(), &spec).await;
        Lab {
            dir,
            plain,
            tls: free_addr(),
            pebble,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `teal.toml`: the demo app as `web` for `web.test`, plus
    /// `extra` services, every one with `tls = "acme"`, builtin router.
    fn write_config(&self, retry: &str, extra: &str) {
        self.write_config_with("", "127.0.0.1:0", retry, extra);
    }

    /// [`Lab::write_config`] with `proxy` lines added to `[proxy]` and web's
    /// preview on `preview`.
    fn write_config_with(&self, proxy: &str, preview: &str, retry: &str, extra: &str) {
        let web = acme_service(&demo_web_toml(preview), "web.test");
        let text = format!(
            "state_dir = \"state\"\n\n[proxy]\nlisten = \"{}\"\n{proxy}\n[proxy.tls]\nlisten = \"{}\"\n{}\n{web}\n{extra}",
            self.plain,
            self.tls,
            self.pebble.acme_toml(retry),
        );
        std::fs::write(self.path().join("teal.toml"), text).unwrap();
    }

    async fn connect(&self, name: &str, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        connect_trusting(&self.pebble.root, self.tls, name, alpn).await
    }

    /// Waits (bounded) until `name` is served a certificate chaining to
    /// pebble's root other than `not`; returns it.
    async fn cert_for(
        &self,
        name: &str,
        not: Option<&CertificateDer<'static>>,
    ) -> CertificateDer<'static> {
        let mut got = None;
        let served = eventually(Duration::from_secs(90), async || {
            got = self
                .connect(name, &[b"http/1.1"])
                .await
                .ok()
                .map(|tls| served_cert(&tls))
                .filter(|cert| Some(cert) != not);
            got.is_some()
        })
        .await;
        assert!(
            served,
            "a certificate for {name}\n{}\npebble:\n{}",
            logs(self.path()),
            self.pebble.log_text()
        );
        got.unwrap()
    }

    /// Waits (bounded, 60 s) until `service`'s certificate status satisfies
    /// `check`; returns it.
    async fn status_when(
        &self,
        service: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut status = serde_json::Value::Null;
        let seen = eventually(Duration::from_secs(60), async || {
            status = self.cert_status(service);
            check(&status)
        })
        .await;
        assert!(seen, "{service}: {status}");
        status
    }

    /// `teal status --json`'s certificate entry of `service`.
    fn cert_status(&self, service: &str) -> serde_json::Value {
        let out = run(self.path(), &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        status["certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["service"] == service)
            .cloned()
            .unwrap_or_else(|| panic!("no certificate status for {service}: {status}"))
    }
}

/// `service` (a `[services.X]` table of `demo_web_toml`'s form) for `host`
/// with `tls = "acme"`.
fn acme_service(service: &str, host: &str) -> String {
    service.replace(
        "version = \"1.0.0\"\n",
        &format!("version = \"1.0.0\"\nhosts = [\"{host}\"]\ntls = \"acme\"\n"),
    )
}

/// The serial of a DER certificate, as teal's status writes it (hex).
fn serial(cert: &CertificateDer<'_>) -> String {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).unwrap();
    parsed.raw_serial_as_string().replace(':', "")
}

fn seconds(stamp: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(stamp.as_str().expect("a time")).unwrap()
}

/// A lab whose teal serves `web` with its first certificate (returned);
/// None when pebble is missing outside CI.
async fn serving_web(pebble_spec: PebbleSpec) -> Option<(Lab, Served, CertificateDer<'static>)> {
    if !pebble::required() {
        return None;
    }
    let lab = Lab::start(pebble_spec).await;
    lab.write_config("2s", "");
    let daemon = Served::start(lab.path()).await;
    teal_ok(lab.path(), &["deploy", "web"]).await;
    let cert = lab.cert_for("web.test", None).await;
    Some((lab, daemon, cert))
}

/// A lab whose teal serves `web` (web.test) with its certificate and `api`
/// for `api_host`, both ACME, retries after `retry`; and web's certificate.
/// None when pebble is missing outside CI.
async fn serving_web_and_api(
    pebble_spec: PebbleSpec,
    api_host: &str,
    retry: &str,
) -> Option<(Lab, Served, CertificateDer<'static>)> {
    if !pebble::required() {
        return None;
    }
    let lab = Lab::start(pebble_spec).await;
    let api = acme_service(
        &demo_web_toml("127.0.0.1:0").replace("[services.web", "[services.api"),
        api_host,
    );
    lab.write_config(retry, &api);
    let daemon = Served::start(lab.path()).await;
    teal_ok(lab.path(), &["deploy", "api"]).await;
    teal_ok(lab.path(), &["deploy", "web"]).await;
    let cert = lab.cert_for("web.test", None).await;
    Some((lab, daemon, cert))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_order_serves_pebbles_certificate_with_h2_and_the_redirect() {
    // Verified against pebble's root only: the chain is pebble's.
    let Some((lab, daemon, cert)) = serving_web(PebbleSpec::default()).await else {
        return;
    };
    let h2 = lab
        .connect("web.test", &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    let mut conn = Conn::over(tls).await.unwrap();
    let reply = conn.get("web.test", "/").await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Plain HTTP now redirects; a challenge path teal is not validating
    // goes to the app, as before.
    let reply = raw_exchange(
        lab.plain,
        b"GET /x HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    assert!(
        reply.contains(&format!("location: https://web.test:{}/x", lab.tls.port())),
        "{reply}"
    );
    let reply = raw_exchange(
        lab.plain,
        b"GET /.well-known/acme-challenge/unknown HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!reply.starts_with("HTTP/1.1 308"), "{reply}");

    let status = lab.cert_status("web");
    assert_eq!(status["serial"].as_str(), Some(serial(&cert).as_str()));
    assert_eq!(status["names"], serde_json::json!(["web.test"]));
    assert!(
        status["issuer"].as_str().unwrap().contains("Pebble"),
        "{status}"
    );
    assert!(status["last_error"].is_null(), "{status}");
    assert!(status["not_after"].is_string(), "{status}");
    let human = run(lab.path(), &["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("certificates (ACME)"), "{human}");
    assert!(human.contains(&serial(&cert)), "{human}");

    assert_eq!(lab.pebble.orders(), 1, "{}", lab.pebble.log_text());
    let key = lab.path().join("state/acme/certs/web/key.pem");
    let account = lab.path().join("state/acme/account.json");
    for file in [&key, &account] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    terminated(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_and_an_upgrade_serve_the_stored_certificate_without_a_new_order() {
    let Some((lab, daemon, first)) = serving_web(PebbleSpec::default()).await else {
        return;
    };
    assert_eq!(lab.pebble.orders(), 1);

    terminated(daemon).await;
    let daemon = Served::start(lab.path()).await;
    // At once: the first connection after the restart gets it.
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    assert!(
        served_cert(&tls) == first,
        "the same certificate after a restart"
    );

    let daemon = upgraded(lab.path(), daemon).await;
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    assert!(
        served_cert(&tls) == first,
        "the same certificate after an upgrade"
    );
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    // Time for a wrongly scheduled order to happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lab.pebble.orders(), 1, "{}", lab.pebble.log_text());
    assert!(lab.cert_status("web")["last_attempt"].is_null());
    terminated(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_name_backs_off_and_leaves_the_other_service_alone() {
    let spec = PebbleSpec {
        blocked: vec!["blocked.test".into()],
        ..PebbleSpec::default()
    };
    let Some((lab, daemon, _)) = serving_web_and_api(spec, "blocked.test", "3s").await else {
        return;
    };

    // api: the error in status, no certificate, plain HTTP served (no
    // redirect to a certificate it does not have).
    let first = lab
        .status_when("api", |s| s["last_error"].is_string())
        .await;
    assert!(first["serial"].is_null(), "{first}");
    assert!(lab.connect("blocked.test", &[b"http/1.1"]).await.is_err());
    let reply = raw_exchange(
        lab.plain,
        b"GET / HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // The retries back off: 3 s, then 6 s (times are whole seconds).
    let mut attempts = vec![seconds(&first["last_attempt"])];
    let mut latest = first.clone();
    for _ in 0..2 {
        let before = latest["last_attempt"].clone();
        latest = lab
            .status_when("api", |s| s["last_attempt"] != before)
            .await;
        attempts.push(seconds(&latest["last_attempt"]));
    }
    let gap = |i: usize| attempts[i + 1].duration_since(attempts[i]).unwrap();
    assert!(gap(0) >= Duration::from_secs(2), "{attempts:?}");
    assert!(gap(1) >= Duration::from_secs(5), "{attempts:?}");
    assert!(latest["last_error"].is_string(), "{latest}");

    // web kept its certificate and its routes throughout.
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    assert!(lab.cert_status("web")["last_error"].is_null());
    terminated(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_a_rollback_and_a_renewal_under_tls_load_fail_no_request() {
    let spec = PebbleSpec {
        validity_secs: Some(30),
        ..PebbleSpec::default()
    };
    let Some((lab, daemon, first)) = serving_web(spec).await else {
        return;
    };
    // Keep-alive clients and clients with a new connection per request.
    let load = TlsLoad::start(&lab.pebble.root, lab.tls, "web.test", 3, 2);

    // Deploys go on until there were 20 and the certificate was renewed
    // (a third of 30 s left: around 20 s after issuance) two deploys ago,
    // so the renewal falls among them; then a rollback.
    let mut renewed_at = None;
    let mut deploys = 0;
    let started = std::time::Instant::now();
    while deploys < 20 || renewed_at.is_none_or(|at| deploys < at + 2) {
        assert!(
            started.elapsed() < Duration::from_secs(60) && deploys < 200,
            "no renewal after {deploys} deploys"
        );
        let version = format!("2.0.{deploys}");
        teal_ok(lab.path(), &["deploy", "web", "--version", &version]).await;
        deploys += 1;
        if renewed_at.is_none() {
            let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
            if served_cert(&tls) != first {
                renewed_at = Some(deploys);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    teal_ok(lab.path(), &["rollback", "web"]).await;
    eprintln!("{deploys} deploys and a rollback, renewed after deploy {renewed_at:?}");
    let renewed = lab.cert_for("web.test", Some(&first)).await;
    assert_ne!(serial(&renewed), serial(&first));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = load.finish().await;
    assert_eq!(counts.failed, 0, "no failed request\n{}", logs(lab.path()));
    assert_eq!(
        counts.reconnects, 0,
        "every keep-alive client kept its connection"
    );
    assert!(counts.ok > 100, "the load ran: {counts:?}");
    assert_eq!(
        lab.cert_status("web")["serial"].as_str(),
        Some(serial(&renewed).as_str())
    );
    // Deploys order nothing: the first certificate and its renewal.
    assert_eq!(lab.pebble.orders(), 2, "{}", lab.pebble.log_text());
    terminated(daemon).await;
}

/// The ACME server gone at renewal time: the service keeps serving the
/// certificate it has, status says why, and the retry waits `acme_retry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_renewal_keeps_the_current_certificate() {
    let spec = PebbleSpec {
        validity_secs: Some(30),
        ..PebbleSpec::default()
    };
    let Some((mut lab, daemon, first)) = serving_web(spec).await else {
        return;
    };
    lab.pebble.stop();
    let status = lab
        .status_when("web", |s| s["last_error"].is_string())
        .await;
    assert_eq!(status["serial"].as_str(), Some(serial(&first).as_str()));
    let wait = seconds(&status["next_attempt"])
        .duration_since(seconds(&status["last_attempt"]))
        .unwrap();
    assert!(
        wait >= Duration::from_secs(1),
        "the retry backs off: {status}"
    );
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    assert!(
        served_cert(&tls) == first,
        "the current certificate, still served"
    );
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    terminated(daemon).await;
}

/// kamal-proxy dropped every app's routes on restart for one unreadable
/// certificate (basecamp/kamal-proxy#233): here only its own service is
/// served without one (plain HTTP) until it is ordered again; the other is
/// served its stored certificate at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_certificate_affects_only_its_own_service() {
    let Some((lab, daemon, web)) =
        serving_web_and_api(PebbleSpec::default(), "api.test", "2s").await
    else {
        return;
    };
    let api = lab.cert_for("api.test", None).await;
    terminated(daemon).await;
    assert_eq!(lab.pebble.orders(), 2);

    std::fs::write(lab.path().join("state/acme/certs/api/key.pem"), "garbage").unwrap();
    let daemon = Served::start(lab.path()).await;
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    assert!(
        served_cert(&tls) == web,
        "web: its stored certificate at once"
    );
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    // api gets a new certificate, and web's routes never moved.
    let renewed = lab.cert_for("api.test", Some(&api)).await;
    assert_ne!(serial(&renewed), serial(&api));
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    assert_eq!(lab.pebble.orders(), 3, "{}", lab.pebble.log_text());
    terminated(daemon).await;
}

/// The same layer over the nginx router: nginx serves the challenge from
/// the file teal writes, then the certificate teal stored, and a renewal is
/// a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_nginx_router_a_certificate_is_ordered_served_and_renewed() {
    if !pebble::required() || !crate::support::nginx::required() {
        return;
    }
    let lab = Lab::start(PebbleSpec {
        validity_secs: Some(30),
        ..PebbleSpec::default()
    })
    .await;
    let preview = free_addr().to_string();
    lab.write_config_with("router = \"nginx\"\n", &preview, "2s", "");
    let daemon = Served::start(lab.path()).await;
    teal_ok(lab.path(), &["deploy", "web"]).await;
    let first = lab.cert_for("web.test", None).await;
    let tls = lab.connect("web.test", &[b"http/1.1"]).await.unwrap();
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    let renewed = lab.cert_for("web.test", Some(&first)).await;
    assert_ne!(serial(&renewed), serial(&first));
    assert_eq!(
        lab.cert_status("web")["serial"].as_str(),
        Some(serial(&renewed).as_str())
    );
    assert_eq!(lab.pebble.orders(), 2, "{}", lab.pebble.log_text());
    terminated(daemon).await;
}

#[test]
fn acme_without_an_email_is_a_config_error_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let web = acme_service(&demo_web_toml("127.0.0.1:0"), "web.test");
    let text = format!(
        "state_dir = \"state\"\n\n[proxy]\nlisten = \"127.0.0.1:0\"\n\n[proxy.tls]\nlisten = \"127.0.0.1:0\"\n\n{web}"
    );
    std::fs::write(dir.path().join("teal.toml"), text).unwrap();
    let out = run(dir.path(), &["deploy", "web"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("teal.toml:6:1"), "{stderr}");
    assert!(
        stderr.contains("needs acme_email in [proxy.tls]"),
        "{stderr}"
    );
    assert!(!dir.path().join("state").exists(), "nothing was created");
}
