//! Driving several hosts as one: open them (at most `parallel` at a time), lock
//! the service on every one, and run the two-phase cutover.
//!
//! 1. **Stage**: deploy with `promote = false` everywhere; each host starts and
//!    health-gates the new slot while production keeps serving.
//! 2. **Switch**: only when every host staged, promote everywhere.
//!
//! If a host fails to stage, nobody switches: the slots that did stage are
//! discarded and the deploy fails naming the host and its cause. If a switch
//! fails after others went live, those are rolled back.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::error::RemoteError;
use super::host::{Host, Mode, Needs};
use super::image::{self, LocalImage, Shipment};
use super::renewal::Renewal;
use super::report::Reporter;
use super::ssh::SshOptions;
use crate::api::client::{ClientError, EventStream};
use crate::secrets::SecretValues;
use crate::spec::{Destination, RemoteSpec, ServiceSpec};
use crate::wire::{
    ActionRequest, DeployRequest, DiscardRequest, Event, History, LockRequest, Outcome, Status,
};

/// How an action ended on one host.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    pub host: String,
    pub outcome: Outcome,
    /// The daemon's last word (the reason, when it failed).
    pub message: String,
}

/// Open hosts, in the order they were given.
pub struct Fleet {
    hosts: Vec<Host>,
    parallel: usize,
    reporter: Arc<dyn Reporter>,
    /// Services locked by this fleet, to release at the end.
    locked: Vec<String>,
    /// Renews those locks while the fleet works; dropped before they are
    /// released.
    renewal: Option<Renewal>,
}

/// Everything needed to open hosts.
pub struct Open<'a> {
    pub dests: &'a [Destination],
    pub remote: &'a RemoteSpec,
    pub options: &'a SshOptions,
    pub mode: Mode,
    pub needs: Needs,
    pub parallel: usize,
}

