//! The nginx router on its own (no daemon), managed mode, against the real nginx
//! and small real backends: forwarded headers and websockets, the confirmed
//! reload and drain, a reload nginx refuses, and the master's lifecycle (adopted
//! after a crash of teal, restarted when it dies, stopped by `close`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::proxy::{TestBackend, backend, get_fresh, raw_exchange, spec, ws_exchange};
use crate::support::{alive, eventually, nginx};
use teal::router::nginx::NginxRouter;
use teal::router::{Router, RouterError};
use teal::slot::Slot;
use teal::spec::ProxySpec;
use tokio_util::sync::CancellationToken;

fn proxy_spec(dir: &Path) -> ProxySpec {
    crate::support::nginx::config(dir, vec![]).proxy
}

async fn start(proxy: &ProxySpec, dir: &Path) -> Arc<NginxRouter> {
    NginxRouter::start(proxy, &dir.join("state"), CancellationToken::new(), false)
        .await
        .expect("nginx router starts")
}

fn master_pid(dir: &Path) -> Option<i32> {
    nginx::master_pid(&dir.join("state"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_headers_and_websockets() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let router = start(&proxy, dir.path()).await;
    let app = TestBackend::start("blue").await;
    let web = spec("web", &["example.test"], None);
    router
        .set_routes(&web, backend(Slot::Blue, &[app.addr]), None)
        .await
        .unwrap();

    let reply = get_fresh(proxy.listen, "Example.Test:8080", "/headers")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    let head = reply.body.to_lowercase();
    for line in [
        "version: http/1.1",
        "host: example.test:8080",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: example.test:8080",
    ] {
        assert!(head.contains(line), "{line:?} not in:\n{head}");
    }
    assert!(
        !head.contains("connection: close"),
        "upstream connections are kept alive:\n{head}"
    );
    // No default service: an unknown host is not proxied anywhere.
    assert_eq!(
        get_fresh(proxy.listen, "other.test", "/")
            .await
            .unwrap()
            .status,
        404
    );

    let stream = tokio::net::TcpStream::connect(proxy.listen).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("ws://example.test/ws", stream)
        .await
        .expect("websocket upgrade through nginx");
    assert_eq!(ws_exchange(&mut ws, "hi").await, "blue:hi");
    drop(ws);
    router.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_is_confirmed_and_the_drain_waits_for_old_requests() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let router = start(&proxy, dir.path()).await;
    let (blue, green) = (
        TestBackend::start("blue").await,
        TestBackend::start("green").await,
    );
    let web = spec("web", &[], None);
    router
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "blue"
    );

    let listen = proxy.listen;
    let slow = tokio::spawn(async move { get_fresh(listen, "x", "/slow?ms=1500").await });
    assert!(
        eventually(Duration::from_secs(10), async || blue.hits() >= 2).await,
        "the slow request reached blue"
    );
    router
        .set_routes(&web, backend(Slot::Green, &[green.addr]), None)
        .await
        .unwrap();
    // Confirmed reload: the very next request is served by the new routes.
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "green"
    );

    let report = router
        .drain("web", Slot::Blue, Duration::from_secs(30))
        .await;
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(
        blue.slow_done(),
        1,
        "the drain ended after the slow request did"
    );
    let reply = slow.await.unwrap().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "blue"));
    router.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_nginx_refuses_changes_nothing() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let router = start(&proxy, dir.path()).await;
    let blue = TestBackend::start("blue").await;
    let mut web = spec("web", &[], None);
    router
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    let conf = dir.path().join("state/nginx/nginx.conf");
    let before = std::fs::read_to_string(&conf).unwrap();

    // `nginx -t` cannot know that a port is taken; the reload finds out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    web.preview = Some(taken.local_addr().unwrap());
    let err = router
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .expect_err("nginx cannot bind the preview port");
    let RouterError::Nginx { stage, message } = &err else {
        panic!("expected nginx's refusal, got {err:?}");
    };
    assert_eq!(stage, "reload");
    assert!(message.contains("Address already in use"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        before,
        "old file restored"
    );
    assert_eq!(router.preview_addr("web"), None);
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "blue"
    );

    // The next good change goes through.
    web.preview = None;
    let green = TestBackend::start("green").await;
    router
        .set_routes(&web, backend(Slot::Green, &[green.addr]), None)
        .await
        .unwrap();
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "green"
    );
    router.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_is_adopted_restarted_and_stopped() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let blue = TestBackend::start("blue").await;
    let web = spec("web", &[], None);

    // A teal that goes away without closing (a crash) leaves its master running...
    let first = start(&proxy, dir.path()).await;
    let pid = master_pid(dir.path()).expect("pid file");
    drop(first);
    assert!(alive(pid));

    // ...and the next teal on the same state dir adopts it instead of failing to bind.
    let router = start(&proxy, dir.path()).await;
    assert_eq!(master_pid(dir.path()), Some(pid), "adopted, not restarted");
    router
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "blue"
    );

    // A master that dies is started again (the supervisor checks every second).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let back = eventually(Duration::from_secs(20), async || {
        master_pid(dir.path()).is_some_and(|p| p != pid && alive(p))
            && get_fresh(proxy.listen, "x", "/")
                .await
                .is_ok_and(|r| r.body == "blue")
    })
    .await;
    assert!(back, "nginx was restarted with the current routes");

    let restarted = master_pid(dir.path()).unwrap();
    router.close(Duration::from_secs(5)).await;
    assert!(!alive(restarted), "close stops the master");
    assert!(
        get_fresh(proxy.listen, "x", "/").await.is_err(),
        "nothing listens"
    );
    assert!(matches!(
        router.set_routes(&web, None, None).await,
        Err(RouterError::Other(_))
    ));
}

