//! One order (RFC 8555 7.4): a certificate for all of a service's hosts,
//! each name proved by HTTP-01 through the router's plain listener
//! (`Router::set_challenge`), a fresh ECDSA P-256 key and its CSR made
//! with rcgen. The challenge answers are withdrawn however the order ends.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::AcmeError;
use crate::router::Router;

/// How long the server may take to validate every name, then to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(90);

/// A certificate chain (PEM, the leaf first) and its private key (PEM).
pub(super) struct Issued {
    pub chain: String,
    pub key: String,
}

/// Orders a certificate covering `hosts` and waits for it.
pub(super) async fn order(
    account: &Account,
    router: &dyn Router,
    hosts: &[String],
) -> Result<Issued, AcmeError> {
    let identifiers: Vec<Identifier> = hosts.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut tokens = Vec::new();
    let validated = validate(&mut order, router, &mut tokens).await;
    for token in &tokens {
        if let Err(error) = router.set_challenge(token, None).await {
            tracing::warn!(%error, "withdrawing an ACME challenge answer");
        }
    }
    validated?;

    let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Csr(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| AcmeError::Csr(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AcmeError::Csr(e.to_string()))?;
    order.finalize_csr(csr.der()).await?;
    let chain = order.poll_certificate(&retries()).await?;
    Ok(Issued {
        chain,
        key: key.serialize_pem(),
    })
}

/// Answers every pending authorization's HTTP-01 challenge (the tokens set
/// go to `tokens`) and waits until the order is ready to finalize.
async fn validate(
    order: &mut instant_acme::Order,
    router: &dyn Router,
    tokens: &mut Vec<String>,
) -> Result<(), AcmeError> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(AcmeError::Refused(format!(
                    "authorization for {} is {status:?}",
                    authz.identifier()
                )));
            }
        }
        let name = authz.identifier().to_string();
        let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
            AcmeError::Refused(format!("no http-01 challenge offered for {name}"))
        })?;
        let answer = challenge.key_authorization();
        router
            .set_challenge(&challenge.token, Some(answer.as_str()))
            .await
            .map_err(|error| AcmeError::Router(error.to_string()))?;
        tokens.push(challenge.token.clone());
        challenge.set_ready().await?;
    }
    match order.poll_ready(&retries()).await? {
        OrderStatus::Ready => Ok(()),
        status => Err(AcmeError::Refused(format!(
            "the order is {status:?}{}",
            order
                .state()
                .error
                .as_ref()
                .map(|problem| format!(": {problem}"))
                .unwrap_or_default()
        ))),
    }
}

fn retries() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(VALIDATION_TIMEOUT)
}
