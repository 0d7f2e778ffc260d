//! Active health checks: one probe, and the gate a new slot must pass before the switch.
//!
//! Healthy means GET `health.path` answered with a status in 200..=399 within
//! `health.timeout` (over HTTP/2 with prior knowledge for an h2c service), or,
//! with `health.grpc`, the standard gRPC check answered SERVING (`grpc`).
//! Each probe uses a fresh connection, so a probe never rides on a
//! connection the proxy or another probe is using. This module does not route and
//! does not start anything.

mod grpc;
mod listening;

pub use listening::{wildcard, wrong_port};

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::runtime::InstanceRef;
use crate::spec::HealthSpec;

/// How much of an unhealthy answer's body is kept for the error report.
const BODY_PREVIEW: usize = 200;

/// The answer to one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Healthy {
        status: u16,
    },
    /// An HTTP answer outside 200..=399, with the start of its body.
    Unhealthy {
        status: u16,
        body: String,
    },
    /// No HTTP answer: refused, reset, timeout...
    Failed {
        error: String,
    },
    /// The gRPC health service answered, but not SERVING.
    NotServing {
        service: String,
        status: String,
    },
}

impl Probe {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Probe::Healthy { .. })
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Healthy { status } => write!(f, "HTTP {status}"),
            Probe::Unhealthy { status, body } if body.is_empty() => write!(f, "HTTP {status}"),
            Probe::Unhealthy { status, body } => write!(f, "HTTP {status} {body:?}"),
            Probe::Failed { error } => f.write_str(error),
            Probe::NotServing { service, status } => {
                write!(f, "gRPC health check of {service:?}: {status}")
            }
        }
    }
}

/// Why a slot did not pass its health gate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("instance {index} {id} ({addr}) not healthy after {}: last answer {last}; last output: {logs}", humantime::format_duration(*waited))]
    Deadline {
        index: usize,
        /// pid or container name.
        id: String,
        addr: SocketAddr,
        waited: Duration,
        last: Probe,
        /// Its last lines of output, `|`-separated.
        logs: String,
    },
    #[error(
        "instance {index} {id} ({addr}) exited during the health gate ({exit}); last output: {logs}"
    )]
    Exited {
        index: usize,
        /// pid or container name.
        id: String,
        addr: SocketAddr,
        exit: String,
        logs: String,
    },
    /// Its processes listen, but not on the port teal gave it.
    #[error("{listening}; last output: {logs}")]
    WrongPort {
        /// What [`wrong_port`] says.
        listening: String,
        logs: String,
    },
    /// It forked into the background and exited (a daemonizing app).
    #[error(
        "instance {index} (pid {id}) went into the background: it exited ({exit}) and left pid {left} running, which teal stopped; run it in the foreground (e.g. without gunicorn's --daemon); last output: {logs}"
    )]
    Background {
        index: usize,
        id: String,
        exit: String,
        left: u32,
        logs: String,
    },
    #[error("cancelled")]
    Cancelled,
}

/// One GET of `spec.path` on `addr` (or one gRPC check), bounded by
/// `spec.timeout`.
pub async fn probe(addr: SocketAddr, spec: &HealthSpec) -> Probe {
    let once = async {
        match &spec.grpc {
            Some(service) => grpc::check(addr, service).await,
            None => probe_once(addr, &spec.path, spec.h2c).await,
        }
    };
    match tokio::time::timeout(spec.timeout, once).await {
        Ok(Ok(probe)) => probe,
        Ok(Err(error)) => Probe::Failed { error },
        Err(_) => Probe::Failed {
            error: format!(
                "timed out after {}",
                humantime::format_duration(spec.timeout)
            ),
        },
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn probe_once(addr: SocketAddr, path: &str, h2c: bool) -> Result<Probe, String> {
    let response = if h2c {
        let request = http::Request::get(format!("http://{addr}{path}"))
            .header(http::header::USER_AGENT, "teal-health")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad health path {path:?}: {e}"))?;
        grpc::send(addr, request).await?
    } else {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(connect(addr).await?))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, "teal-health")
            .header(http::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad health path {path:?}: {e}"))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?
    };
    let status = response.status().as_u16();
    if (200..=399).contains(&status) {
        return Ok(Probe::Healthy { status });
    }
    let body = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_PREVIEW)])
        .trim()
        .to_string();
    Ok(Probe::Unhealthy { status, body: text })
}

