//! The configs the nginx router generates pass the real `nginx -t`: no services,
//! one service, several services with hosts, previews (staged and empty), process
//! and docker instances, system-mode `teal.conf` inside a distribution-style
//! `nginx.conf`, and an `include`; TLS services with their certificates, the
//! redirect, the default server that refuses unknown names and the ACME
//! challenge location. Names that could inject a directive are refused.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use teal::router::nginx::render::{MainSettings, Settings, TlsSettings, render_http, render_main};
use teal::router::nginx::routes::RouteSet;
use teal::router::{Backend, RouterError};
use teal::slot::Slot;
use teal::spec::{NginxSpec, ServiceSpec};

const LISTEN: &str = "127.0.0.1:18080";

fn settings(include: Option<&Path>) -> Settings {
    Settings {
        listen: LISTEN.parse().unwrap(),
        keepalive_timeout: Duration::ZERO,
        include: include.map(Path::to_path_buf),
        tls: None,
        webroot: "/srv/app/.teal/nginx/acme".into(),
        http2_directive: false,
    }
}

fn backend(slot: Slot, version: &str, addrs: &[&str]) -> Backend {
    Backend {
        slot,
        version: version.into(),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

fn service(name: &str, hosts: &[&str], preview: Option<&str>) -> ServiceSpec {
    let mut spec = demo_service(name, Path::new("/srv/app"), 2);
    spec.hosts = hosts.iter().map(|h| h.to_string()).collect();
    spec.preview = preview.map(|p| p.parse::<SocketAddr>().unwrap());
    spec
}

/// Writes the managed `nginx.conf` for `routes` into `dir` and runs `nginx -t` on it.
fn check_managed(dir: &Path, routes: &RouteSet, settings: &Settings) -> String {
    let main = MainSettings {
        dir: dir.join("nginx"),
        workers: Some(2),
        user: None,
        temp: dir.join("nginx").join("tmp"),
    };
    std::fs::create_dir_all(dir.join("nginx").join("tmp")).unwrap();
    let text = render_main(&main, routes, settings);
    let file = dir.join("nginx").join("nginx.conf");
    std::fs::write(&file, &text).unwrap();
    nginx_t(&file, &dir.join("nginx"));
    text
}

fn nginx_t(file: &Path, prefix: &Path) {
    let binary = teal::router::nginx::locate(&NginxSpec::default()).expect("nginx");
    let out = Command::new(binary)
        .arg("-t")
        .arg("-c")
        .arg(file)
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .arg("-e")
        .arg(prefix.join("error.log"))
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t failed:\n{}\n--- config ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

#[test]
fn no_services_answer_503() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = check_managed(dir.path(), &RouteSet::default(), &settings(None));
    assert!(text.contains("return 503;"), "{text}");
    assert!(!text.contains("upstream "), "{text}");
}

#[test]
fn one_service_with_process_instances() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let web = service("web", &[], None);
    let live = backend(Slot::Blue, "1.0.0", &["127.0.0.1:40001", "127.0.0.1:40002"]);
    let routes = RouteSet::default()
        .with(&web, Some(live), None, &settings(None))
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(None));
    assert!(text.contains("upstream teal_web_blue {"), "{text}");
    assert!(text.contains("server 127.0.0.1:40001;"), "{text}");
    assert!(text.contains("keepalive 32;"), "{text}");
    assert!(text.contains("proxy_pass http://teal_web_blue;"), "{text}");
    assert!(text.contains(&format!("listen {LISTEN} default_server;")));
    assert!(text.contains("proxy_http_version 1.1;"), "{text}");
    assert!(text.contains("X-Forwarded-For $proxy_add_x_forwarded_for"));
    assert!(text.contains("Connection $teal_connection_upgrade"));
    // The drain timeout (5 s in demo_service) becomes the old workers' grace.
    assert!(text.contains("worker_shutdown_timeout 5000ms;"), "{text}");
    assert!(!text.contains("1.0.0"), "versions never reach the config");
}

/// `max_body` becomes `client_max_body_size` in the service's locations
/// (the servers say 0: no limit for a service without one).
#[test]
fn max_body_becomes_client_max_body_size() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut web = service("web", &[], Some("127.0.0.1:18081"));
    web.policy.max_body = Some(10 << 20);
    let api = service("api", &["api.test"], None);
    let live = backend(Slot::Blue, "1.0.0", &["127.0.0.1:40001"]);
    let routes = RouteSet::default()
        .with(
            &web,
            Some(live.clone()),
            Some(live.clone()),
            &settings(None),
        )
        .unwrap()
        .with(&api, Some(live), None, &settings(None))
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(None));
    // Production's `/` and app fallback, and the preview's `/`.
    assert_eq!(
        text.matches("client_max_body_size 10485760;").count(),
        3,
        "{text}"
    );
    assert!(text.contains("client_max_body_size 0;"), "{text}");
}

