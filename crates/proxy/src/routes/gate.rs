//! Maintenance and pause: what stands in front of a service's production
//! traffic besides its pools. Maintenance answers 503 with `Retry-After` and
//! a body of the owner's choosing; a pause holds new requests, without an
//! upstream connection or an in-flight claim, until it is lifted (they are
//! then routed as if they had just come in) or their time is up (503).
//!
//! The owner sets a service's gate whole ([`GateSpec`], `Proxy::set_gate`),
//! before or after the service's routes are installed. A request pays one
//! atomic load (`Gate::is_set`) while nothing is set. The preview listener is
//! never gated: a new version can be looked at during maintenance.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use crate::Proxy;
use crate::error::ProxyError;
use crate::hold::{Notice, Pause};

/// A service's maintenance and pause, as the owner sets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateSpec {
    pub maintenance: Vec<MaintenanceSpec>,
    pub pause: Vec<PauseSpec>,
}

impl GateSpec {
    pub fn is_empty(&self) -> bool {
        self.maintenance.is_empty() && self.pause.is_empty()
    }
}

/// 503 for every production request of the service (or of `host` of it).
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceSpec {
    /// None: every host of the service.
    pub host: Option<String>,
    pub body: Bytes,
    /// The body's `Content-Type`.
    pub content_type: &'static str,
    /// Seconds, for `Retry-After`.
    pub retry_after: u32,
}

/// Holds the service's (or `host`'s) new production requests.
#[derive(Debug, Clone, PartialEq)]
pub struct PauseSpec {
    /// None: every host of the service.
    pub host: Option<String>,
    /// How long one request is held before it gets 503.
    pub timeout: Duration,
    /// Seconds, for the `Retry-After` of that 503.
    pub retry_after: u32,
}

/// What is set now, replaced whole.
#[derive(Debug, Default)]
struct GateState {
    /// By host; the `None` key is the whole service.
    maintenance: HashMap<Option<String>, Arc<Notice>>,
    pause: HashMap<Option<String>, Arc<Pause>>,
}

/// One service's gate. Lives as long as the proxy knows the service's name,
/// across installs.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// True while anything is set: the one load a request pays otherwise.
    set: AtomicBool,
    state: ArcSwapOption<GateState>,
}

impl Gate {
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Why a request for `host` (as the client sent it, maybe with a port)
    /// is not routed now, if it is not: maintenance first, then a pause.
    pub(crate) fn check(&self, host: Option<&str>) -> Result<(), ProxyError> {
        let Some(state) = self.state.load_full() else {
            return Ok(());
        };
        let host = host.map(|h| super::strip_port(h).to_ascii_lowercase());
        for key in [host.clone(), None] {
            if let Some(notice) = state.maintenance.get(&key) {
                return Err(ProxyError::Maintenance(Arc::clone(notice)));
            }
        }
        for key in [host, None] {
            if let Some(pause) = state.pause.get(&key) {
                return Err(ProxyError::Paused(Arc::clone(pause)));
            }
        }
        Ok(())
    }

    /// Sets `spec` whole. A pause that goes (lifted, or replaced) releases
    /// its requests; a pause that stays the same keeps them.
    fn set(&self, spec: &GateSpec) {
        let old = self.state.load_full();
        let mut state = GateState::default();
        for m in &spec.maintenance {
            let notice = Notice {
                body: m.body.clone(),
                content_type: m.content_type,
                retry_after: m.retry_after,
            };
            state.maintenance.insert(m.host.clone(), Arc::new(notice));
        }
        for p in &spec.pause {
            let kept = old.as_ref().and_then(|old| {
                old.pause
                    .get(&p.host)
                    .filter(|o| o.timeout() == p.timeout && o.retry_after() == p.retry_after)
            });
            let pause = match kept {
                Some(kept) => Arc::clone(kept),
                None => Arc::new(Pause::new(p.timeout, p.retry_after)),
            };
            state.pause.insert(p.host.clone(), pause);
        }
        let empty = spec.is_empty();
        self.state
            .store((!empty).then(|| Arc::new(state)).map(|s| s as Arc<_>));
        self.set.store(!empty, Ordering::Release);
        let now = self.state.load();
        for (host, pause) in old.iter().flat_map(|old| old.pause.iter()) {
            let still = now
                .as_ref()
                .and_then(|s| s.pause.get(host))
                .is_some_and(|p| Arc::ptr_eq(p, pause));
            if !still {
                pause.release();
            }
        }
    }
}

/// Every service's gate by name (a gate may be set before its routes).
#[derive(Default)]
pub(crate) struct Gates(std::sync::Mutex<HashMap<String, Arc<Gate>>>);

impl Gates {
    /// The gate of `service`, created empty on first use.
    pub(crate) fn of(&self, service: &str) -> Arc<Gate> {
        let mut gates = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(gates.entry(service.to_string()).or_default())
    }
}

impl Proxy {
    /// Sets `service`'s maintenance and pause (whole: what `spec` lacks is
    /// lifted). Takes effect for the next request, whether or not the
    /// service's routes are installed yet.
    pub fn set_gate(&self, service: &str, spec: &GateSpec) {
        self.gates.of(service).set(spec);
        tracing::info!(
            service,
            maintenance = spec.maintenance.len(),
            pause = spec.pause.len(),
            "gate set"
        );
    }

    /// `routed` is what `pool_for` gave a request; while it says "paused",
    /// waits for the pause to lift (then routes the request again) or for
    /// the request's time to run out (503). A request is held by at most a
    /// few pauses in a row (each one set after the last was lifted).
    pub(crate) async fn after_pause<'a>(
        &self,
        mut routed: Result<Arc<crate::pool::Pool>, ProxyError>,
        listener: &super::ListenerKind,
        host: impl Fn() -> Option<&'a str>,
    ) -> Result<Arc<crate::pool::Pool>, ProxyError> {
        for _ in 0..4 {
            let Err(ProxyError::Paused(pause)) = &routed else {
                return routed;
            };
            pause.wait().await.map_err(ProxyError::Held)?;
            routed = self.pool_for(listener, &host);
        }
        match routed {
            Err(ProxyError::Paused(pause)) => Err(ProxyError::Held(pause.retry_after())),
            other => other,
        }
    }
}
