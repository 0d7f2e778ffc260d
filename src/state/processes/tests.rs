use super::*;

fn record(pid: u32, index: usize) -> ProcessRecord {
    ProcessRecord {
        service: "web".into(),
        slot: Slot::Blue,
        index,
        version: "1.0.0".into(),
        deploy_id: "d1".into(),
        pid,
        start_time: 1000 + u64::from(pid),
        port: 40000 + pid as u16,
    }
}

#[test]
fn records_survive_a_reopen_and_a_restart_replaces_its_predecessor() {
    let dir = tempfile::tempdir().unwrap();
    let book = ProcessBook::open(dir.path()).unwrap();
    assert!(book.records().is_empty(), "no file: no records");
    book.started(record(11, 0), None).unwrap();
    book.started(record(12, 1), None).unwrap();
    // Instance 0 restarted as pid 13.
    book.started(record(13, 0), Some(11)).unwrap();
    book.forget(12).unwrap();
    book.forget(99).unwrap();

    let again = ProcessBook::open(dir.path()).unwrap();
    assert_eq!(again.records(), vec![record(13, 0)]);
    assert!(!dir.path().join("processes.json.tmp").exists());
}

#[test]
fn a_failed_save_changes_nothing_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let book = ProcessBook::open(dir.path()).unwrap();
    book.started(record(11, 0), None).unwrap();
    // The file's place taken by a directory: the rename fails.
    std::fs::remove_file(dir.path().join("processes.json")).unwrap();
    std::fs::create_dir(dir.path().join("processes.json")).unwrap();
    assert!(book.started(record(12, 1), None).is_err());
    assert_eq!(book.records(), vec![record(11, 0)]);
}

#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("processes.json"), "{not json").unwrap();
    let err = ProcessBook::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("processes.json"), "{err}");
}
