//! TESTING.md's zero-downtime story, written once and run against each runtime
//! and router (`zero_downtime`: processes and the builtin proxy,
//! `docker_zero_downtime`: containers, `nginx_zero_downtime`: the nginx router):
//!
//! 1. v0 goes live; 8 keep-alive clients and 2 new-connection clients start, as
//!    two loads so that their outcomes can be told apart, with no retries;
//! 2. across the switch to v1 (unless [`Story::crossing`] is None): a slow
//!    request and a websocket opened on v0. v1 is deployed in the background;
//!    once it serves, the websocket still talks to v0 and the slow request ends
//!    with v0's 200; once the deploy ended, the router's [`AfterDrain`];
//! 3. every further deploy up to v[`DEPLOYS`]: live, drained in time (nothing
//!    holds a drain to its deadline any more), production serving it; right
//!    after v8 a broken version fails with production untouched, as do the
//!    variant's own [`FailingDeploy`]s; after v14 a rollback to v13;
//! 4. the loads stop, and the [`Run`] holds both reports and the versions that
//!    went live, for the verdict: [`Run::assert_zero_failed_requests`], or the
//!    variant's own where a router documents losses (nginx with client keep-alive).

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use teal::load::{Load, LoadReport, LoadSpec};
use teal::spec::ServiceSpec;
use teal::wire::Outcome;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::proxy::ws_exchange;
use super::{ActionResult, TestDaemon, deploy_request, eventually, get, serving, version_of};

/// Deploys after v0: v1 ..= v22.
pub const DEPLOYS: usize = 22;
/// The broken version is tried right after this deploy went live.
const BROKEN_AFTER: usize = 8;
/// The rollback (to the version before) comes right after this deploy.
const ROLLBACK_AFTER: usize = 14;

/// What differs between runtimes and routers; everything else is the story.
pub struct Story {
    /// The service as v0 runs it.
    pub spec: ServiceSpec,
    /// Version n's spec, from v0's (docker alternates images, so that every
    /// switch also changes the image ID).
    pub version: fn(&ServiceSpec, usize) -> ServiceSpec,
    /// Deploys that must fail with production untouched; [`Story::new`] puts
    /// the broken version here.
    pub failing: Vec<FailingDeploy>,
    /// The slow request and the websocket across the switch to v1, and what
    /// the websocket meets once that deploy's drain ended; None leaves them out.
    pub crossing: Option<AfterDrain>,
}

/// A deploy that must fail while production keeps serving.
pub struct FailingDeploy {
    /// Tried right after this deploy went live.
    pub after: usize,
    pub version: &'static str,
    /// The spec to try, from the spec of the deploy `after`.
    pub spec: fn(ServiceSpec) -> ServiceSpec,
    /// A piece of the failure's message.
    pub message: &'static str,
}

/// What a websocket opened on v0 meets once the drain of the switch to v1 ended.
pub enum AfterDrain {
    /// The builtin proxy closed it at the drain deadline with a close frame
    /// 1001 "going away" (whether the old slot is kept warm or stopped).
    GoingAway,
    /// It was closed: at the drain deadline nginx's old worker closes its
    /// connections, websocket included.
    Closed,
}

/// What the story leaves for the verdict.
pub struct Run {
    /// The 8 keep-alive clients.
    pub keepalive: LoadReport,
    /// The 2 clients that open a new connection per request.
    pub fresh: LoadReport,
    /// Every version that went live.
    pub expected: BTreeSet<String>,
    /// Versions that had to fail: never seen by a client.
    failed: Vec<&'static str>,
}

impl Story {
    /// The story for `spec` with TESTING.md's broken version (it answers 500,
    /// so it never passes its health gate), the same spec for every version, and
    /// a websocket that outlives the drain.
    pub fn new(spec: ServiceSpec) -> Story {
        let broken = FailingDeploy {
            after: BROKEN_AFTER,
            version: "broken-9",
            spec: |mut broken| {
                broken.health.deadline = Duration::from_secs(3);
                broken
            },
            message: "HTTP 500",
        };
        Story {
            spec,
            version: |spec, _| spec.clone(),
            failing: vec![broken],
            crossing: Some(AfterDrain::GoingAway),
        }
    }

