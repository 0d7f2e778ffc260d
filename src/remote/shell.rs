//! POSIX shell words for the scripts teal runs on hosts (`sh -c`).

/// `text` as one single-quoted shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A remote path as a shell word: `~/x` becomes `"$HOME"/'x'`, so it expands in
/// the remote user's home; anything else is quoted as is.
pub fn path(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None => quote(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_survive_the_shell() {
        for text in ["plain", "with space", "it's", "$HOME", "a\"b", "`x`", ""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
    }

    #[test]
    fn home_paths_expand_remotely() {
        assert_eq!(path("~/.local/bin/teal"), "\"$HOME\"/'.local/bin/teal'");
        assert_eq!(path("/opt/teal"), "'/opt/teal'");
    }
}
