//! Reading secrets on the deploying machine (`source.rs`): the environment
//! first, then the file; a missing name, a readable-by-others file and bad
//! syntax each refused with words that name keys and files, never values.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{SecretsError, gather};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_environment_comes_first_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    write(&file, "A=from-file\nB=\"b file\"\n", 0o600);
    let env = |k: &str| (k == "A").then(|| "from-env".to_string());
    let values = gather(&names(&["A", "B"]), &file, env).unwrap();
    assert_eq!(values.get("A"), Some("from-env"));
    assert_eq!(values.get("B"), Some("b file"));
}

#[test]
fn the_file_is_not_needed_when_the_environment_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    write(&file, "A=x\n", 0o644);
    let values = gather(&names(&["A"]), &file, |_| Some("env".into())).unwrap();
    assert_eq!(values.get("A"), Some("env"));
}

#[test]
fn a_missing_secret_names_itself_and_where_teal_looked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    let e = gather(&names(&["DATABASE_URL"]), &file, |_| None).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, SecretsError::Missing { .. }), "{text}");
    assert!(text.contains("secret DATABASE_URL is not set"), "{text}");
    assert!(text.contains("environment"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("no such file"), "{text}");

    write(&file, "OTHER=hunter2\n", 0o600);
    let text = gather(&names(&["DATABASE_URL"]), &file, |_| None)
        .unwrap_err()
        .to_string();
    assert!(text.contains("not in the file"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_file_others_may_read_or_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    for (mode, words) in [
        (0o644, "group- or world-readable"),
        (0o604, "group- or world-readable"),
        (0o620, "group- or world-writable"),
    ] {
        write(&file, "A=hunter2\n", mode);
        let e = gather(&names(&["A"]), &file, |_| None).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, SecretsError::Permissive { .. }), "{text}");
        assert!(text.contains(words), "{mode:o}: {text}");
        assert!(text.contains("chmod 600"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    write(&file, "A=hunter2\n", 0o400);
    assert!(gather(&names(&["A"]), &file, |_| None).is_ok());
}

#[test]
fn bad_syntax_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    write(&file, "A=1\nhunter2\n", 0o600);
    let text = gather(&names(&["A"]), &file, |_| None)
        .unwrap_err()
        .to_string();
    assert!(text.contains("line 2"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
