//! `[proxy.tls]` and each service's `tls`: the TLS listener, and the user's
//! own certificate files, read and checked when the config loads (the files
//! can be read, the key matches the certificate, the certificate names every
//! host of the service), so a bad file fails the config and changes nothing.
//! Automatic certificates (`tls = "acme"`, the `acme_*` keys) are not
//! available yet: asking for them is an error that says so.

use std::path::Path;

use toml::Spanned;

use super::invalid::Invalid;
use super::keys::NO_ACME;
use super::raw::{RawProxyTls, RawTls};
use super::values;
use crate::router::builtin::check_cert_files;
use crate::spec::{TlsFiles, TlsListenSpec};

/// `[proxy.tls]`, for either router (with nginx, `nginx.rs` checks its port).
pub(super) fn listener(
    raw: Option<&Spanned<RawProxyTls>>,
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
    }))
}

/// A service's `tls`: its certificate files, read and checked against its
/// `hosts` (already valid DNS names).
pub(super) fn service(
    raw: &Spanned<RawTls>,
    hosts: &[String],
    section: &str,
    base: &Path,
) -> Result<TlsFiles, Invalid> {
    let files = match raw.get_ref() {
        RawTls::Word(word) if word == "acme" => {
            return Err(Invalid::at(raw, format!("{section}.tls: {NO_ACME}")));
        }
        RawTls::Word(word) => {
            return Err(Invalid::at(
                raw,
                format!(
                    "unknown {section}.tls {word:?}; expected a table such as tls = {{ cert = \"fullchain.pem\", key = \"key.pem\" }}"
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
    let cert_path = values::path(cert, &format!("{section}.tls.cert"), base)?;
    let key_path = values::path(key, &format!("{section}.tls.key"), base)?;
    if let Err(problem) = check_cert_files(&cert_path, &key_path, hosts) {
        let at = if problem.about_key { key } else { cert };
        return Err(Invalid::at(
            at,
            format!("{section}.tls: {}", problem.message),
        ));
    }
    Ok(TlsFiles {
        cert: cert_path,
        key: key_path,
    })
}

#[cfg(test)]
mod tests;
