//! What ACME leaves on disk, under `<state_dir>/acme/`: `account.json` (the
//! account's credentials per directory URL) and `certs/<service>/fullchain.pem`
//! and `key.pem`. Every file is mode 0600 and written like the state (temp,
//! fsync, rename, fsync dir, through `state::write_atomic`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::spec::TlsFiles;
use crate::state::{StateError, write_atomic};

use super::AcmeError;

/// The `acme/` directory of one state dir.
#[derive(Debug, Clone)]
pub(super) struct Store {
    root: PathBuf,
}

impl Store {
    pub(super) fn new(state_dir: &Path) -> Store {
        Store {
            root: state_dir.join("acme"),
        }
    }

    /// Where `service`'s certificate lives (whether or not it exists).
    pub(super) fn files(&self, service: &str) -> TlsFiles {
        let dir = self.root.join("certs").join(service);
        TlsFiles {
            cert: dir.join("fullchain.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Writes a new certificate of `service` beside the stored one
    /// (`fullchain.pem.new`, `key.pem.new`), to be checked before
    /// [`Store::commit`] puts it in place: a bad one never replaces a good one.
    pub(super) fn stage(
        &self,
        service: &str,
        chain: &str,
        key: &str,
    ) -> Result<TlsFiles, AcmeError> {
        let files = self.files(service);
        if let Some(dir) = files.cert.parent() {
            make_private_dir(dir)?;
        }
        let staged = TlsFiles {
            cert: files.cert.with_extension("pem.new"),
            key: files.key.with_extension("pem.new"),
        };
        write_atomic(&staged.key, key.as_bytes())?;
        write_atomic(&staged.cert, chain.as_bytes())?;
        Ok(staged)
    }

    /// Puts a staged certificate of `service` in place: the key first, then
    /// the chain, then the directory is synced.
    pub(super) fn commit(&self, service: &str, staged: &TlsFiles) -> Result<(), AcmeError> {
        let files = self.files(service);
        for (from, to) in [(&staged.key, &files.key), (&staged.cert, &files.cert)] {
            std::fs::rename(from, to).map_err(|error| StateError::Io {
                path: to.clone(),
                error,
            })?;
        }
        if let Some(dir) = files.cert.parent() {
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|error| StateError::Io {
                    path: dir.to_path_buf(),
                    error,
                })?;
        }
        Ok(())
    }

    /// The stored credentials for `directory`, if any (`account.json` maps
    /// directory URLs to credentials, so another directory makes another
    /// account).
    pub(super) fn account(&self, directory: &str) -> Result<Option<serde_json::Value>, AcmeError> {
        Ok(self.accounts()?.remove(directory))
    }

    pub(super) fn save_account(
        &self,
        directory: &str,
        credentials: serde_json::Value,
    ) -> Result<(), AcmeError> {
        let mut accounts = self.accounts()?;
        accounts.insert(directory.to_string(), credentials);
        make_private_dir(&self.root)?;
        let bytes = serde_json::to_vec_pretty(&accounts).map_err(|error| AcmeError::Store {
            path: self.account_path(),
            message: error.to_string(),
        })?;
        write_atomic(&self.account_path(), &bytes)?;
        Ok(())
    }

    pub(super) fn account_path(&self) -> PathBuf {
        self.root.join("account.json")
    }

    fn accounts(&self) -> Result<BTreeMap<String, serde_json::Value>, AcmeError> {
        let path = self.account_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| AcmeError::Store {
                path,
                message: format!("corrupt account file: {error}"),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(error) => Err(StateError::Io { path, error }.into()),
        }
    }
}

/// Creates `dir` (and its parents) readable by the owner only.
fn make_private_dir(dir: &Path) -> Result<(), AcmeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| {
            StateError::Io {
                path: dir.to_path_buf(),
                error,
            }
            .into()
        })
}

#[cfg(test)]
mod tests;
