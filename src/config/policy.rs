//! `max_body` and `error_pages`, per service with `[proxy]` defaults: the
//! largest request body a service takes, and the directory of its pages for
//! the proxy's own 502, 503 and 504. The pages are read and checked here,
//! when the config loads (UTF-8, at most [`MAX_ERROR_PAGE`] bytes each), and
//! travel in the spec: every deploy sends them as they are on disk then.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::{RawProxy, RawService};
use super::values;
use crate::spec::{PolicySpec, RouterKind};

/// Largest error page (the proxy holds each in memory, per service).
pub const MAX_ERROR_PAGE: usize = 64 * 1024;

/// The statuses a page can be given for, as `<status>.html` in the directory.
pub const ERROR_PAGE_STATUSES: [u16; 3] = [502, 503, 504];

/// `service`'s policy: its own keys, else `[proxy]`'s.
pub(super) fn service(
    raw: &RawService,
    proxy: &RawProxy,
    service: &str,
    base: &Path,
    router: RouterKind,
) -> Result<PolicySpec, Invalid> {
    let (max_body, key) = match (&raw.max_body, &proxy.max_body) {
        (Some(value), _) => (Some(value), format!("services.{service}.max_body")),
        (None, Some(value)) => (Some(value), "proxy.max_body".to_string()),
        (None, None) => (None, String::new()),
    };
    let max_body = match max_body {
        Some(value) => size(value, &key)?,
        None => None,
    };
    let (dir, key) = match (&raw.error_pages, &proxy.error_pages) {
        (Some(value), _) => (Some(value), format!("services.{service}.error_pages")),
        (None, Some(value)) => (Some(value), "proxy.error_pages".to_string()),
        (None, None) => (None, String::new()),
    };
    let (error_pages_dir, error_pages) = match dir {
        Some(value) if router == RouterKind::Nginx => {
            return Err(Invalid::at(
                value,
                format!(
                    "{key} is served by the builtin router only; with router = \"nginx\", put nginx's error_page in a file named by proxy.nginx.include"
                ),
            ));
        }
        Some(value) => {
            let dir = values::path(value, &key, base)?;
            let pages = read_pages(value, &dir, &key)?;
            (Some(dir), pages)
        }
        None => (None, BTreeMap::new()),
    };
    Ok(PolicySpec {
        max_body,
        error_pages_dir,
        error_pages,
    })
}

/// A size such as "10MiB" (B, KiB, MiB, GiB; a plain integer is bytes);
/// "off" or "unlimited": no limit.
fn size(value: &Spanned<String>, key: &str) -> Result<Option<u64>, Invalid> {
    let text = value.get_ref().trim();
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    match values::bytes(text) {
        Some(0) => Err(Invalid::at(
            value,
            format!("{key} must be greater than zero (\"off\" for no limit)"),
        )),
        Some(n) => Ok(Some(n)),
        None => Err(Invalid::at(
            value,
            format!(
                "invalid size {text:?} for {key}: expected a number of bytes with an optional unit (B, KiB, MiB, GiB), e.g. \"10MiB\", or \"off\""
            ),
        )),
    }
}

/// The pages `dir` holds (`502.html`, `503.html`, `504.html`: any of them).
fn read_pages(
    value: &Spanned<String>,
    dir: &Path,
    key: &str,
) -> Result<BTreeMap<u16, String>, Invalid> {
    if !dir.is_dir() {
        return Err(Invalid::at(
            value,
            format!("{key}: {} is not a directory", dir.display()),
        ));
    }
    let mut pages = BTreeMap::new();
    for status in ERROR_PAGE_STATUSES {
        let file = dir.join(format!("{status}.html"));
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(Invalid::at(
                    value,
                    format!("{key}: cannot read {}: {error}", file.display()),
                ));
            }
        };
        if bytes.len() > MAX_ERROR_PAGE {
            return Err(Invalid::at(
                value,
                format!(
                    "{key}: {} is {} bytes; an error page may have at most {MAX_ERROR_PAGE}",
                    file.display(),
                    bytes.len()
                ),
            ));
        }
        let page = String::from_utf8(bytes).map_err(|_| {
            Invalid::at(
                value,
                format!(
                    "{key}: {} is not UTF-8 (it is sent as text/html; charset=utf-8)",
                    file.display()
                ),
            )
        })?;
        pages.insert(status, page);
    }
    Ok(pages)
}

#[cfg(test)]
mod tests;
