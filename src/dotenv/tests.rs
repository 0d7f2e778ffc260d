//! The dotenv syntax (`dotenv.rs`): comments, quotes, `export`, repeated keys,
//! multi-line values, and errors that name the line but never a value.

use super::{DotenvError, parse};

fn pairs(text: &str) -> Vec<(String, String)> {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn plain_pairs_comments_and_blank_lines() {
    let text = "# a comment\n\nA=1\n  B = two words  \nC=\nD=x # trailing comment\nE=a#b\n";
    assert_eq!(
        pairs(text),
        [
            pair("A", "1"),
            pair("B", "two words"),
            pair("C", ""),
            pair("D", "x"),
            pair("E", "a#b")
        ]
    );
}

#[test]
fn quotes_export_and_escapes() {
    let text = "export TOKEN='s3cr#t $HOME \\n'\nURL=\"postgres://u:p@h/db\" # db\nESC=\"a\\nb\\t\\\"c\\\"\\\\ \\$X\"\n";
    assert_eq!(
        pairs(text),
        [
            pair("TOKEN", "s3cr#t $HOME \\n"),
            pair("URL", "postgres://u:p@h/db"),
            pair("ESC", "a\nb\t\"c\"\\ $X"),
        ]
    );
}

#[test]
fn quoted_values_may_span_lines_and_later_keys_win() {
    let text = "KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nA=1\nA=2\r\n";
    assert_eq!(
        pairs(text),
        [
            pair("KEY", "-----BEGIN-----\nabc\n-----END-----"),
            pair("A", "2")
        ]
    );
}

#[test]
fn nothing_is_expanded_from_the_environment() {
    assert_eq!(
        pairs("P=$PATH\nQ=${HOME}\n"),
        [pair("P", "$PATH"), pair("Q", "${HOME}")]
    );
}

#[test]
fn errors_name_the_line_and_never_the_value() {
    let cases = [
        ("A=1\nnot a pair\n", 2, "expected KEY=value"),
        ("A=1\n1X=hunter2\n", 2, "invalid name \"1X\""),
        ("A=\"hunter2\nB=2\n", 1, "never closed"),
        ("A='hunter2' tail\n", 1, "after the closing quote"),
    ];
    for (text, line, words) in cases {
        let DotenvError { line: at, message } = parse(text).unwrap_err();
        assert_eq!(at, line, "{text:?}: {message}");
        assert!(message.contains(words), "{text:?}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
