//! A hook's output: read line by line from its pipes, handed on as it comes, with
//! the last lines kept for the error message. Bounded in every direction: line
//! length, lines handed on, lines kept.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longer lines are cut into pieces of this many bytes.
const MAX_LINE: u64 = 4096;
/// Lines handed on per hook; the rest are only counted.
const MAX_FORWARDED: u64 = 1000;
/// Lines kept for the error message, each cut to [`TAIL_LINE`] characters.
const TAIL_LINES: usize = 10;
const TAIL_LINE: usize = 300;

/// Where a hook's lines go. One per hook run.
pub struct Output {
    sink: Box<dyn Fn(&str) + Send + Sync>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lines: u64,
    tail: VecDeque<String>,
}

impl Output {
    /// Hands every line (up to a limit) to `sink`.
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Output {
        Output {
            sink: Box::new(sink),
            state: Mutex::new(State::default()),
        }
    }

    /// One line of output (without its newline).
    pub fn line(&self, line: &str) {
        let n = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.lines += 1;
            if state.tail.len() == TAIL_LINES {
                state.tail.pop_front();
            }
            state.tail.push_back(line.chars().take(TAIL_LINE).collect());
            state.lines
        };
        if n <= MAX_FORWARDED {
            (self.sink)(line);
        } else if n == MAX_FORWARDED + 1 {
            (self.sink)(&format!(
                "(more than {MAX_FORWARDED} lines: the rest is not shown)"
            ));
        }
    }

    /// Lines seen so far.
    pub fn lines(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).lines
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tail.iter().cloned().collect()
    }

    /// Reads both pipes to their end, line by line.
    pub(super) async fn pump<A, B>(&self, stdout: Option<A>, stderr: Option<B>)
    where
        A: AsyncRead + Unpin,
        B: AsyncRead + Unpin,
    {
        tokio::join!(self.read(stdout), self.read(stderr));
    }

    async fn read<R: AsyncRead + Unpin>(&self, pipe: Option<R>) {
        let Some(pipe) = pipe else { return };
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    self.line(text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn forwards_up_to_the_limit_and_keeps_the_tail() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&seen);
        let output = Output::new(move |l| sink.lock().unwrap().push(l.to_string()));
        for i in 0..MAX_FORWARDED + 5 {
            output.line(&format!("line {i}"));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len() as u64, MAX_FORWARDED + 1);
        assert!(seen.last().unwrap().contains("not shown"));
        assert_eq!(output.lines(), MAX_FORWARDED + 5);
        let tail = output.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), &format!("line {}", MAX_FORWARDED + 4));
    }
}