    /// Runs the story on a daemon with no deploy of the service yet.
    pub async fn run(self, d: &TestDaemon) -> Run {
        d.deploy(&self.spec, "v0").await.assert_live();
        let load = LoadSpec {
            max_requests: 5_000_000,
            max_duration: Duration::from_secs(400),
            ..super::load::zero_drop(d.addr)
        };
        let keepalive = Load::start(LoadSpec {
            fresh_connection_workers: 0,
            ..load.clone()
        });
        let fresh = Load::start(LoadSpec {
            keepalive_connections: 0,
            ..load
        });

        let mut expected = BTreeSet::from(["v0".to_string()]);
        let mut next = 1;
        if let Some(after_drain) = &self.crossing {
            self.cross_the_switch(d, after_drain).await;
            expected.insert("v1".to_string());
            next = 2;
        }
        for n in next..=DEPLOYS {
            let version = format!("v{n}");
            let spec = (self.version)(&self.spec, n);
            let result = d.deploy(&spec, &version).await;
            result.assert_live();
            // Nothing holds a drain to its deadline: old requests end, old nginx
            // workers exit, and a websocket the client closed is no request any
            // more (its tunnel ends when the app closes, while the client keeps
            // its socket).
            assert!(
                !result.text().contains("timed out"),
                "deploy {n}: {}",
                result.text()
            );
            expected.insert(version.clone());
            let mut live = version;
            for failing in self.failing.iter().filter(|f| f.after == n) {
                let failed = d
                    .deploy(&(failing.spec)(spec.clone()), failing.version)
                    .await;
                assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
                assert!(
                    failed.message.contains(failing.message),
                    "{}",
                    failed.message
                );
                assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
            }
            if n == ROLLBACK_AFTER {
                d.rollback(&self.spec.name).await.assert_live();
                live = format!("v{}", n - 1);
            }
            assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
            let status = d.status().await;
            assert_eq!(
                status.services[0].active_version.as_deref(),
                Some(live.as_str())
            );
        }

        let keepalive = keepalive.stop().await;
        let fresh = fresh.stop().await;
        eprintln!("keep-alive clients:\n{}", keepalive.render_table());
        eprintln!("new-connection clients:\n{}", fresh.render_table());
        Run {
            keepalive,
            fresh,
            expected,
            failed: self.failing.iter().map(|f| f.version).collect(),
        }
    }

    /// A slow request and a websocket, both opened on v0, across the switch to v1.
    async fn cross_the_switch(&self, d: &TestDaemon, after_drain: &AfterDrain) {
        let addr = d.addr;
        let slow = tokio::spawn(async move { get(addr, "/slow?ms=3000").await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
            .await
            .expect("websocket through the router");
        assert_eq!(ws_exchange(&mut ws, "hello").await, "v0: hello");

        // In the background: the deploy's drain waits for the slow request and
        // the websocket, so both are used after the switch, before the deadline.
        let req = deploy_request(&(self.version)(&self.spec, 1), "v1");
        let stream = d.client.deploy(&req).await.expect("deploy accepted");
        let first = tokio::spawn(ActionResult::collect(stream));
        assert!(
            eventually(Duration::from_secs(60), async || {
                serving(addr).await.as_deref() == Some("v1")
            })
            .await,
            "v1 went live"
        );
        assert_eq!(ws_exchange(&mut ws, "still there").await, "v0: still there");
        let (status, body) = slow.await.unwrap();
        assert_eq!(status, 200, "slow request spanning the switch: {body}");
        assert_eq!(version_of(&body).as_deref(), Some("v0"));
        first.await.unwrap().assert_live();

        match after_drain {
            AfterDrain::GoingAway => {
                let after = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
                let Ok(Some(Ok(Message::Close(Some(frame))))) = after else {
                    panic!("a close frame at the drain deadline, got {after:?}");
                };
                assert_eq!(u16::from(frame.code), 1001, "{frame:?}");
            }
            AfterDrain::Closed => {
                let after = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
                assert!(
                    !matches!(after, Ok(Some(Ok(Message::Text(_))))),
                    "the old worker is gone after the drain deadline: {after:?}"
                );
            }
        }
    }
}

impl Run {
    /// TESTING.md's verdict, for each kind of client: it ran, not one request
    /// failed, and the versions seen are the expected ones.
    pub fn assert_zero_failed_requests(&self) {
        for (kind, report) in [
            ("keep-alive", &self.keepalive),
            ("new-connection", &self.fresh),
        ] {
            assert!(report.sent > 500, "{kind}: the load ran: {report:?}");
            assert_eq!(report.failed(), 0, "{kind}: failed requests: {report:?}");
            assert_eq!(report.ok, report.sent, "{kind}: {report:?}");
            self.assert_versions(report);
        }
    }

    /// Only versions that went live answered, never one that had to fail, and
    /// at least half of them did: traffic followed the switches.
    pub fn assert_versions(&self, report: &LoadReport) {
        let seen: BTreeSet<String> = report.versions.keys().cloned().collect();
        assert!(
            seen.is_subset(&self.expected),
            "only deployed versions answered: {seen:?}"
        );
        assert!(
            !self.failed.iter().any(|v| seen.contains(*v)),
            "no failing version ever served: {seen:?}"
        );
        assert!(
            seen.len() >= DEPLOYS / 2,
            "traffic followed the switches: {seen:?}"
        );
    }
}