/// Probes every instance until all are healthy (HTTP, and the runtime's own
/// check when it has one, see `Instance::waiting_for`), one misses
/// `spec.deadline`, one exits, or `cancel` fires. Probes start at once and then
/// back off: 10 ms, 20 ms, 40 ms … up to `spec.interval`, so an app that boots
/// in milliseconds goes live in milliseconds too.
pub async fn gate(
    instances: &[InstanceRef],
    spec: &HealthSpec,
    cancel: &CancellationToken,
) -> Result<(), GateError> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE.min(spec.interval);
    let mut pending: Vec<&InstanceRef> = instances.iter().collect();
    let mut last: Vec<Probe> = vec![
        Probe::Failed {
            error: "not probed yet".into()
        };
        instances.len()
    ];
    // Since when each instance has listened, but not on its port.
    let mut elsewhere: Vec<Option<Instant>> = vec![None; instances.len()];
    loop {
        let mut still = Vec::with_capacity(pending.len());
        for instance in pending {
            if let Some(exit) = instance.exited() {
                // Instances that took the same wrong port exit with "address
                // in use": the one that holds it names the cause.
                if let Some(listening) = instances.iter().find_map(|i| wrong_port(i.as_ref())) {
                    return Err(wrong_port_error(instance, listening).await);
                }
                let logs = last_output(instance).await;
                // Exit code 0 with a process left running: it daemonized.
                return Err(match exit.left_running {
                    Some(left) if exit.code == Some(0) => GateError::Background {
                        index: instance.index(),
                        id: instance.id(),
                        exit: exit.to_string(),
                        left,
                        logs,
                    },
                    _ => GateError::Exited {
                        index: instance.index(),
                        id: instance.id(),
                        addr: instance.addr(),
                        exit: exit.to_string(),
                        logs,
                    },
                });
            }
            let mut answer = probe(instance.addr(), spec).await;
            if let Probe::Failed { .. } = answer
                && let Some(listening) = wrong_port(instance.as_ref())
            {
                let since = elsewhere
                    .get_mut(instance.index())
                    .map(|since| *since.get_or_insert_with(Instant::now));
                if since.is_some_and(|since| since.elapsed() >= WRONG_PORT_GRACE) {
                    return Err(wrong_port_error(instance, listening).await);
                }
            } else if let Some(since) = elsewhere.get_mut(instance.index()) {
                *since = None;
            }
            // An image's own HEALTHCHECK must pass too (the runtime reports it).
            if answer.is_healthy()
                && let Some(waiting) = instance.waiting_for()
            {
                answer = Probe::Failed {
                    error: format!("HTTP ok, but {waiting}"),
                };
            }
            if !answer.is_healthy() {
                still.push(instance);
            }
            if let Some(slot) = last.get_mut(instance.index()) {
                *slot = answer;
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= spec.deadline {
            let first = pending[0];
            if let Some(listening) = wrong_port(first.as_ref()) {
                return Err(wrong_port_error(first, listening).await);
            }
            return Err(GateError::Deadline {
                index: first.index(),
                id: first.id(),
                logs: last_output(first).await,
                addr: first.addr(),
                waited: Duration::from_millis(started.elapsed().as_millis() as u64),
                last: last.get(first.index()).cloned().unwrap_or(Probe::Failed {
                    error: "no answer".into(),
                }),
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(GateError::Cancelled),
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(spec.interval);
    }
}

/// The first pause between health probes; it doubles up to the interval.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// How long an instance may listen elsewhere but not on its port before the
/// gate gives up on it: an app may open another port first (a debugger, a
/// metrics exporter) and its own a moment later.
const WRONG_PORT_GRACE: Duration = Duration::from_secs(2);

async fn wrong_port_error(instance: &InstanceRef, listening: String) -> GateError {
    GateError::WrongPort {
        listening,
        logs: last_output(instance).await,
    }
}

/// Its last lines of output, `|`-separated, or "(none)".
async fn last_output(instance: &InstanceRef) -> String {
    let logs = instance.tail_logs(5).await.join(" | ");
    if logs.is_empty() {
        "(none)".into()
    } else {
        logs
    }
}
