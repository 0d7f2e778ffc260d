//! Challenge files (`challenge.rs`): where they land, what is refused.

use super::*;

#[test]
fn tokens_are_base64url_only() {
    for good in [
        "abc",
        "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
        "a-b_c",
    ] {
        assert!(check_token(good).is_ok(), "{good}");
    }
    let long = "a".repeat(MAX_TOKEN + 1);
    for bad in ["", "../x", "a/b", "a.b", "..", "a b", "tok\n", "é", &long] {
        assert!(check_token(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn set_writes_and_removes_the_served_file() {
    let dir = tempfile::tempdir().unwrap();
    let challenges = Challenges::prepare(dir.path(), false).unwrap();
    assert_eq!(challenges.webroot(), dir.path().join("acme"));
    let file = dir.path().join("acme/.well-known/acme-challenge/tok_1-A");
    challenges.set("tok_1-A", Some("tok_1-A.thumb")).unwrap();
    assert_eq!(fs::read_to_string(&file).unwrap(), "tok_1-A.thumb");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    challenges.set("tok_1-A", Some("again")).unwrap();
    assert_eq!(fs::read_to_string(&file).unwrap(), "again");
    challenges.set("tok_1-A", None).unwrap();
    assert!(!file.exists());
    challenges.set("tok_1-A", None).unwrap();
    // Nothing left beside.
    let left: Vec<_> = fs::read_dir(dir.path().join("acme/.well-known"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("acme-challenge")]);
    assert!(challenges.set("../escape", Some("x")).is_err());
}
