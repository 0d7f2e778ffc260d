//! `[proxy.tls]` and each service's `tls`: the TLS listener, and the user's
//! own certificate files, read and checked when the config loads (the files
//! can be read, the key matches the certificate, the certificate names every
//! host of the service), so a bad file fails the config and changes nothing.
//! `tls = "acme"` asks the daemon to order the certificate (`crate::acme`),
//! with the account settings of `[proxy.tls]`'s `acme_*` keys.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::{RawProxyTls, RawTls};
use super::values;
use crate::router::builtin::check_cert_files;
use crate::spec::{AcmeSpec, DEFAULT_ACME_RETRY, LETS_ENCRYPT, TlsFiles, TlsListenSpec};

/// The longest `acme_retry`: the backoff never waits longer than a day.
const MAX_ACME_RETRY: Duration = Duration::from_secs(24 * 3600);

/// Where a service's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ServiceTls {
    /// The user's own files, checked.
    Files(TlsFiles),
    /// `tls = "acme"`.
    Acme,
}

/// `[proxy.tls]`, for either router (with nginx, `nginx.rs` checks its port).
pub(super) fn listener(
    raw: Option<&Spanned<RawProxyTls>>,
    base: &Path,
) -> Result<Option<TlsListenSpec>, Invalid> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let Some(listen) = &raw.get_ref().listen else {
        return Err(Invalid::at(
            raw,
            "[proxy.tls] needs listen, the HTTPS listener's address, e.g. listen = \"0.0.0.0:443\"",
        ));
    };
    Ok(Some(TlsListenSpec {
        listen: values::socket_addr(listen, "proxy.tls.listen")?,
        redirect: raw
            .get_ref()
            .redirect
            .as_ref()
            .is_none_or(|redirect| *redirect.get_ref()),
        acme: acme(raw.get_ref(), base)?,
    }))
}

/// The `acme_*` keys: None without `acme_email` (then none of the others
/// may be given: they would be ignored).
fn acme(raw: &RawProxyTls, base: &Path) -> Result<Option<AcmeSpec>, Invalid> {
    let Some(email) = &raw.acme_email else {
        let stray = [&raw.acme_directory, &raw.acme_ca, &raw.acme_retry]
            .into_iter()
            .flatten()
            .next();
        return match stray {
            Some(value) => Err(Invalid::at(
                value,
                "the acme_* keys of [proxy.tls] need acme_email, the ACME account's contact",
            )),
            None => Ok(None),
        };
    };
    let text = email.get_ref().trim();
    let valid = text.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && domain.contains('.')
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c == ',' || c == ':')
    });
    if !valid {
        return Err(Invalid::at(
            email,
            format!(
                "proxy.tls.acme_email {text:?} is not an email address, e.g. \"ops@example.com\""
            ),
        ));
    }
    let directory = match &raw.acme_directory {
        Some(url) => {
            let text = url.get_ref().trim();
            let ok = text
                .parse::<http::Uri>()
                .is_ok_and(|uri| uri.scheme_str() == Some("https") && uri.host().is_some());
            if !ok {
                return Err(Invalid::at(
                    url,
                    format!(
                        "proxy.tls.acme_directory {text:?} is not an https URL, e.g. \"{LETS_ENCRYPT}\""
                    ),
                ));
            }
            text.to_string()
        }
        None => LETS_ENCRYPT.to_string(),
    };
    let ca = match &raw.acme_ca {
        Some(path) => {
            let resolved = values::path(path, "proxy.tls.acme_ca", base)?;
            let pem = std::fs::read(&resolved).map_err(|error| {
                Invalid::at(
                    path,
                    format!(
                        "proxy.tls.acme_ca: cannot read {}: {error}",
                        resolved.display()
                    ),
                )
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Invalid::at(
                    path,
                    format!(
                        "proxy.tls.acme_ca: {} holds no PEM certificate",
                        resolved.display()
                    ),
                ));
            }
            Some(resolved)
        }
        None => None,
    };
    let retry = match &raw.acme_retry {
        Some(value) => {
            let retry = values::duration(value, "proxy.tls.acme_retry", false)?;
            if retry > MAX_ACME_RETRY {
                return Err(Invalid::at(
                    value,
                    "proxy.tls.acme_retry is at most 1day (failed orders back off up to a day)",
                ));
            }
            retry
        }
        None => DEFAULT_ACME_RETRY,
    };
    Ok(Some(AcmeSpec {
        email: text.to_string(),
        directory,
        ca,
        retry,
    }))
}

/// A service's `tls`: `"acme"`, or its certificate files, read and checked
/// against its `hosts` (already valid DNS names).
pub(super) fn service(
    raw: &Spanned<RawTls>,
    hosts: &[String],
    section: &str,
    base: &Path,
) -> Result<ServiceTls, Invalid> {
    let files = match raw.get_ref() {
        RawTls::Word(word) if word == "acme" => {
            names_only(raw, hosts, section)?;
            return Ok(ServiceTls::Acme);
        }
        RawTls::Word(word) => {
            return Err(Invalid::at(
                raw,
                format!(
                    "unknown {section}.tls {word:?}; expected \"acme\" or a table such as tls = {{ cert = \"fullchain.pem\", key = \"key.pem\" }}"
                ),
            ));
        }
        RawTls::Files(files) => files,
    };
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        return Err(Invalid::at(
            raw,
            format!(
                "{section}.tls needs both cert and key, e.g. tls = {{ cert = \"fullchain.pem\", key = \"key.pem\" }}"
            ),
        ));
    };
    names_only(raw, hosts, section)?;
    let cert_path = values::path(cert, &format!("{section}.tls.cert"), base)?;
    let key_path = values::path(key, &format!("{section}.tls.key"), base)?;
    if let Err(problem) = check_cert_files(&cert_path, &key_path, hosts) {
        let at = if problem.about_key { key } else { cert };
        return Err(Invalid::at(
            at,
            format!("{section}.tls: {}", problem.message),
        ));
    }
    Ok(ServiceTls::Files(TlsFiles {
        cert: cert_path,
        key: key_path,
    }))
}

/// A TLS service needs hosts, and names only: the certificate is chosen by
/// SNI, and an ACME server validates names, never addresses.
fn names_only(raw: &Spanned<RawTls>, hosts: &[String], section: &str) -> Result<(), Invalid> {
    if hosts.is_empty() {
        return Err(Invalid::at(
            raw,
            format!(
                "{section}.tls needs hosts: the certificate is chosen by the name a client asks for (SNI), and a service without hosts has none"
            ),
        ));
    }
    if let Some(ip) = hosts
        .iter()
        .find(|host| host.parse::<std::net::IpAddr>().is_ok())
    {
        return Err(Invalid::at(
            raw,
            format!(
                "{section}.tls: host {ip:?} is an IP address; TLS clients ask for names (SNI), never addresses"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