#[test]
fn several_services_with_hosts_and_previews() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let long_host = format!(
        "{}.example.com",
        ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".")
    );
    assert!(long_host.len() > 200);
    let api = service(
        "api",
        &["API.example.com", &long_host],
        Some("127.0.0.1:18081"),
    );
    let admin = service("admin-ui", &["admin.example.com"], Some("127.0.0.1:18082"));
    let web = service("web", &[], Some("127.0.0.1:18083"));
    let routes = RouteSet::default()
        .with(
            &api,
            Some(backend(Slot::Green, "2", &["127.0.0.1:40011"])),
            Some(backend(
                Slot::Blue,
                "1",
                &["127.0.0.1:40012", "127.0.0.1:40013"],
            )),
            &settings(None),
        )
        .and_then(|r| {
            r.with(
                &admin,
                Some(backend(Slot::Blue, "1", &["127.0.0.1:40021"])),
                None,
                &settings(None),
            )
        })
        .and_then(|r| r.with(&web, None, None, &settings(None)))
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(None));
    assert!(
        text.contains(" api.example.com;"),
        "hosts are lowercased: {text}"
    );
    assert!(text.contains("listen 127.0.0.1:18081 default_server;"));
    assert!(text.contains("upstream teal_api_green {"));
    assert!(text.contains("upstream teal_api_blue {"));
    assert!(text.contains("upstream teal_admin-ui_blue {"));
    // web has nothing live (production, its challenge fallback and preview
    // answer 503), nor has admin-ui's preview.
    assert_eq!(text.matches("return 503;").count(), 4, "{text}");
}

#[test]
fn no_default_service_means_404_for_unknown_hosts() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = service("api", &["api.example.com"], None);
    let routes = RouteSet::default()
        .with(
            &api,
            Some(backend(Slot::Blue, "1", &["127.0.0.1:40011"])),
            None,
            &settings(None),
        )
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(None));
    assert!(text.contains("return 404;"), "{text}");
}

#[test]
fn docker_instances_and_ipv6_addresses() {
    if !nginx::required() {
        return;
    }
    // The docker runtime publishes containers on 127.0.0.1 ephemeral ports: to
    // nginx they are addresses like any other, in the same upstream form.
    let dir = tempfile::tempdir().unwrap();
    let web = service("web", &[], Some("[::1]:18084"));
    let routes = RouteSet::default()
        .with(
            &web,
            Some(backend(
                Slot::Blue,
                "1",
                &["127.0.0.1:49153", "127.0.0.1:49154"],
            )),
            Some(backend(Slot::Green, "2", &["[::1]:49155"])),
            &settings(None),
        )
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(None));
    assert!(text.contains("server [::1]:49155;"), "{text}");
    assert!(
        text.contains("listen [::1]:18084 default_server;"),
        "{text}"
    );
}

#[test]
fn an_include_is_placed_in_every_server() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.conf");
    std::fs::write(&extra, "add_header X-Teal-Extra yes;\n").unwrap();
    let web = service("web", &[], Some("127.0.0.1:18085"));
    let routes = RouteSet::default()
        .with(
            &web,
            Some(backend(Slot::Blue, "1", &["127.0.0.1:40001"])),
            None,
            &settings(None),
        )
        .unwrap();
    let text = check_managed(dir.path(), &routes, &settings(Some(&extra)));
    assert_eq!(text.matches("include \"").count(), 2, "{text}");
}

#[test]
fn system_mode_file_fits_a_distribution_nginx_conf() {
    if !nginx::required() {
        return;
    }
    // Debian's nginx.conf shape: its own http settings and servers, then conf.d.
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    let main = dir.path().join("nginx.conf");
    std::fs::write(
        &main,
        format!(
            "pid {0}/nginx.pid;\nerror_log {0}/error.log;\nevents {{}}\nhttp {{\n    \
             proxy_set_header X-Theirs yes;\n    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n    \
             server {{ listen 127.0.0.1:18090; location / {{ return 200; }} }}\n    \
             include {1}/*.conf;\n}}\n",
            dir.path().display(),
            conf_d.display()
        ),
    )
    .unwrap();
    let web = service("web", &[], Some("127.0.0.1:18086"));
    let routes = RouteSet::default()
        .with(
            &web,
            Some(backend(Slot::Blue, "1", &["127.0.0.1:40001"])),
            None,
            &settings(None),
        )
        .unwrap();
    let text = render_http(&routes, &settings(None));
    std::fs::write(conf_d.join("teal.conf"), &text).unwrap();
    nginx_t(&main, dir.path());
    assert!(
        !text.contains("worker_"),
        "system mode leaves the main context alone"
    );

    // With a TLS service and the TLS listener, beside the distribution's servers.
    let ca = crate::support::tls::TestCa::new();
    let mut api = service("api", &[], None);
    ca.serve(&mut api, dir.path(), "api.example.com");
    let with_tls = tls_settings(true, false);
    let routes = routes
        .with(
            &api,
            Some(backend(Slot::Blue, "1", &["127.0.0.1:40002"])),
            None,
            &with_tls,
        )
        .unwrap();
    let text = render_http(&routes, &with_tls);
    assert!(text.contains("ssl_reject_handshake on;"), "{text}");
    std::fs::write(conf_d.join("teal.conf"), &text).unwrap();
    nginx_t(&main, dir.path());
}

