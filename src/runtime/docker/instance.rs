//! One container as an [`Instance`]: a watcher task keeps what the engine says
//! about it, and brings it back when it ends and the engine will not (after a
//! `docker kill`, which the engine treats as a manual stop) or when it vanished.
//!
//! The watcher polls `inspect` (cheap, and robust to a restarted engine or a
//! missed event). It is the only one that restarts or recreates the container;
//! `stop` and `release` end it first, so a stopped instance is never brought back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::HealthStatusEnum;
use tokio::sync::watch;
use tokio::time::Instant;

use super::container::{self, Observed, Recipe};
use super::engine::short;
use super::logs;
use super::ports::Ports;
use crate::runtime::{ExitInfo, Instance};

/// How often the watcher asks the engine.
const POLL: Duration = Duration::from_millis(250);
/// First delay before teal restarts a container itself; doubles up to the max.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One container of a slot.
#[derive(Debug)]
pub struct DockerInstance {
    recipe: Arc<Recipe>,
    addr: SocketAddr,
    docker: Docker,
    /// Written by the watcher after every look at the engine; read by the getters.
    status: Arc<Mutex<Status>>,
    /// What the daemon wants from the watcher: keep watching, or let go. Set once.
    end_tx: watch::Sender<Option<End>>,
    /// Turns true when the watcher has finished (after `stop` or `release`).
    done_rx: watch::Receiver<bool>,
    /// Gets the host port back once the container is gone.
    ports: Ports,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Stop and remove the container.
    Stop,
    /// Leave it running (daemon shutdown).
    Release,
}

#[derive(Debug, Default)]
struct Status {
    /// Some while it is not running (ended, or between a crash and a restart).
    exited: Option<ExitInfo>,
    /// The engine's restart count plus teal's own restarts and recreations.
    engine_restarts: u32,
    teal_restarts: u32,
    health: Option<HealthStatusEnum>,
    /// Whether the image has a HEALTHCHECK: then `waiting_for` says so until healthy.
    checked: bool,
}

impl DockerInstance {
    /// Wraps a container that runs (just launched, or adopted) and starts watching it.
    pub(super) fn watch(
        docker: Docker,
        recipe: Recipe,
        addr: SocketAddr,
        first: Option<Observed>,
        healthcheck: bool,
        ports: Ports,
    ) -> Arc<DockerInstance> {
        let status = Arc::new(Mutex::new(Status {
            checked: healthcheck,
            ..Status::default()
        }));
        if let Some(first) = &first {
            apply(&status, first);
        }
        let (end_tx, end_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let recipe = Arc::new(recipe);
        let watcher = Watcher {
            docker: docker.clone(),
            recipe: recipe.clone(),
            status: status.clone(),
            end_rx,
        };
        tokio::spawn(async move {
            watcher.run().await;
            done_tx.send_replace(true);
        });
        Arc::new(DockerInstance {
            recipe,
            addr,
            docker,
            status,
            end_tx,
            done_rx,
            ports,
        })
    }

    /// Ends the watcher with `end`, and waits until it has.
    async fn end(&self, end: End) -> bool {
        let first = self.end_tx.send_if_modified(|asked| {
            let first = asked.is_none();
            if first {
                *asked = Some(end);
            }
            first
        });
        let mut done = self.done_rx.clone();
        let _ = done.wait_for(|done| *done).await;
        first
    }
}

#[async_trait]
impl Instance for DockerInstance {
    fn index(&self) -> usize {
        self.recipe.index
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn id(&self) -> String {
        self.recipe.name.clone()
    }

    fn restarts(&self) -> u32 {
        let s = self.status.lock().unwrap();
        s.engine_restarts + s.teal_restarts
    }

    fn exited(&self) -> Option<ExitInfo> {
        self.status.lock().unwrap().exited.clone()
    }

    async fn tail_logs(&self, lines: usize) -> Vec<String> {
        logs::tail(&self.docker, &self.recipe.name, lines).await
    }

    async fn stop(&self, grace: Duration) {
        if self.end(End::Stop).await {
            let secs = grace.as_secs().clamp(1, i32::MAX as u64) as i32;
            container::stop_and_remove(&self.docker, &self.recipe.name, secs).await;
            self.ports.release(self.recipe.host_port);
        }
    }

    async fn release(&self, _grace: Duration) {
        self.end(End::Release).await;
    }

    fn waiting_for(&self) -> Option<String> {
        let s = self.status.lock().unwrap();
        if !s.checked {
            return None;
        }
        match s.health {
            Some(HealthStatusEnum::HEALTHY) => None,
            Some(other) => Some(format!("docker health is {other}")),
            None => Some("docker health not reported yet".into()),
        }
    }

    fn image(&self) -> Option<String> {
        Some(self.recipe.image_id.clone())
    }
}

fn apply(status: &Mutex<Status>, seen: &Observed) {
    let mut s = status.lock().unwrap();
    s.exited = (!seen.running).then(|| seen.exit());
    s.engine_restarts = seen.restart_count;
    s.health = seen.health;
}

/// The task that watches one container.
struct Watcher {
    docker: Docker,
    recipe: Arc<Recipe>,
    status: Arc<Mutex<Status>>,
    end_rx: watch::Receiver<Option<End>>,
}

impl Watcher {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut last_restart: Option<Instant> = None;
        loop {
            tokio::select! {
                // A send, or every handle dropped: either way, stop watching.
                _ = self.end_rx.changed() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let seen = match container::observe(&self.docker, &self.recipe.name).await {
                Ok(seen) => seen,
                Err(e) => {
                    tracing::debug!(container = %self.recipe.name, "watch: {e}");
                    continue;
                }
            };
            if self.end_rx.borrow().is_some() {
                return;
            }
            let bring_back = match &seen {
                Some(seen) => {
                    apply(&self.status, seen);
                    !seen.running && !seen.restarting && self.recipe.restarts_after(&seen.exit())
                }
                None => {
                    self.status.lock().unwrap().exited = Some(ExitInfo {
                        code: None,
                        signal: None,
                        left_running: None,
                    });
                    true
                }
            };
            if !bring_back {
                continue;
            }
            // A container that keeps dying gets longer pauses; one that ran a while, short ones.
            if last_restart.is_some_and(|t| t.elapsed() > BACKOFF_MAX * 2) {
                backoff = BACKOFF_MIN;
            }
            tokio::select! {
                _ = self.end_rx.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            last_restart = Some(Instant::now());
            self.bring_back(seen.is_some()).await;
        }
    }

    /// Starts the container again, or recreates it from the recipe when it is gone.
    async fn bring_back(&self, exists: bool) {
        let name = &self.recipe.name;
        let result = if exists {
            tracing::warn!(container = %name, "container ended; starting it again");
            self.docker
                .start_container(name, None)
                .await
                .map_err(|e| short(&e))
        } else {
            tracing::warn!(container = %name, "container vanished; creating it again");
            self.recipe
                .launch(&self.docker)
                .await
                .map_err(|e| format!("{e:?}"))
        };
        match result {
            Ok(()) => self.status.lock().unwrap().teal_restarts += 1,
            Err(e) => tracing::warn!(container = %name, "could not bring it back: {e}"),
        }
    }
}
