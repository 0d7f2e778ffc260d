//! The secret store (`secrets.rs`): 0600 file in a 0700 directory, values per
//! slot, digests that change with the value and keep their time otherwise.

use std::os::unix::fs::PermissionsExt;

use super::{STORE_DIR, SecretStore};
use crate::secrets::SecretValues;
use crate::slot::Slot;

fn values(pairs: &[(&str, &str)]) -> SecretValues {
    SecretValues::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn values_are_kept_per_slot_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path());
    let changed = store
        .save("web", Slot::Blue, None, &values(&[("TOKEN", "one")]))
        .unwrap();
    assert_eq!(changed, ["TOKEN"]);
    store
        .save(
            "web",
            Slot::Green,
            Some(Slot::Blue),
            &values(&[("TOKEN", "two")]),
        )
        .unwrap();
    assert_eq!(
        store.load("web", Slot::Blue).unwrap().get("TOKEN"),
        Some("one")
    );
    assert_eq!(
        store.load("web", Slot::Green).unwrap().get("TOKEN"),
        Some("two")
    );
    assert!(store.load("other", Slot::Blue).unwrap().is_empty());

    let file = dir.path().join(STORE_DIR).join("web.json");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.path().join(STORE_DIR)), 0o700);
}

#[test]
fn status_shows_a_digest_that_changes_with_the_value_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path());
    store
        .save(
            "web",
            Slot::Blue,
            None,
            &values(&[("A", "hunter2"), ("B", "b")]),
        )
        .unwrap();
    let first = store.status("web", Slot::Blue).unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].digest.len(), 12);
    assert!(!format!("{first:?}").contains("hunter2"));

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let changed = store
        .save(
            "web",
            Slot::Green,
            Some(Slot::Blue),
            &values(&[("A", "hunter3"), ("B", "b")]),
        )
        .unwrap();
    assert_eq!(changed, ["A"]);
    let second = store.status("web", Slot::Green).unwrap();
    assert_ne!(second[0].digest, first[0].digest, "A changed");
    assert_ne!(second[0].changed, first[0].changed, "A changed");
    assert_eq!(second[1].digest, first[1].digest, "B kept its value");
    assert_eq!(second[1].changed, first[1].changed, "B kept its time");
}