impl Fleet {
    /// Opens every host. If any cannot be opened, the others are closed and the
    /// first failure (in the order given) is returned; the rest are reported.
    pub async fn open(open: Open<'_>, reporter: Arc<dyn Reporter>) -> Result<Fleet, RemoteError> {
        let parallel = open.parallel.max(1);
        let results: Vec<Result<Host, RemoteError>> = futures_util::stream::iter(open.dests)
            .map(|dest| {
                let reporter = reporter.clone();
                let mode = open.mode.clone();
                async move {
                    Host::open(
                        dest,
                        open.remote,
                        open.options,
                        &mode,
                        open.needs,
                        &*reporter,
                    )
                    .await
                }
            })
            .buffered(parallel)
            .collect()
            .await;
        let mut hosts = Vec::new();
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(host) => hosts.push(host),
                Err(e) => failures.push(e),
            }
        }
        if failures.is_empty() {
            return Ok(Fleet {
                hosts,
                parallel,
                reporter,
                locked: Vec::new(),
                renewal: None,
            });
        }
        for host in hosts {
            host.close().await;
        }
        let mut failures = failures.into_iter();
        let first = failures.next().expect("at least one failure");
        for other in failures {
            reporter.note("teal", &format!("also: {other}"));
        }
        Err(first)
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn names(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Takes the deploy lock of `service` on every host (breaking others' with
    /// `force`), each lapsing after `lease` unless renewed; they are renewed
    /// until the fleet releases them. If a host refuses, the locks taken are
    /// released again.
    pub async fn lock(
        &mut self,
        service: &str,
        reason: &str,
        force: bool,
        lease: Duration,
    ) -> Result<(), RemoteError> {
        let req = LockRequest {
            owner: owner(),
            reason: reason.to_string(),
            force,
            ttl_ms: Some(lease.as_millis().try_into().unwrap_or(u64::MAX)),
        };
        for i in 0..self.hosts.len() {
            let host = &self.hosts[i];
            match host.client.lock(service, &req).await {
                Ok(grant) => {
                    if let Some(broke) = &grant.broke {
                        self.reporter
                            .note(&host.name, &format!("broke the deploy lock of {broke}"));
                    }
                    if let Some(lapsed) = &grant.lapsed {
                        self.reporter.note(
                            &host.name,
                            &format!("took over the lapsed deploy lock of {lapsed}"),
                        );
                    }
                    let host = &mut self.hosts[i];
                    host.client = host.client.clone().with_lease(Some(grant.lock.lease));
                }
                Err(e) => {
                    let e = RemoteError::daemon(&host.name, e);
                    self.locked.push(service.to_string());
                    self.release().await;
                    return Err(e);
                }
            }
        }
        self.locked.push(service.to_string());
        let clients = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.client.clone()))
            .collect();
        self.renewal = Some(Renewal::start(
            service,
            clients,
            lease,
            self.reporter.clone(),
        ));
        Ok(())
    }

    /// Releases the locks this fleet took (best effort: a failure is reported).
    pub async fn release(&mut self) {
        self.renewal = None;
        for service in std::mem::take(&mut self.locked) {
            for host in &mut self.hosts {
                if host.client.lease().is_none() {
                    continue;
                }
                if let Err(e) = host.client.unlock(&service, false).await {
                    self.reporter.note(
                        &host.name,
                        &format!("could not release the deploy lock of {service}: {e}"),
                    );
                }
                host.client = host.client.clone().with_lease(None);
            }
        }
    }

    /// Releases locks and closes every connection.
    pub async fn close(mut self) {
        self.release().await;
        for host in self.hosts {
            host.close().await;
        }
    }

    /// Ships a docker service's image to every host that lacks it, `parallel`
    /// at a time, before anything is staged: a host that cannot get it fails
    /// the deploy with nothing touched anywhere.
    pub async fn ship(&self, image: &LocalImage) -> Result<Vec<Shipment>, RemoteError> {
        image::ship_all(&self.hosts, image, self.parallel, &*self.reporter).await
    }

    /// Deploys `version` everywhere: directly on a single host, two-phase on
    /// several. With `promote = false` it stops once every host staged.
    /// `image` pins the exact image ID to run (the one shipped).
    pub async fn deploy(
        &self,
        spec: &ServiceSpec,
        version: &str,
        image: Option<&str>,
        promote: bool,
        secrets: &SecretValues,
    ) -> Result<Vec<HostOutcome>, RemoteError> {
        let deploy = |host: &Host, promote: bool| {
            let req = DeployRequest {
                spec: host.spec_for(spec),
                version: version.to_string(),
                image: image.map(str::to_string),
                promote,
                // In the request body, through ssh's forward of the control
                // socket: never on a remote command line.
                secrets: secrets.clone(),
            };
            let client = host.client.clone();
            async move { client.deploy(&req).await }
        };
        if self.hosts.len() == 1 && promote {
            let outcomes = self.each(|h| deploy(h, true)).await;
            return fail_unless(outcomes, &[Outcome::Live], |failed| {
                format!("deploy of {} {version} failed on {failed}", spec.name)
            });
        }

        let staged = self.each(|h| deploy(h, false)).await;
        let failed: Vec<&HostOutcome> = staged
            .iter()
            .filter(|o| o.outcome != Outcome::Staged)
            .collect();
        if !failed.is_empty() {
            let cause = describe(&failed);
            let who: Vec<&str> = failed.iter().map(|o| o.host.as_str()).collect();
            let reason = format!("{} failed to stage", who.join(", "));
            let discarded = self.discard(&spec.name, &staged, &reason).await;
            return Err(RemoteError::Failed(format!(
                "deploy of {} {version} failed: {cause}; nobody switched{discarded}, and production is untouched on every host",
                spec.name
            )));
        }
        if !promote {
            return Ok(staged);
        }

        let switched = self
            .each(|host| {
                let client = host.client.clone();
                let name = spec.name.clone();
                async move { client.promote(&name).await }
            })
            .await;
        let failed: Vec<&HostOutcome> = switched
            .iter()
            .filter(|o| o.outcome != Outcome::Live)
            .collect();
        if failed.is_empty() {
            return Ok(switched);
        }
        let cause = describe(&failed);
        let live: Vec<&str> = switched
            .iter()
            .filter(|o| o.outcome == Outcome::Live)
            .map(|o| o.host.as_str())
            .collect();
        let mut back = String::new();
        if !live.is_empty() {
            let rolled = self
                .each_of(&live, |host| {
                    let client = host.client.clone();
                    let name = spec.name.clone();
                    async move { client.rollback(&name, &ActionRequest::default()).await }
                })
                .await;
            back = format!("; rolled back on {}", hosts_of(&rolled, Outcome::Live));
        }
        Err(RemoteError::Failed(format!(
            "deploy of {} {version} failed at the switch: {cause}{back}",
            spec.name
        )))
    }

    /// Discards the staged slot on the hosts that staged; returns a clause for
    /// the failure message.
    async fn discard(&self, service: &str, staged: &[HostOutcome], reason: &str) -> String {
        let on: Vec<&str> = staged
            .iter()
            .filter(|o| o.outcome == Outcome::Staged)
            .map(|o| o.host.as_str())
            .collect();
        if on.is_empty() {
            return String::new();
        }
        let req = DiscardRequest {
            reason: Some(reason.to_string()),
        };
        let done = self
            .each_of(&on, |host| {
                let client = host.client.clone();
                let req = req.clone();
                let service = service.to_string();
                async move { client.discard(&service, &req).await }
            })
            .await;
        let ok = hosts_of(&done, Outcome::Discarded);
        let bad: Vec<&HostOutcome> = done
            .iter()
            .filter(|o| o.outcome != Outcome::Discarded)
            .collect();
        let mut clause = format!(" (staged slots removed on {ok})");
        if ok.is_empty() {
            clause.clear();
        }
        if !bad.is_empty() {
            clause.push_str(&format!(
                "; could not remove the staged slot: {}",
                describe(&bad)
            ));
        }
        clause
    }

    /// Promotes the staged slot everywhere.
    pub async fn promote(&self, service: &str) -> Result<Vec<HostOutcome>, RemoteError> {
        let outcomes = self
            .each(|host| {
                let client = host.client.clone();
                let service = service.to_string();
                async move { client.promote(&service).await }
            })
            .await;
        fail_unless(outcomes, &[Outcome::Live], |failed| {
            format!("promote of {service} failed on {failed}")
        })
    }

    /// Rolls back everywhere.
    pub async fn rollback(
        &self,
        service: &str,
        spec: Option<&ServiceSpec>,
    ) -> Result<Vec<HostOutcome>, RemoteError> {
        let outcomes = self
            .each(|host| {
                let client = host.client.clone();
                let service = service.to_string();
                let req = ActionRequest {
                    spec: spec.map(|s| host.spec_for(s)),
                };
                async move { client.rollback(&service, &req).await }
            })
            .await;
        fail_unless(outcomes, &[Outcome::Live], |failed| {
            format!("rollback of {service} failed on {failed}")
        })
    }

    /// Status of every host.
    pub async fn status(
        &self,
        service: Option<&str>,
    ) -> Vec<(String, Result<Status, ClientError>)> {
        self.query(|host| {
            let client = host.client.clone();
            let service = service.map(str::to_string);
            async move { client.status(service.as_deref()).await }
        })
        .await
    }

    /// History of `service` on every host.
    pub async fn history(&self, service: &str) -> Vec<(String, Result<History, ClientError>)> {
        self.query(|host| {
            let client = host.client.clone();
            let service = service.to_string();
            async move { client.history(&service).await }
        })
        .await
    }

    /// Runs one call on every host, in order, without a lock (reads, and
    /// the gate changes of `teal maintenance`, `pause` and `resume`).
    pub async fn query<T, F, Fut>(&self, call: F) -> Vec<(String, Result<T, ClientError>)>
    where
        F: Fn(&Host) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        futures_util::stream::iter(&self.hosts)
            .map(|host| {
                let call = call(host);
                async move { (host.name.clone(), call.await) }
            })
            .buffered(self.parallel)
            .collect()
            .await
    }

    /// Starts a streamed action on every host (`parallel` at a time) and follows
    /// each stream to its end, reporting every event with the host's name.
    async fn each<F, Fut>(&self, start: F) -> Vec<HostOutcome>
    where
        F: Fn(&Host) -> Fut,
        Fut: Future<Output = Result<EventStream, ClientError>>,
    {
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        self.each_of(&names, start).await
    }

    async fn each_of<F, Fut>(&self, names: &[&str], start: F) -> Vec<HostOutcome>
    where
        F: Fn(&Host) -> Fut,
        Fut: Future<Output = Result<EventStream, ClientError>>,
    {
        let hosts = self
            .hosts
            .iter()
            .filter(|h| names.contains(&h.name.as_str()));
        futures_util::stream::iter(hosts)
            .map(|host| {
                let started = start(host);
                let reporter = self.reporter.clone();
                async move { follow(&host.name, started.await, &*reporter).await }
            })
            .buffered(self.parallel)
            .collect()
            .await
    }
}

