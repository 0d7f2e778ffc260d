//! The values of a service's secrets for one action: from the deploy request,
//! or (a rollback that redeploys, a restart) from the store of what the live
//! slot was given; recorded in the store for the slot being started, before
//! any instance or hook sees them. Progress, errors and logs name secrets,
//! never their values.

use super::{DeployError, Deployer, Progress};
use crate::secrets::SecretValues;
use crate::slot::Slot;
use crate::spec::ServiceSpec;
use crate::state::{Action, SecretStatus, SecretStore, ServiceRecord};

impl Deployer {
    fn secret_store(&self) -> SecretStore {
        SecretStore::new(self.state.store().dir())
    }

    /// The values of `spec.secrets` for `action`: a deploy's own (`sent`), or
    /// for a rollback the `live` slot's from the store. Fails naming the first
    /// secret without a value, before anything starts.
    pub(super) fn secret_values(
        &self,
        spec: &ServiceSpec,
        action: Action,
        live: Option<Slot>,
        sent: SecretValues,
    ) -> Result<SecretValues, DeployError> {
        if spec.secrets.is_empty() {
            return Ok(SecretValues::default());
        }
        if action != Action::Rollback {
            return sent.only(&spec.secrets.names).map_err(|name| {
                DeployError::Invalid(format!(
                    "secret {name} was not sent with the deploy (`teal deploy` reads it on the deploying machine)"
                ))
            });
        }
        let stored = match live {
            Some(slot) => self
                .secret_store()
                .load(&spec.name, slot)
                .map_err(DeployError::State)?,
            None => SecretValues::default(),
        };
        stored.only(&spec.secrets.names).map_err(|name| {
            DeployError::Invalid(format!(
                "no value of secret {name} is stored on this host: deploy (which sends it) instead of rolling back"
            ))
        })
    }

    /// Records the values `spec` carries as what `slot` runs with, and says
    /// which secrets are given and which changed since the `live` slot's.
    pub(super) fn store_secrets(
        &self,
        spec: &ServiceSpec,
        slot: Slot,
        live: Option<Slot>,
        progress: &Progress,
    ) -> Result<(), DeployError> {
        let store = self.secret_store();
        if spec.secrets.is_empty() && !store.has(&spec.name) {
            return Ok(());
        }
        let changed = store
            .save(&spec.name, slot, live, &spec.secrets.values)
            .map_err(DeployError::State)?;
        if !spec.secrets.is_empty() {
            let names: Vec<String> = spec
                .secrets
                .names
                .iter()
                .map(|name| match changed.contains(name) {
                    true => format!("{name} (changed)"),
                    false => name.clone(),
                })
                .collect();
            progress.info(format!("secrets: {}", names.join(", ")));
        }
        Ok(())
    }

    /// The live slot's secrets as `teal status` shows them (no values).
    pub(super) fn secret_status(&self, record: &ServiceRecord) -> Vec<SecretStatus> {
        let Some(live) = record.active_slot else {
            return Vec::new();
        };
        match self.secret_store().status(&record.spec.name, live) {
            Ok(status) => status,
            Err(e) => {
                tracing::error!(service = %record.spec.name, "could not read the secret store: {e}");
                Vec::new()
            }
        }
    }
}

/// `record.spec` with its secrets' values from the store (what `slot` was
/// given), for a restart that adopts or restarts the live slot.
pub fn with_stored_secrets(
    store: &SecretStore,
    record: &ServiceRecord,
    slot: Slot,
) -> Result<ServiceSpec, String> {
    let mut spec = record.spec.clone();
    if spec.secrets.is_empty() {
        return Ok(spec);
    }
    let stored = store
        .load(&spec.name, slot)
        .map_err(|e| format!("could not read the secret store: {e}"))?;
    spec.secrets.values = stored.only(&spec.secrets.names).map_err(|name| {
        format!("no value of secret {name} is stored on this host; deploy to give it one")
    })?;
    Ok(spec)
}
