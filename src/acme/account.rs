//! The ACME account: created once per directory URL and kept in
//! `account.json` (`store.rs`), restored from there on every start. Its
//! HTTPS client trusts the system's roots, plus `acme_ca` when given.

use std::sync::Arc;

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{Account, AccountCredentials, BodyWrapper, NewAccount};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::AcmeError;
use super::store::Store;
use crate::spec::AcmeSpec;

/// The account for `settings.directory`: the stored one, or a new one
/// (stored before it is used).
pub(super) async fn open(settings: &AcmeSpec, store: &Store) -> Result<Account, AcmeError> {
    if let Some(stored) = store.account(&settings.directory)? {
        let credentials: AccountCredentials =
            serde_json::from_value(stored).map_err(|error| AcmeError::Store {
                path: store.account_path(),
                message: format!("corrupt account credentials: {error}"),
            })?;
        return Ok(builder(settings)?.from_credentials(credentials).await?);
    }
    let contact = format!("mailto:{}", settings.email);
    let (account, credentials) = builder(settings)?
        .create(
            &NewAccount {
                contact: &[&contact],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    let value = serde_json::to_value(&credentials).map_err(|error| AcmeError::Store {
        path: store.account_path(),
        message: error.to_string(),
    })?;
    store.save_account(&settings.directory, value)?;
    tracing::info!(directory = %settings.directory, id = account.id(), "ACME account created");
    Ok(account)
}

/// An account builder whose HTTPS client trusts the platform's roots and
/// `acme_ca`'s (rustls with ring).
fn builder(settings: &AcmeSpec) -> Result<instant_acme::AccountBuilder, AcmeError> {
    let extra = match &settings.ca {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| AcmeError::Client(format!("acme_ca {}: {error}", path.display())))?,
        None => Vec::new(),
    };
    #[allow(deprecated)] // ring, as the builtin proxy's TLS listener
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
            .map_err(|error| AcmeError::Client(error.to_string()))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| AcmeError::Client(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client: Client<_, BodyWrapper<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    Ok(Account::builder_with_http(Box::new(client)))
}
