//! The demo app, the seeds' "Uptimer": 503 while loading, then 200 with JSON naming
//! its version and instance. Run as `teal demo-app` (a hidden subcommand).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How one demo-app process behaves.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub port: u16,
    pub version: String,
    /// Instance label reported in answers (from `TEAL_INSTANCE`).
    pub instance: String,
    /// Slot label reported in answers (from `TEAL_SLOT`).
    pub slot: String,
    /// How long it answers 503 "loading" after start.
    pub boot_delay: Duration,
}

/// Serves until `shutdown` fires, then finishes in-flight requests and returns.
pub async fn serve(cfg: AppConfig, shutdown: CancellationToken) -> std::io::Result<()> {
    let _ = (cfg, shutdown);
    todo!("demo app")
}
