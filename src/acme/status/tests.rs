//! Stored certificates judged as the ACME layer judges them: real PEM files
//! made with rcgen in a temporary directory.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{CertInfo, usable};
use crate::spec::TlsFiles;

/// A self-signed certificate for `names` valid from `from` to `until`,
/// written to `dir`.
fn write_cert(dir: &Path, names: &[&str], from: SystemTime, until: SystemTime) -> TlsFiles {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = from.into();
    params.not_after = until.into();
    let cert = params.self_signed(&key).unwrap();
    let files = TlsFiles {
        cert: dir.join("fullchain.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn a_valid_certificate_for_the_hosts_is_usable_and_renewed_with_a_third_left() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let files = write_cert(dir.path(), &["a.test", "b.test"], now - DAY, now + 89 * DAY);
    let hosts = vec!["a.test".to_string(), "b.test".to_string()];
    let info = usable(&files, &hosts).unwrap();
    assert_eq!(info.names, ["a.test", "b.test"]);
    assert!(!info.serial.is_empty() && !info.serial.contains(':'));
    let renew = info.renew_at();
    let expected = info.not_after - 30 * DAY;
    assert!(
        renew
            .duration_since(expected)
            .unwrap_or_else(|e| e.duration())
            < Duration::from_secs(2)
    );
}

#[test]
fn missing_foreign_expired_or_broken_files_are_not_usable() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let hosts = vec!["a.test".to_string()];
    let missing = TlsFiles {
        cert: dir.path().join("none.pem"),
        key: dir.path().join("none.key"),
    };
    assert!(
        usable(&missing, &hosts)
            .unwrap_err()
            .contains("no certificate yet")
    );

    let files = write_cert(dir.path(), &["other.test"], now - DAY, now + DAY);
    assert!(
        usable(&files, &hosts)
            .unwrap_err()
            .contains("does not cover host")
    );

    let files = write_cert(dir.path(), &["a.test"], now - 2 * DAY, now - DAY);
    assert!(usable(&files, &hosts).unwrap_err().contains("expired"));

    let files = write_cert(dir.path(), &["a.test"], now - DAY, now + DAY);
    std::fs::write(&files.key, "not a key").unwrap();
    assert!(usable(&files, &hosts).is_err(), "an unreadable key");
    std::fs::write(&files.cert, "garbage").unwrap();
    assert!(CertInfo::read(&files.cert).is_err());
    assert!(usable(&files, &hosts).is_err(), "an unreadable certificate");
}
