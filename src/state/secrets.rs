//! The secret store: the values of each service's secrets, per slot, in one
//! 0600 file per service under `state_dir/secret-store/` (the directory 0700).
//!
//! It exists so that what starts instances without a deploy request (a daemon
//! restart that adopts or restarts the live slot, a rollback that redeploys)
//! has the values; `state.json` and its history hold the names only. A slot's
//! entry is written when a deploy starts instances there, so the live slot's
//! entry is always what its instances were given. Each value comes with a
//! digest (SHA-256 of a per-store random salt, the name and the value; a
//! prefix is shown) and when it last changed, so `teal status` can say that a
//! secret changed without showing it or making it guessable offline.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::HistoryEntry;
use super::store::{StateError, write_atomic};
use crate::secrets::SecretValues;
use crate::slot::Slot;

/// The store's directory inside `state_dir` (not `secrets`: with the default
/// `state_dir = ".teal"` that is the user's own secrets file).
pub const STORE_DIR: &str = "secret-store";

/// How many hex digits of a digest are shown.
const SHOWN_DIGEST: usize = 12;

/// One secret as `teal status` shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStatus {
    pub name: String,
    /// A prefix of the salted SHA-256 of the value: changes when it changes.
    pub digest: String,
    /// When a deploy last gave it a different value (RFC 3339).
    pub changed: String,
}

/// The store of one daemon's state directory.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    /// Hex; random, made with the file.
    salt: String,
    /// By slot ("blue", "green"), then by name.
    slots: BTreeMap<String, BTreeMap<String, StoredSecret>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredSecret {
    value: String,
    digest: String,
    changed: String,
}

impl SecretStore {
    pub fn new(state_dir: &Path) -> SecretStore {
        SecretStore {
            dir: state_dir.join(STORE_DIR),
        }
    }

    fn file(&self, service: &str) -> PathBuf {
        self.dir.join(format!("{service}.json"))
    }

    /// Records `values` as what `slot` of `service` runs with. A value whose
    /// digest equals the `live` slot's keeps that one's change time. Returns
    /// the names whose value changed (or is new).
    pub fn save(
        &self,
        service: &str,
        slot: Slot,
        live: Option<Slot>,
        values: &SecretValues,
    ) -> Result<Vec<String>, StateError> {
        let path = self.file(service);
        let mut file = self.read(service)?.unwrap_or_default();
        if file.salt.is_empty() {
            file.salt = random_salt().map_err(io(&path))?;
        }
        let before = live
            .and_then(|live| file.slots.get(live.as_str()))
            .cloned()
            .unwrap_or_default();
        let now = HistoryEntry::timestamp(SystemTime::now());
        let mut changed = Vec::new();
        let mut entries = BTreeMap::new();
        for (name, value) in values.iter() {
            let digest = digest(&file.salt, name, value);
            let since = match before.get(name) {
                Some(old) if old.digest == digest => old.changed.clone(),
                _ => {
                    changed.push(name.clone());
                    now.clone()
                }
            };
            let secret = StoredSecret {
                value: value.clone(),
                digest,
                changed: since,
            };
            entries.insert(name.clone(), secret);
        }
        file.slots.insert(slot.as_str().to_string(), entries);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        let bytes = serde_json::to_vec(&file).expect("the store serializes");
        write_atomic(&path, &bytes)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
        Ok(changed)
    }

    /// Whether `service` has a store file (then a deploy without secrets
    /// records that too, so `teal status` shows none).
    pub fn has(&self, service: &str) -> bool {
        self.file(service).exists()
    }

    /// What `slot` of `service` was last given (empty when nothing).
    pub fn load(&self, service: &str, slot: Slot) -> Result<SecretValues, StateError> {
        let values = self
            .read(service)?
            .and_then(|mut file| file.slots.remove(slot.as_str()))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, secret)| (name, secret.value))
            .collect();
        Ok(SecretValues::new(values))
    }

    /// The secrets of `slot` of `service`, without values.
    pub fn status(&self, service: &str, slot: Slot) -> Result<Vec<SecretStatus>, StateError> {
        let entries = self
            .read(service)?
            .and_then(|mut file| file.slots.remove(slot.as_str()))
            .unwrap_or_default();
        Ok(entries
            .into_iter()
            .map(|(name, secret)| SecretStatus {
                name,
                digest: secret.digest[..SHOWN_DIGEST.min(secret.digest.len())].to_string(),
                changed: secret.changed,
            })
            .collect())
    }

    fn read(&self, service: &str) -> Result<Option<StoreFile>, StateError> {
        let path = self.file(service);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StateError::Corrupt { path, error })
    }
}

fn digest(salt: &str, name: &str, value: &str) -> String {
    let mut hash = Sha256::new();
    for part in [salt, name, value] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_salt() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |error| StateError::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(test)]
mod tests;
