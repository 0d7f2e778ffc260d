//! Waiting for SIGTERM or SIGINT, for foreground commands that stop gracefully,
//! for SIGUSR2, which asks `teal serve` to start its successor, and for
//! SIGUSR1, which asks it to reopen its access log.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on the first SIGTERM or SIGINT.
pub async fn terminated() {
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Calls `reopen` on every SIGUSR1 (nginx's and logrotate's signal to
/// reopen log files).
pub async fn on_reopen(reopen: impl Fn()) {
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::warn!(
            "cannot install a SIGUSR1 handler: the access log is not reopened by signal"
        );
        return;
    };
    while usr1.recv().await.is_some() {
        reopen();
    }
}

/// Calls `start` on every SIGUSR2 (nginx's signal for a binary upgrade).
pub async fn on_upgrade(start: impl Fn()) {
    let Ok(mut usr2) = signal(SignalKind::user_defined2()) else {
        tracing::warn!("cannot install a SIGUSR2 handler: upgrades by signal are off");
        return;
    };
    while usr2.recv().await.is_some() {
        start();
    }
}
