//! `env_file`, `env` and `secrets` (`env.rs`): the file under the inline
//! table, names checked, a name given both ways refused.

use std::os::unix::fs::PermissionsExt;

use crate::config::fixtures::{WEB, assert_err, err};
use crate::config::parse;

fn load(
    dir: &std::path::Path,
    text: &str,
) -> Result<crate::spec::Config, crate::config::ConfigError> {
    parse(text, &dir.join("teal.toml"))
}

#[test]
fn env_file_is_merged_under_the_inline_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.env"),
        "# shared\nGREETING=hello\nLEVEL='debug'\n",
    )
    .unwrap();
    let text = format!("{WEB}env_file = \"app.env\"\nenv = {{ LEVEL = \"info\" }}\n");
    let config = load(dir.path(), &text).unwrap();
    let env = &config.services["web"].env;
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["LEVEL"], "info", "the inline env wins");
}

#[test]
fn env_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{WEB}env_file = \"missing.env\"\n");
    let e = load(dir.path(), &text).unwrap_err();
    assert_eq!(e.location, Some((3, 12)), "{e}");
    assert!(
        e.message.contains("services.web.env_file: cannot read"),
        "{e}"
    );
    assert!(e.message.contains("missing.env"), "{e}");

    std::fs::write(dir.path().join("bad.env"), "A=1\nB\n").unwrap();
    let e = load(dir.path(), &format!("{WEB}env_file = \"bad.env\"\n")).unwrap_err();
    assert!(
        e.message.contains("bad.env: line 2: expected KEY=value"),
        "{e}"
    );

    std::fs::write(dir.path().join("port.env"), "PORT=1\n").unwrap();
    let e = load(dir.path(), &format!("{WEB}env_file = \"port.env\"\n")).unwrap_err();
    assert!(e.message.contains("PORT is set by teal"), "{e}");
}

#[test]
fn secrets_are_names_only_and_each_given_one_way() {
    let config = crate::config::fixtures::ok(&format!(
        "{WEB}secrets = [\"DATABASE_URL\", \"API_TOKEN\"]\n"
    ));
    let secrets = &config.services["web"].secrets;
    assert_eq!(secrets.names, ["DATABASE_URL", "API_TOKEN"]);
    assert!(secrets.values.is_empty());

    assert_err(
        &format!("{WEB}secrets = [\"A\", \"A\"]\n"),
        3,
        17,
        &["services.web.secrets names A twice"],
    );
    assert_err(
        &format!("{WEB}secrets = [\"1A\"]\n"),
        3,
        12,
        &["invalid environment variable name \"1A\""],
    );
    assert_err(
        &format!("{WEB}secrets = [\"TEAL_X\"]\n"),
        3,
        12,
        &["TEAL_X is set by teal"],
    );
    assert_err(
        &format!("{WEB}env = {{ A = \"1\" }}\nsecrets = [\"A\"]\n"),
        4,
        12,
        &["A is both a secret and in services.web's env"],
    );
    let e = err(&format!("{WEB}secrets = \"A\"\n"));
    assert!(
        e.message.contains("sequence") || e.message.contains("array"),
        "{e}"
    );
}

#[test]
fn an_env_file_may_be_private() {
    // Read by the CLI's own user: a 0600 env_file is fine (it is not the
    // secrets file, whose mode teal checks at deploy time).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "A=1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = load(dir.path(), &format!("{WEB}env_file = \"app.env\"\n")).unwrap();
    assert_eq!(config.services["web"].env["A"], "1");
}
