//! One ACME service's task: order when it has no usable certificate, renew
//! when a third of its lifetime is left, back off after a failure
//! (`acme_retry`, doubling with each failure in a row, at most a day), and
//! install what it got (when that install failed, the stored certificate is
//! installed again later, without a new order). It never orders in a loop:
//! every attempt is followed by a wait, and a certificate that is valid and
//! not due is never ordered again. It ends with the daemon's shutdown or
//! when the service stops being an ACME service.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::status::{self, CertInfo};
use super::{AcmeError, Shared, account, order};
use crate::spec::ServiceSpec;

/// The longest wait between failed attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// How long one attempt may take in all (account, order, validation,
/// issuance), so that an ACME server that stops answering mid-request
/// cannot hold the service's task: the attempt fails and backs off.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) async fn run(shared: Arc<Shared>, name: String, wake: Arc<Notify>) {
    // No order before the daemon's plain listener accepts.
    tokio::select! {
        _ = shared.serving.cancelled() => {}
        _ = shared.shutdown.cancelled() => return,
    }
    let retry = shared
        .settings
        .as_ref()
        .map_or(crate::spec::DEFAULT_ACME_RETRY, |s| s.retry);
    let mut backoff: Option<Duration> = None;
    let mut not_before = SystemTime::now();
    loop {
        let Some(spec) = current(&shared, &name) else {
            return;
        };
        let files = shared.store.files(&name);
        // A usable stored certificate the router does not serve yet (its
        // install failed) is installed again, not ordered again.
        let (due, step) = match status::usable(&files, &spec.hosts) {
            Ok(info) if !served(&shared, &name, &info) => (SystemTime::now(), Step::Install),
            Ok(info) => (info.renew_at(), Step::Order),
            Err(_) => (SystemTime::now(), Step::Order),
        };
        let at = due.max(not_before);
        set_next(&shared, &name, Some(at));
        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => continue,
            _ = shared.shutdown.cancelled() => return,
        }
        let started = SystemTime::now();
        let result = tokio::select! {
            result = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(&shared, &spec, step)) => {
                result.unwrap_or(Err(AcmeError::TimedOut(ATTEMPT_TIMEOUT)))
            }
            _ = shared.shutdown.cancelled() => return,
        };
        let mut services = shared.lock();
        let Some(entry) = services.get_mut(&name) else {
            return;
        };
        entry.progress.last_attempt = Some(started);
        match result {
            Ok(info) => {
                tracing::info!(service = %name, serial = %info.serial, "certificate installed");
                entry.progress.served = Some(info);
                entry.progress.last_error = None;
                backoff = None;
                not_before = SystemTime::now();
            }
            Err(error) => {
                let wait = backoff.map_or(retry, |b| (b * 2).min(MAX_BACKOFF));
                tracing::warn!(service = %name, %error, retry_in = ?wait, "certificate order failed");
                entry.progress.last_error = Some(error.to_string());
                backoff = Some(wait);
                not_before = SystemTime::now() + wait;
            }
        }
    }
}

/// What an attempt does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Order a certificate, store it, install it.
    Order,
    /// Install the stored one (a previous install failed).
    Install,
}

/// Whether the router serves `info` (the stored certificate) for `name`.
fn served(shared: &Shared, name: &str, info: &CertInfo) -> bool {
    shared
        .lock()
        .get(name)
        .and_then(|entry| entry.progress.served.as_ref())
        .is_some_and(|served| served.serial == info.serial)
}

/// The service's spec while it is an ACME service.
fn current(shared: &Shared, name: &str) -> Option<ServiceSpec> {
    shared
        .lock()
        .get(name)
        .map(|entry| entry.spec.clone())
        .filter(|spec| spec.acme)
}

fn set_next(shared: &Shared, name: &str, at: Option<SystemTime>) {
    if let Some(entry) = shared.lock().get_mut(name) {
        entry.progress.next_attempt = at;
    }
}

/// One order for `spec`'s hosts, stored and installed; or only the
/// install of the stored certificate.
async fn attempt(shared: &Shared, spec: &ServiceSpec, step: Step) -> Result<CertInfo, AcmeError> {
    if let Step::Install = step {
        let _install = shared.install.lock().await;
        return install(shared, spec).await;
    }
    let settings = shared.settings.as_ref().ok_or(AcmeError::NoAccount)?;
    let account = {
        let mut held = shared.account.lock().await;
        match held.as_ref() {
            Some(account) => account.clone(),
            None => {
                let opened = account::open(settings, &shared.store).await?;
                *held = Some(opened.clone());
                opened
            }
        }
    };
    tracing::info!(service = %spec.name, hosts = ?spec.hosts, "ordering a certificate");
    let issued = order::order(&account, shared.inner.as_ref(), &spec.hosts).await?;
    // Checked before it replaces the stored one, which stays otherwise.
    let staged = shared.store.stage(&spec.name, &issued.chain, &issued.key)?;
    status::usable(&staged, &spec.hosts)
        .map_err(|why| AcmeError::Refused(format!("the issued certificate: {why}")))?;
    let _install = shared.install.lock().await;
    shared.store.commit(&spec.name, &staged)?;
    install(shared, spec).await
}

/// Installs the stored certificate of `spec`'s service through the router
/// (called with the install lock held).
async fn install(shared: &Shared, spec: &ServiceSpec) -> Result<CertInfo, AcmeError> {
    let files = shared.store.files(&spec.name);
    let info = status::usable(&files, &spec.hosts).map_err(AcmeError::Refused)?;
    // The latest spec (a deploy may have changed it meanwhile), with the
    // stored files.
    let mut latest = current(shared, &spec.name).unwrap_or_else(|| spec.clone());
    latest.tls = Some(files);
    shared
        .inner
        .reload_certificate(&latest)
        .await
        .map_err(|error| AcmeError::Router(error.to_string()))?;
    if let Some(entry) = shared.lock().get_mut(&spec.name) {
        entry.spec = latest;
    }
    Ok(info)
}
