//! Instance log files: opening them for a child's stdout and stderr, teal's own
//! marker lines, the tail for error reports, and the line stream behind `teal logs`.
//!
//! Files live at [`log_path`]. A new start of a slot first archives them
//! (`runs.rs`); restarts append. They are readable by teal's user only (0600):
//! an app's output may hold what its requests carried.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::{self, BoxStream};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::runs::Files;
use crate::runtime::{LogLine, log_path};

/// How often a followed stream looks for new output.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// How much of the end of a file `tail` reads; enough for any sane number of lines.
const TAIL_BYTES: u64 = 256 * 1024;
/// Lines buffered between the reading task and a slow consumer.
const STREAM_BUFFER: usize = 256;

/// Opens a log for appending, creating directories; with `truncate` (a new start
/// of the slot) it empties the file instead, and the handle is not for appending.
pub(super) fn open(path: &Path, truncate: bool) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).mode(LOG_MODE);
    if truncate {
        options.write(true).truncate(true);
    } else {
        // O_APPEND: the child's stdout, its stderr and our markers never overwrite
        // each other.
        options.append(true);
    }
    let file = options.open(path)?;
    if truncate {
        // A file an older teal created keeps its mode until a new start.
        file.set_permissions(Permissions::from_mode(LOG_MODE))?;
    }
    Ok(file)
}

/// Instance logs: owner read and write only.
const LOG_MODE: u32 = 0o600;

/// Appends one `--- teal: ... ---` line. Best effort: a full disk must not stop
/// supervision.
pub(super) fn marker(path: &Path, text: &str) {
    if let Ok(mut file) = open(path, false) {
        let _ = writeln!(file, "--- teal: {text} ---");
    }
}

/// The last `lines` lines of the file (fewer when it is shorter or missing).
pub(super) async fn tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let Ok(len) = file.metadata().await.map(|m| m.len()) else {
        return Vec::new();
    };
    let start = len.saturating_sub(TAIL_BYTES);
    let mut buf = Vec::new();
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err()
        || file.read_to_end(&mut buf).await.is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // Cut in the middle of a line.
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..].iter().map(|l| l.to_string()).collect()
}

/// The lines of a run's log files, instance 0 first; with `follow`, then new
/// lines as they are written, until the stream is dropped.
pub(super) fn stream(files: Files, follow: bool) -> BoxStream<'static, LogLine> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let mut cursors: Vec<(usize, Cursor)> = match &files {
            Files::Fixed(paths) => paths
                .iter()
                .map(|(instance, path)| (*instance, Cursor::new(path.clone())))
                .collect(),
            Files::Slot { .. } => Vec::new(),
        };
        loop {
            // Instances are numbered from 0; a slot's files are the ones that exist.
            if let Files::Slot {
                state_dir,
                service,
                slot,
            } = &files
            {
                loop {
                    let path = log_path(state_dir, service, *slot, cursors.len());
                    if !path.exists() {
                        break;
                    }
                    cursors.push((cursors.len(), Cursor::new(path)));
                }
            }
            for (instance, cursor) in cursors.iter_mut() {
                let instance = *instance;
                for line in cursor.read_new().await {
                    if tx.send(LogLine { instance, line }).await.is_err() {
                        return;
                    }
                }
            }
            if !follow {
                for (instance, cursor) in cursors.iter_mut() {
                    if let Some(line) = cursor.rest() {
                        let _ = tx
                            .send(LogLine {
                                instance: *instance,
                                line,
                            })
                            .await;
                    }
                }
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Box::pin(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    }))
}

/// How far one file has been read.
struct Cursor {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
}

impl Cursor {
    fn new(path: PathBuf) -> Cursor {
        Cursor {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Complete lines written since the last call.
    async fn read_new(&mut self) -> Vec<String> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Vec::new();
        };
        let Ok(len) = file.metadata().await.map(|m| m.len()) else {
            return Vec::new();
        };
        if len < self.offset {
            // Replaced by a new start of the slot: read the new file from the top.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset
            || file
                .seek(std::io::SeekFrom::Start(self.offset))
                .await
                .is_err()
        {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(read) = file.read_to_end(&mut buf).await else {
            return Vec::new();
        };
        self.offset += read as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        complete[..last_newline]
            .split(|&b| b == b'\n')
            .map(line_text)
            .collect()
    }

    /// A last line without its newline, when the stream ends.
    fn rest(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| line_text(&std::mem::take(&mut self.partial)))
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn logs_are_the_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/web/blue-0.log");
        open(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        // A log an older teal left readable to all is closed at the next start.
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        open(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
