//! The daemon side of the control API: HTTP/1.1 over the Unix socket, routes mapped
//! to [`Deployer`] calls. Long actions run as tracked tasks and stream NDJSON
//! events; a client that disconnects does not cancel its deploy.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AcceptPause;
use crate::deploy::{ActionGuard, DeployError, Deployer, Progress, Service};
use crate::slot::Slot;
use crate::state::GateChange;
use crate::upgrade::Predecessor;
use crate::wire::{
    ActionRequest, ApiError, DeployRequest, DiscardRequest, ErrorKind, Event, LEASE_HEADER,
    LockRequest, LogPick, Unlocked, query_unescape,
};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted (a deploy request carries one service spec).
const MAX_BODY: usize = 1 << 20;

/// Binds the control socket with mode 0600, replacing a stale socket file.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the API until `shutdown` fires.
pub async fn serve(
    listener: UnixListener,
    deployer: Arc<Deployer>,
    upgrade: Arc<Predecessor>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut pause = AcceptPause::new("control socket");
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    let wait = pause.after(&error);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        let deployer = deployer.clone();
        let upgrade = upgrade.clone();
        let tasks = tracker.clone();
        let stop = shutdown.clone();
        let ended = shutdown.clone();
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let deployer = deployer.clone();
                let upgrade = upgrade.clone();
                let tasks = tasks.clone();
                let ended = ended.clone();
                async move {
                    Ok::<_, Infallible>(route(req, deployer, upgrade, tasks, ended).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

async fn route(
    req: Request<Incoming>,
    deployer: Arc<Deployer>,
    upgrade: Arc<Predecessor>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let lease = req
        .headers()
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let lease = lease.as_deref();
    let result = match (method, segments.as_slice()) {
        (Method::GET, ["v1", "ping"]) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "pid": std::process::id()}),
        )),
        // `teal serve --upgrade`: the new daemon asks this one to hand over.
        (Method::POST, ["v1", "upgrade"]) => upgrade.accept(req),
        (Method::GET, ["v1", "status"]) => {
            let only = param(&query, "service");
            deployer
                .status(only.as_deref())
                .await
                .map(|s| json(StatusCode::OK, &s))
                .map_err(api_error)
        }
        (Method::POST, ["v1", "deploy"]) => match read_json::<DeployRequest>(req).await {
            Ok(body) => start_deploy(&deployer, &tasks, lease, body),
            Err(e) => Err(e),
        },
        (Method::POST, ["v1", "services", name, "promote"]) => {
            start_promote(&deployer, &tasks, lease, name)
        }
        (Method::POST, ["v1", "services", name, "rollback"]) => {
            let name = name.to_string();
            match read_json::<ActionRequest>(req).await {
                Ok(body) => start_rollback(&deployer, &tasks, lease, &name, body),
                Err(e) => Err(e),
            }
        }
        (Method::POST, ["v1", "services", name, "stop"]) => {
            start_stop(&deployer, &tasks, lease, name)
        }
        (Method::POST, ["v1", "services", name, "discard"]) => {
            let name = name.to_string();
            match read_json::<DiscardRequest>(req).await {
                Ok(body) => start_discard(&deployer, &tasks, lease, &name, body),
                Err(e) => Err(e),
            }
        }
        (Method::POST, ["v1", "services", name, "lock"]) => {
            let name = name.to_string();
            match read_json::<LockRequest>(req).await {
                Ok(body) => deployer
                    .lock(&name, body)
                    .map(|grant| json(StatusCode::OK, &grant))
                    .map_err(api_error),
                Err(e) => Err(e),
            }
        }
        (Method::PUT, ["v1", "services", name, "lock"]) => deployer
            .renew_lock(name, lease)
            .map(|lock| json(StatusCode::OK, &lock))
            .map_err(api_error),
        (Method::DELETE, ["v1", "services", name, "lock"]) => {
            let force = param(&query, "force").is_some_and(|v| v == "1" || v == "true");
            deployer
                .unlock(name, lease, force)
                .map(|released| json(StatusCode::OK, &Unlocked { released }))
                .map_err(api_error)
        }
        // `teal maintenance`, `teal pause`, `teal resume`.
        (Method::POST, ["v1", "services", name, "gate"]) => {
            let name = name.to_string();
            match read_json::<GateChange>(req).await {
                Ok(change) => deployer
                    .change_gate(&name, &change)
                    .await
                    .map(|answer| json(StatusCode::OK, &answer))
                    .map_err(api_error),
                Err(e) => Err(e),
            }
        }
        (Method::GET, ["v1", "services", name, "history"]) => deployer
            .history(name)
            .map(|h| json(StatusCode::OK, &h))
            .map_err(api_error),
        (Method::GET, ["v1", "services", name, "logs"]) => {
            logs(&deployer, name, &query, shutdown).await
        }
        _ => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no such endpoint: {path}"),
        )),
    };
    result.unwrap_or_else(|e| json(e.kind.status(), &e))
}

