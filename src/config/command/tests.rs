use super::*;

#[test]
fn finds_variables_the_shell_way() {
    assert_eq!(variable("$PORT"), Some("PORT"));
    assert_eq!(variable("--port=${PORT}"), Some("PORT"));
    assert_eq!(variable("127.0.0.1:$PORT"), Some("PORT"));
    assert_eq!(variable("$HOME/app"), Some("HOME"));
    assert_eq!(variable("pa$$word"), None);
    assert_eq!(variable("$secret"), None);
    assert_eq!(variable("${PORT"), None);
    assert_eq!(variable("costs 5$"), None);
    assert_eq!(variable("{port}"), None);
}

#[test]
fn knows_a_shell_by_its_file_name() {
    let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(is_shell(&cmd(&["sh", "-c", "exec app --port $PORT"])));
    assert!(is_shell(&cmd(&["/bin/bash", "-c", "x"])));
    assert!(!is_shell(&cmd(&["uvicorn", "app:app"])));
    assert!(!is_shell(&cmd(&["./shell"])));
}

#[test]
fn unknown_placeholders_are_named_and_other_braces_left_alone() {
    assert_eq!(unknown_placeholder("{prot}", &["port"]), Some("prot"));
    assert_eq!(unknown_placeholder("--port={port}", &["port"]), None);
    assert_eq!(unknown_placeholder("{\"a\": 1}", &["port"]), None);
    assert_eq!(unknown_placeholder("${HOME}", &["port"]), None);
}

use crate::config::fixtures::{assert_err, ok};

#[test]
fn a_variable_in_a_service_command_is_an_error_with_the_fix() {
    assert_err(
        "[services.web]\ncommand = [\"uvicorn\", \"app:app\", \"--port\", \"$PORT\"]\n",
        2,
        11,
        &[
            "services.web.command has \"$PORT\"",
            "without a shell",
            "use {port}, or run it through [\"sh\", \"-c\", \"...\"]",
        ],
    );
    assert_err(
        "[services.web]\ncommand = [\"./app\", \"--home\", \"${HOME}/x\"]\n",
        2,
        11,
        &["$HOME", "a placeholder ({port}, {version})"],
    );
    // The docker runtime's exec form expands nothing either.
    assert_err(
        "[services.web]\nruntime = \"docker\"\nimage = \"a\"\nport = 80\ncommand = [\"--port\", \"$PORT\"]\n",
        5,
        11,
        &["services.web.command has \"$PORT\"", "use {port}"],
    );
    // A shell expands it: fine.
    ok("[services.web]\ncommand = [\"sh\", \"-c\", \"exec ./app --port $PORT\"]\n");
    ok("[services.web]\ncommand = [\"./app\", \"--password\", \"pa$$word\"]\n");
}

#[test]
fn an_unknown_placeholder_in_a_service_command_is_an_error() {
    assert_err(
        "[services.web]\ncommand = [\"./app\", \"--port\", \"{prot}\"]\n",
        2,
        11,
        &[
            "unknown placeholder {prot} in services.web.command",
            "known: {port}, {version}",
        ],
    );
    assert_err(
        "[services.web]\nruntime = \"docker\"\nimage = \"a\"\nport = 80\ncommand = [\"--v\", \"{verison}\"]\n",
        5,
        11,
        &["unknown placeholder {verison} in services.web.command"],
    );
    ok("[services.web]\ncommand = [\"./app\", \"{port}\", \"{version}\", \"{\\\"json\\\": 1}\"]\n");
}
