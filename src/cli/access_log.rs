//! `teal logs SERVICE --access`: the service's lines of the builtin proxy's
//! access log, read from the file `[proxy] access_log` names on this
//! machine: raw JSON with `--json`, a compact line each otherwise; `-f`
//! follows the file, across logrotate's move (a new file at the path is
//! read from its start).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::spec::{AccessLogTarget, Config};

/// How often `-f` looks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Prints `service`'s access lines.
pub fn show(config: &Config, service: &str, json: bool, follow: bool) -> anyhow::Result<()> {
    let path = match &config.proxy.access_log {
        Some(AccessLogTarget::File(path)) => path,
        Some(AccessLogTarget::Stdout) => {
            bail!(
                "the access log goes to teal serve's standard output ([proxy] access_log = \"stdout\"): read it there"
            )
        }
        None => bail!("no access log: set [proxy] access_log in teal.toml"),
    };
    let mut file = open(path)?;
    let mut reader = Lines::default();
    loop {
        reader.read(&mut file, service, json)?;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_EVERY);
        // Moved away (logrotate) or cut short (copytruncate): start over.
        let moved = match std::fs::metadata(path) {
            Ok(now) => {
                let was = file.metadata()?;
                now.ino() != was.ino() || now.dev() != was.dev() || now.len() < reader.offset
            }
            Err(_) => false,
        };
        if moved {
            // What the old file got last, then the new one from its start.
            reader.read(&mut file, service, json)?;
            file = open(path)?;
            reader = Lines::default();
        }
    }
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("reading the access log {}", path.display()))
}

/// Where reading is in one file, and a line not complete yet.
#[derive(Default)]
struct Lines {
    offset: u64,
    partial: Vec<u8>,
}

impl Lines {
    /// Prints the service's complete lines from `offset` on.
    fn read(&mut self, file: &mut File, service: &str, json: bool) -> anyhow::Result<()> {
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::new(file.take(u64::MAX));
        let mut out = std::io::stdout().lock();
        loop {
            let n = reader.read_until(b'\n', &mut self.partial)?;
            if n == 0 || self.partial.last() != Some(&b'\n') {
                self.offset += n as u64;
                return Ok(());
            }
            self.offset += n as u64;
            let line = std::mem::take(&mut self.partial);
            if let Some(text) = render(&line, service, json) {
                out.write_all(text.as_bytes())?;
            }
        }
    }
}

/// `line` as printed when it is `service`'s, else None.
fn render(line: &[u8], service: &str, json: bool) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    if value.get("service")?.as_str()? != service {
        return None;
    }
    if json {
        return Some(String::from_utf8_lossy(line).into_owned());
    }
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let number = |key: &str| value.get(key).map(ToString::to_string).unwrap_or_default();
    Some(format!(
        "{} {} {} {} {}{} {}ms {}/{} {} {}\n",
        text("time"),
        number("status"),
        text("protocol"),
        text("method"),
        text("host"),
        text("path"),
        number("duration_ms"),
        text("slot"),
        text("version"),
        text("instance"),
        text("request_id"),
    ))
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn only_the_service_lines_are_shown() {
        let line = br#"{"time":"2026-12-05T17:50:37.123Z","service":"web","slot":"blue","version":"1","instance":"127.0.0.1:9","client":"127.0.0.1","method":"GET","host":"a","path":"/x?y","protocol":"HTTP/1.1","status":200,"request_bytes":0,"response_bytes":5,"duration_ms":0.412,"upstream_ms":0.3,"request_id":"r1"}
"#;
        assert_eq!(render(line, "api", false), None);
        assert_eq!(
            render(line, "web", false).unwrap(),
            "2026-12-05T17:50:37.123Z 200 HTTP/1.1 GET a/x?y 0.412ms blue/1 127.0.0.1:9 r1\n"
        );
        assert_eq!(render(line, "web", true).unwrap().as_bytes(), line);
    }
}