/// What an upgrade of teal does to its managed nginx: the daemon that leaves
/// lets go of the master without stopping or reloading it, and the one that
/// takes over adopts it and restores the same routes without a reload (the
/// same workers serve on, so no client connection is closed). Its next change
/// reloads that same master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_hands_the_running_master_to_the_next_router_without_a_reload() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let blue = TestBackend::start("blue").await;
    let green = TestBackend::start("green").await;
    let web = spec("web", &[], None);

    let leaving = start(&proxy, dir.path()).await;
    leaving
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    let pid = master_pid(dir.path()).expect("pid file");
    let workers = nginx::serving_workers(pid);
    assert!(!workers.is_empty());

    leaving.leave(Duration::from_secs(5)).await;
    assert!(alive(pid), "leave does not stop nginx");
    assert_eq!(nginx::serving_workers(pid), workers, "nor reload it");
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "blue"
    );
    assert!(
        leaving
            .set_routes(&web, backend(Slot::Green, &[green.addr]), None)
            .await
            .is_err(),
        "the router that left changes nothing any more"
    );

    let next = NginxRouter::start(
        &proxy,
        &dir.path().join("state"),
        CancellationToken::new(),
        true,
    )
    .await
    .expect("the next router starts on the running nginx");
    next.restore_routes(&[(&web, backend(Slot::Blue, &[blue.addr]))])
        .await
        .unwrap();
    assert_eq!(master_pid(dir.path()), Some(pid), "adopted");
    assert_eq!(
        nginx::serving_workers(pid),
        workers,
        "the same routes: no reload"
    );
    drop(leaving);

    next.set_routes(&web, backend(Slot::Green, &[green.addr]), None)
        .await
        .unwrap();
    assert_eq!(master_pid(dir.path()), Some(pid));
    assert_ne!(nginx::serving_workers(pid), workers, "a switch reloads");
    assert_eq!(
        get_fresh(proxy.listen, "x", "/").await.unwrap().body,
        "green"
    );
    next.close(Duration::from_secs(5)).await;
    assert!(!alive(pid), "close stops the adopted master");
}

/// `max_body` through the real nginx: `client_max_body_size` in the
/// service's location answers 413 to a larger `Content-Length` (and a
/// chunked body past it) before the app sees it; a body within it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_body_gets_413_from_nginx() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy_spec(dir.path());
    let router = start(&proxy, dir.path()).await;
    let app = TestBackend::start("blue").await;
    let mut web = spec("web", &["example.test"], None);
    web.policy.max_body = Some(1000);
    router
        .set_routes(&web, backend(Slot::Blue, &[app.addr]), None)
        .await
        .unwrap();
    let post = |length: usize| {
        let mut request = format!(
            "POST /echo HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n"
        )
        .into_bytes();
        request.extend(std::iter::repeat_n(b'a', length));
        request
    };
    let reply = raw_exchange(proxy.listen, &post(1000)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let hits = app.hits();
    let reply = raw_exchange(proxy.listen, &post(1001)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n",
        "a".repeat(2000)
    );
    let reply = raw_exchange(proxy.listen, chunked.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(app.hits(), hits, "the app saw a request over the limit");
    router.close(Duration::from_secs(5)).await;
}