#[test]
fn names_that_could_inject_directives_are_refused() {
    let bad_hosts = [
        "example.com; include /etc/passwd",
        "example.com }",
        "a b",
        "$host",
        "~^(.*)$",
        "*.example.com",
        "example.com\n",
        "\"quoted\"",
    ];
    for host in bad_hosts {
        let spec = service("web", &[host], None);
        let result = RouteSet::default().with(&spec, None, None, &settings(None));
        assert!(
            matches!(result, Err(RouterError::Invalid(_))),
            "{host:?}: {result:?}"
        );
    }
    for name in ["web;", "Web", "web app", "web{", "", "-web"] {
        let spec = service(name, &[], None);
        let result = RouteSet::default().with(&spec, None, None, &settings(None));
        assert!(
            matches!(result, Err(RouterError::Invalid(_))),
            "{name:?}: {result:?}"
        );
    }
}

#[test]
fn clashes_change_nothing() {
    let web = service("web", &[], Some("127.0.0.1:18081"));
    let routes = RouteSet::default()
        .with(&web, None, None, &settings(None))
        .unwrap();
    let other_default = service("other", &[], None);
    assert!(matches!(
        routes.with(&other_default, None, None, &settings(None)),
        Err(RouterError::Conflict(_))
    ));
    let same_preview = service("other", &["x.example.com"], Some("127.0.0.1:18081"));
    assert!(matches!(
        routes.with(&same_preview, None, None, &settings(None)),
        Err(RouterError::Conflict(_))
    ));
    let on_listen = service("other", &["x.example.com"], Some(LISTEN));
    assert!(matches!(
        routes.with(&on_listen, None, None, &settings(None)),
        Err(RouterError::Conflict(_))
    ));
    let port_zero = service("other", &["x.example.com"], Some("127.0.0.1:0"));
    assert!(matches!(
        routes.with(&port_zero, None, None, &settings(None)),
        Err(RouterError::Invalid(_))
    ));
}

fn tls_settings(redirect: bool, http2_directive: bool) -> Settings {
    Settings {
        tls: Some(TlsSettings {
            listen: "127.0.0.1:18443".parse().unwrap(),
            redirect,
        }),
        http2_directive,
        ..settings(None)
    }
}

#[test]
fn tls_services_pass_nginx_t() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::support::tls::TestCa::new();
    let leaf = ca.leaf(dir.path(), "api", &["api.example.com", "www.example.com"]);
    let mut api = service("api", &["api.example.com", "www.example.com"], None);
    api.tls = Some(leaf.files.clone());
    let plain = service("plain", &["plain.example.com"], None);
    let live = |port: u16| Some(backend(Slot::Blue, "1", &[&format!("127.0.0.1:{port}")]));
    let with_tls = tls_settings(true, false);
    let routes = RouteSet::default()
        .with(&api, live(40001), None, &with_tls)
        .and_then(|r| r.with(&plain, live(40002), None, &with_tls))
        .unwrap();
    let text = check_managed(dir.path(), &routes, &with_tls);
    for line in [
        "listen 127.0.0.1:18443 ssl http2;",
        "listen 127.0.0.1:18443 ssl http2 default_server;",
        "server_name api.example.com www.example.com;",
        &format!("ssl_certificate \"{}\";", leaf.files.cert.display()),
        &format!("ssl_certificate_key \"{}\";", leaf.files.key.display()),
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_reject_handshake on;",
        "return 308 https://$host:18443$request_uri;",
        "location ^~ /.well-known/acme-challenge/ {",
        "root \"/srv/app/.teal/nginx/acme\";",
        "try_files $uri @teal_app;",
        "try_files $uri =404;",
        "X-Forwarded-Proto $scheme;",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // One redirect: only the TLS service's plain server; one certificate.
    assert_eq!(text.matches("return 308").count(), 1, "{text}");
    assert_eq!(text.matches("ssl_certificate ").count(), 1, "{text}");

    // Redirect off: the plain server proxies; 443 is not written in the URL;
    // nginx 1.25.1+ gets `http2 on;`.
    let text = render_http(&routes, &tls_settings(false, true));
    assert!(!text.contains("return 308"), "{text}");
    assert!(
        text.contains("listen 127.0.0.1:18443 ssl;\n    http2 on;"),
        "{text}"
    );
    let mut on_443 = tls_settings(true, false);
    on_443.tls.as_mut().unwrap().listen = "127.0.0.1:443".parse().unwrap();
    let text = render_http(&routes, &on_443);
    assert!(
        text.contains("return 308 https://$host$request_uri;"),
        "{text}"
    );

    // A certificate without a TLS listener, or with a path nginx cannot quote.
    assert!(matches!(
        RouteSet::default().with(&api, None, None, &settings(None)),
        Err(RouterError::Invalid(_))
    ));
    let mut bad = api.clone();
    bad.tls.as_mut().unwrap().cert = "/srv/a\";b.pem".into();
    assert!(matches!(
        RouteSet::default().with(&bad, None, None, &tls_settings(true, false)),
        Err(RouterError::Invalid(_))
    ));
}
