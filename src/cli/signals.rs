//! Waiting for SIGTERM or SIGINT, for foreground commands that stop gracefully,
//! and for SIGUSR2, which asks `teal serve` to start its successor.

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
