//! `<state_dir>/acme/` in a temporary directory: where files go, their
//! modes, and one account per directory URL.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Store;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_staged_certificate_replaces_the_stored_one_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let files = store.files("web");
    assert_eq!(files.cert, dir.path().join("acme/certs/web/fullchain.pem"));
    assert_eq!(files.key, dir.path().join("acme/certs/web/key.pem"));

    let first = store.stage("web", "chain 1", "key 1").unwrap();
    assert!(!files.cert.exists(), "staged, not in place");
    store.commit("web", &first).unwrap();
    let second = store.stage("web", "chain 2", "key 2").unwrap();
    assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), "chain 1");
    store.commit("web", &second).unwrap();
    assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), "chain 2");
    assert_eq!(std::fs::read_to_string(&files.key).unwrap(), "key 2");
    assert!(!second.cert.exists() && !second.key.exists());
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&files.cert), 0o600);
    assert_eq!(mode(files.cert.parent().unwrap()), 0o700);
}

#[test]
fn accounts_are_kept_per_directory_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    assert_eq!(store.account("https://a.test/dir").unwrap(), None);
    store
        .save_account("https://a.test/dir", serde_json::json!({"id": "a"}))
        .unwrap();
    store
        .save_account("https://b.test/dir", serde_json::json!({"id": "b"}))
        .unwrap();
    assert_eq!(
        store.account("https://a.test/dir").unwrap(),
        Some(serde_json::json!({"id": "a"}))
    );
    assert_eq!(
        store.account("https://b.test/dir").unwrap(),
        Some(serde_json::json!({"id": "b"}))
    );
    assert_eq!(mode(&store.account_path()), 0o600);
}
