//! A service's certificate from the user's PEM files: read, parsed, checked
//! (the key matches the certificate, the certificate names every host), and
//! turned into what the TLS listener serves. Nothing here listens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why a certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCert { path: PathBuf },
    #[error("{path} is not a PEM certificate chain: {cause}")]
    BadCert {
        path: PathBuf,
        cause: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {cause}")]
    NoKey {
        path: PathBuf,
        cause: rustls_pki_types::pem::Error,
    },
    #[error("the key in {path} cannot be used: {cause}")]
    BadKey { path: PathBuf, cause: rustls::Error },
    #[error("the key in {key} does not match the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {path} cannot be parsed: {cause}")]
    Parse { path: PathBuf, cause: webpki::Error },
    #[error("the certificate in {path} does not cover host {host:?}")]
    NotCovered { path: PathBuf, host: String },
}

/// A certificate chain with its private key, ready to serve.
#[derive(Clone)]
pub struct ServiceCert {
    pub(crate) key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for ServiceCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCert").finish_non_exhaustive()
    }
}

impl ServiceCert {
    /// Reads a PEM certificate chain (the leaf first) and its PEM private
    /// key, and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServiceCert, CertError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|cause| CertError::Read {
                path: path.to_path_buf(),
                cause,
            })
        };
        let chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|cause| CertError::BadCert {
                path: cert.to_path_buf(),
                cause,
            })?;
        if chain.is_empty() {
            return Err(CertError::NoCert {
                path: cert.to_path_buf(),
            });
        }
        let der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|cause| CertError::NoKey {
            path: key.to_path_buf(),
            cause,
        })?;
        let provider = super::provider();
        let signing = provider
            .key_provider
            .load_private_key(der)
            .map_err(|cause| CertError::BadKey {
                path: key.to_path_buf(),
                cause,
            })?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(CertError::Mismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                });
            }
            Err(cause) => {
                return Err(CertError::BadKey {
                    path: key.to_path_buf(),
                    cause,
                });
            }
        }
        // The leaf must parse for the host check and for clients.
        let leaf = &certified.cert[0];
        webpki::EndEntityCert::try_from(leaf).map_err(|cause| CertError::Parse {
            path: cert.to_path_buf(),
            cause,
        })?;
        Ok(ServiceCert {
            key: Arc::new(certified),
        })
    }

    /// The first of `hosts` the certificate does not name (its subject
    /// alternative names, wildcards as clients match them), if any.
    pub fn uncovered<'a>(&self, hosts: &'a [String]) -> Option<&'a str> {
        let leaf = webpki::EndEntityCert::try_from(&self.key.cert[0]).ok()?;
        hosts.iter().map(String::as_str).find(|host| {
            let Ok(name) = ServerName::try_from(*host) else {
                return true;
            };
            leaf.verify_is_valid_for_subject_name(&name).is_err()
        })
    }
}
