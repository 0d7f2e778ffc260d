//! What a stored certificate says about itself (names, issuer, validity,
//! serial, read with x509-parser), whether it can be served for a service's
//! hosts now, and what `teal status` shows of each ACME service.

use std::path::Path;
use std::time::{Duration, SystemTime};

use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::router::builtin::check_cert_files;
use crate::spec::TlsFiles;
use crate::state::HistoryEntry;
use crate::wire::CertificateStatus;

/// The leaf certificate of a stored chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CertInfo {
    pub names: Vec<String>,
    pub issuer: String,
    pub serial: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl CertInfo {
    /// Reads the first certificate of the PEM file at `path`.
    pub(super) fn read(path: &Path) -> Result<CertInfo, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let pem = Pem::iter_from_buffer(&bytes)
            .next()
            .ok_or_else(|| format!("{} holds no PEM certificate", path.display()))?
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| format!("{}: cannot parse the certificate: {e}", path.display()))?;
        let time = |t: &x509_parser::time::ASN1Time| {
            let secs = t.timestamp().max(0) as u64;
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    names.push(dns.to_string());
                }
            }
        }
        Ok(CertInfo {
            names,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_before: time(&cert.validity().not_before),
            not_after: time(&cert.validity().not_after),
        })
    }

    /// When to renew: once a third of its lifetime is left.
    pub(super) fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_after - life / 3
    }
}

/// The stored certificate at `files`, when it can be served for `hosts`
/// now: it loads as the proxy would (the key matches), covers every host
/// and has not expired. Else why not.
pub(super) fn usable(files: &TlsFiles, hosts: &[String]) -> Result<CertInfo, String> {
    if !files.cert.exists() {
        return Err("no certificate yet".into());
    }
    check_cert_files(&files.cert, &files.key, hosts).map_err(|problem| problem.message)?;
    let info = CertInfo::read(&files.cert)?;
    if info.not_after <= SystemTime::now() {
        return Err(format!(
            "the stored certificate expired at {}",
            HistoryEntry::timestamp(info.not_after)
        ));
    }
    Ok(info)
}

/// One ACME service as `teal status` shows it.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// The certificate served now.
    pub served: Option<CertInfo>,
    pub last_attempt: Option<SystemTime>,
    pub last_error: Option<String>,
    pub next_attempt: Option<SystemTime>,
}

impl Progress {
    pub(super) fn view(&self, service: &str, hosts: &[String]) -> CertificateStatus {
        let stamp = |t: Option<SystemTime>| t.map(HistoryEntry::timestamp);
        CertificateStatus {
            service: service.to_string(),
            names: self
                .served
                .as_ref()
                .map_or_else(|| hosts.to_vec(), |c| c.names.clone()),
            issuer: self.served.as_ref().map(|c| c.issuer.clone()),
            not_after: stamp(self.served.as_ref().map(|c| c.not_after)),
            serial: self.served.as_ref().map(|c| c.serial.clone()),
            last_attempt: stamp(self.last_attempt),
            last_error: self.last_error.clone(),
            next_attempt: stamp(self.next_attempt),
        }
    }
}

#[cfg(test)]
mod tests;