/// Follows one host's event stream to its `done` event.
async fn follow(
    host: &str,
    started: Result<EventStream, ClientError>,
    reporter: &dyn Reporter,
) -> HostOutcome {
    let failed = |message: String| HostOutcome {
        host: host.to_string(),
        outcome: Outcome::Failed,
        message,
    };
    let mut stream = match started {
        Ok(stream) => stream,
        Err(e) => return failed(e.to_string()),
    };
    loop {
        match stream.next().await {
            Ok(Some(event)) => {
                reporter.event(host, &event);
                if let Event::Done {
                    outcome, message, ..
                } = event
                {
                    return HostOutcome {
                        host: host.to_string(),
                        outcome,
                        message,
                    };
                }
            }
            Ok(None) => {
                return failed("the daemon closed the stream before the action finished".into());
            }
            Err(e) => return failed(format!("lost the daemon's progress stream: {e}")),
        }
    }
}

/// Ok when every outcome is one of `ok`; otherwise the failure named by `what`.
fn fail_unless(
    outcomes: Vec<HostOutcome>,
    ok: &[Outcome],
    what: impl FnOnce(&str) -> String,
) -> Result<Vec<HostOutcome>, RemoteError> {
    let failed: Vec<&HostOutcome> = outcomes
        .iter()
        .filter(|o| !ok.contains(&o.outcome))
        .collect();
    if failed.is_empty() {
        return Ok(outcomes);
    }
    Err(RemoteError::Failed(what(&describe(&failed))))
}

/// "b: the new slot failed its health check: ...; c: ..."
fn describe(failed: &[&HostOutcome]) -> String {
    failed
        .iter()
        .map(|o| format!("{}: {}", o.host, o.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn hosts_of(outcomes: &[HostOutcome], outcome: Outcome) -> String {
    outcomes
        .iter()
        .filter(|o| o.outcome == outcome)
        .map(|o| o.host.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who takes a deploy lock: `user@machine` of this side.
pub fn owner() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{machine}")
}
