//! `--force-unlock` against the local daemon: break the service's deploy lock
//! before acting, saying whose it was.

use crate::api::client::Client;

/// Breaks the deploy lock of `service`, if any, and says whose it was.
pub async fn force(client: &Client, service: &str) -> anyhow::Result<()> {
    if let Some(lock) = client.unlock(service, true).await?.released {
        eprintln!("broke the deploy lock of {service}: {lock}");
    }
    Ok(())
}
