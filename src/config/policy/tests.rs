//! `max_body` and `error_pages` (`policy.rs`): units, `[proxy]` defaults a
//! service overrides, and the page files checked when the config loads.

use crate::config::fixtures::{WEB, assert_err, ok};

#[test]
fn max_body_takes_units_and_a_proxy_default() {
    assert_eq!(ok(WEB).services["web"].policy.max_body, None);
    for (text, bytes) in [
        ("10MiB", 10 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        ("100B", 100),
        ("4096", 4096),
    ] {
        let config = ok(&format!("{WEB}max_body = \"{text}\"\n"));
        assert_eq!(
            config.services["web"].policy.max_body,
            Some(bytes),
            "{text}"
        );
    }
    let text = format!(
        "[proxy]\nmax_body = \"1MiB\"\n{WEB}[services.api]\ncommand = [\"./api\"]\nhosts = [\"api.test\"]\nmax_body = \"off\"\n[services.big]\ncommand = [\"./big\"]\nhosts = [\"big.test\"]\nmax_body = \"2MiB\"\n"
    );
    let config = ok(&text);
    assert_eq!(config.services["web"].policy.max_body, Some(1 << 20));
    assert_eq!(config.services["api"].policy.max_body, None);
    assert_eq!(config.services["big"].policy.max_body, Some(2 << 20));
    assert_err(
        &format!("{WEB}max_body = \"lots\"\n"),
        3,
        12,
        &[
            "invalid size \"lots\" for services.web.max_body",
            "\"10MiB\"",
        ],
    );
    assert_err(
        &format!("[proxy]\nmax_body = \"0\"\n{WEB}"),
        2,
        12,
        &["proxy.max_body must be greater than zero"],
    );
}

#[test]
fn error_pages_are_read_at_load_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    std::fs::write(pages.join("502.html"), "<h1>down</h1>").unwrap();
    std::fs::write(pages.join("504.html"), "<h1>slow</h1>").unwrap();
    std::fs::write(pages.join("500.html"), "not one of ours").unwrap();
    let path = pages.display();
    let config = ok(&format!("[proxy]\nerror_pages = \"{path}\"\n{WEB}"));
    let policy = &config.services["web"].policy;
    assert_eq!(policy.error_pages_dir.as_deref(), Some(pages.as_path()));
    let statuses: Vec<_> = policy.error_pages.keys().copied().collect();
    assert_eq!(statuses, [502, 504]);
    assert_eq!(policy.error_pages[&502], "<h1>down</h1>");

    // A missing directory is an error, at the value.
    assert_err(
        &format!("{WEB}error_pages = \"{path}/nowhere\"\n"),
        3,
        15,
        &["services.web.error_pages", "nowhere is not a directory"],
    );
    // Too big, or not UTF-8.
    std::fs::write(pages.join("503.html"), vec![b'a'; 64 * 1024 + 1]).unwrap();
    assert_err(
        &format!("{WEB}error_pages = \"{path}\"\n"),
        3,
        15,
        &["503.html is 65537 bytes", "at most 65536"],
    );
    std::fs::write(pages.join("503.html"), [0xff, 0xfe]).unwrap();
    assert_err(
        &format!("{WEB}error_pages = \"{path}\"\n"),
        3,
        15,
        &["503.html is not UTF-8"],
    );
    // Builtin only.
    std::fs::remove_file(pages.join("503.html")).unwrap();
    assert_err(
        &format!("[proxy]\nrouter = \"nginx\"\n{WEB}error_pages = \"{path}\"\n"),
        5,
        15,
        &["builtin router only", "proxy.nginx.include"],
    );
}
