//! Loading `teal.toml` as a whole (`config/mod.rs`): reading the file, the
//! default path, TOML syntax and type errors, and how errors are located and
//! displayed. Each key's own rules are tested beside the file that checks it.

use std::path::{Path, PathBuf};

use super::fixtures::{WEB, assert_err, err};
use super::*;

#[test]
fn load_resolves_paths_against_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let file = app.join("teal.toml");
    std::fs::write(&file, format!("state_dir = \"state\"\n{WEB}")).unwrap();
    let config = load(&file).unwrap();
    assert_eq!(config.path, file);
    assert_eq!(config.state_dir, app.join("state"));
    assert_eq!(config.proxy.control, app.join("state/teal.sock"));
    assert_eq!(config.services["web"].workdir, app);
}

#[test]
fn load_reports_a_missing_file_without_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teal.toml");
    let e = load(&file).unwrap_err();
    assert_eq!(e.path, file);
    assert_eq!(e.location, None);
    assert!(e.message.contains("no such file"), "{e}");
    assert!(e.message.contains("TEAL_CONFIG"), "{e}");
}

#[test]
fn load_reports_errors_with_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teal.toml");
    std::fs::write(&file, "[services.web]\ncomand = [\"./app\"]\n").unwrap();
    let e = load(&file).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:1: unknown key \"comand\" in [services.web]; did you mean \"command\"?; \
             expected one of: runtime, command, image, port, volumes, restart, log_driver, limits, network, keep_images, instances, version, hosts, preview, tls, max_body, error_pages, env, env_file, secrets, health, drain, hooks, verify, protocol, servers",
            file.display()
        )
    );
}

#[test]
fn the_default_path_is_teal_config_or_teal_toml() {
    assert_eq!(path_from_env(None), PathBuf::from("teal.toml"));
    assert_eq!(path_from_env(Some("".into())), PathBuf::from("teal.toml"));
    assert_eq!(
        path_from_env(Some("/etc/teal/x.toml".into())),
        PathBuf::from("/etc/teal/x.toml")
    );
}

#[test]
fn toml_syntax_errors_are_located() {
    let e = err("[proxy]\nlisten = \"127.0.0.1:8080\n");
    assert_eq!(e.location.map(|(line, _)| line), Some(2), "{e}");
    let e = err("state_dir = \n");
    assert_eq!(e.location.map(|(line, _)| line), Some(1), "{e}");
}

#[test]
fn type_errors_point_at_the_value() {
    assert_err(
        &format!("{WEB}instances = \"2\"\n"),
        3,
        13,
        &["invalid type", "string"],
    );
    assert_err(
        "[services.web]\ncommand = \"./app\"\n",
        2,
        11,
        &["invalid type"],
    );
    assert_err(
        &format!("{WEB}[services.web.drain]\nkeep_previous = \"yes\"\n"),
        4,
        17,
        &["invalid type"],
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(line_col("é = 1\nab", 8), (2, 2));
    assert_eq!(line_col("abc", 0), (1, 1));
    assert_eq!(line_col("abc", 99), (1, 4));
}

#[test]
fn errors_display_as_file_line_column_message() {
    let e = parse("[services.web]\ncomand = 1\n", Path::new("teal.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("teal.toml:2:1: unknown key \"comand\" in [services.web]"),
        "{e}"
    );
}
