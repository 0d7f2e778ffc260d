//! The access log's writer thread: appends the buffers workers hand over to
//! the file (or stdout), reopens the file when asked, and ends on `Close`.
//! A thread of its own, so a slow disk never stalls a worker's event loop.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use super::{AccessLogError, AccessTarget};

pub(super) enum Message {
    /// Whole lines from one worker.
    Lines(Vec<u8>),
    /// Look at the reopen flag now.
    Wake,
    /// Everything before this is written: end.
    Close,
}

/// Where the writer writes.
pub(super) enum Sink {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Sink {
    pub(super) fn open(target: AccessTarget) -> Result<Sink, AccessLogError> {
        match target {
            AccessTarget::Stdout => Ok(Sink::Stdout),
            AccessTarget::File(path) => {
                let file = open_file(&path).map_err(|cause| AccessLogError::Open {
                    path: path.clone(),
                    cause,
                })?;
                Ok(Sink::File { path, file })
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    fn reopen(&mut self) {
        if let Sink::File { path, file } = self {
            match open_file(path) {
                Ok(new) => {
                    *file = new;
                    tracing::info!(path = %path.display(), "access log reopened");
                }
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "cannot reopen the access log; writing to the old file");
                }
            }
        }
    }
}

fn open_file(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Writes until `Close` (or every sender is gone); reopens the file first
/// whenever `reopen` was set.
pub(super) fn run(rx: &Receiver<Message>, mut sink: Sink, reopen: &AtomicBool) {
    // Said once per streak of failed writes, not per buffer.
    let mut failing = false;
    while let Ok(message) = rx.recv() {
        if reopen.swap(false, Ordering::AcqRel) {
            sink.reopen();
        }
        match message {
            Message::Lines(bytes) => match sink.write(&bytes) {
                Ok(()) => failing = false,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot write the access log; lines are lost");
                    }
                    failing = true;
                }
            },
            Message::Wake => {}
            Message::Close => return,
        }
    }
}