/// What a streamed action runs once it holds the service's lock.
type ActionFn = Box<
    dyn FnOnce(
            Arc<Deployer>,
            Arc<Service>,
            ActionGuard,
            Progress,
        ) -> futures_util::future::BoxFuture<'static, ()>
        + Send,
>;

/// Takes the service's action lock (failing at once with "busy"), runs `action` as a
/// tracked task and streams its events. The task outlives a client that goes away.
fn start_action(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    name: &str,
    create: bool,
    action: ActionFn,
) -> Result<Response<Body>, ApiError> {
    deployer.check_lease(name, lease).map_err(api_error)?;
    let (service, guard) = deployer.begin(name, create).map_err(api_error)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let progress = Progress::new(name, Some(tx));
    tasks.spawn(action(deployer.clone(), service, guard, progress));
    Ok(ndjson(rx))
}

fn start_deploy(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    req: DeployRequest,
) -> Result<Response<Body>, ApiError> {
    let name = req.spec.name.clone();
    let action: ActionFn = Box::new(move |deployer, service, guard, progress| {
        Box::pin(async move {
            let _ = deployer.deploy(service, guard, req, progress).await;
        })
    });
    start_action(deployer, tasks, lease, &name, true, action)
}

fn start_promote(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let action: ActionFn = Box::new(|deployer, service, guard, progress| {
        Box::pin(async move {
            let _ = deployer.promote(service, guard, progress).await;
        })
    });
    start_action(deployer, tasks, lease, name, false, action)
}

fn start_rollback(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    name: &str,
    req: ActionRequest,
) -> Result<Response<Body>, ApiError> {
    let action: ActionFn = Box::new(move |deployer, service, guard, progress| {
        Box::pin(async move {
            let _ = deployer.rollback(service, guard, req.spec, progress).await;
        })
    });
    start_action(deployer, tasks, lease, name, false, action)
}

fn start_discard(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    name: &str,
    req: DiscardRequest,
) -> Result<Response<Body>, ApiError> {
    let action: ActionFn = Box::new(move |deployer, service, guard, progress| {
        Box::pin(async move {
            let _ = deployer
                .discard_staged(service, guard, req.reason, progress)
                .await;
        })
    });
    start_action(deployer, tasks, lease, name, false, action)
}

fn start_stop(
    deployer: &Arc<Deployer>,
    tasks: &TaskTracker,
    lease: Option<&str>,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let action: ActionFn = Box::new(|deployer, service, guard, progress| {
        Box::pin(async move {
            let _ = deployer.stop_service(service, guard, progress).await;
        })
    });
    start_action(deployer, tasks, lease, name, false, action)
}

/// Streams instance output; a followed stream ends when the daemon stops, so it
/// never holds shutdown open.
async fn logs(
    deployer: &Deployer,
    name: &str,
    query: &str,
    shutdown: CancellationToken,
) -> Result<Response<Body>, ApiError> {
    let pick = match (
        param(query, "slot"),
        param(query, "version"),
        param(query, "previous").is_some_and(|v| v == "1" || v == "true"),
    ) {
        (None, None, false) => LogPick::Live,
        (Some(s), None, false) => LogPick::Slot(
            s.parse::<Slot>()
                .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?,
        ),
        (None, Some(v), false) => LogPick::Version(
            query_unescape(&v)
                .ok_or_else(|| ApiError::new(ErrorKind::Invalid, "version is not UTF-8"))?,
        ),
        (None, None, true) => LogPick::Previous,
        _ => {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                "pass one of slot, version and previous",
            ));
        }
    };
    let follow = param(query, "follow").is_some_and(|v| v == "1" || v == "true");
    let lines = deployer.logs(name, pick, follow).await.map_err(api_error)?;
    let frames = lines.take_until(shutdown.cancelled_owned()).map(|l| {
        Ok::<_, Infallible>(Frame::data(Bytes::from(format!(
            "[{}] {}\n",
            l.instance, l.line
        ))))
    });
    Ok(Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(BodyExt::boxed_unsync(StreamBody::new(frames)))
        .expect("static response parts are valid"))
}

/// Streams events as NDJSON until the action drops its sender.
fn ndjson(rx: mpsc::UnboundedReceiver<Event>) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), rx))
    });
    Response::builder()
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("static response parts are valid")
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("static response parts are valid")
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("reading request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("bad request body: {e}")))
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| v.to_string())
    })
}

fn api_error(e: DeployError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}
