//! Rendering streamed action events: NDJSON with `--json`, a spinner per step on a
//! terminal, plain timestamped lines otherwise. Progress goes to stderr; the final
//! line (the result) goes to stdout.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::exit;
use crate::api::client::EventStream;
use crate::wire::{Event, Outcome};

/// Prints every event of `stream` and returns the exit code its outcome maps to.
pub async fn follow(mut stream: EventStream, json: bool) -> anyhow::Result<ExitCode> {
    let mut view = View::new(json);
    let mut outcome = None;
    while let Some(event) = stream.next().await? {
        if let Event::Done { outcome: o, .. } = &event {
            outcome = Some(*o);
        }
        view.show(&event);
    }
    view.finish();
    Ok(match outcome {
        Some(Outcome::Live | Outcome::Staged | Outcome::Discarded | Outcome::Stopped) => {
            ExitCode::SUCCESS
        }
        Some(Outcome::Failed) => ExitCode::from(exit::FAILED),
        None => {
            eprintln!(
                "error: the daemon closed the stream before the action finished (did it stop?)"
            );
            ExitCode::from(exit::FAILED)
        }
    })
}

enum View {
    Json,
    Plain,
    Spinner(Option<(ProgressBar, String)>),
}

impl View {
    fn new(json: bool) -> View {
        if json {
            View::Json
        } else if std::io::stderr().is_terminal() {
            View::Spinner(None)
        } else {
            View::Plain
        }
    }

    fn show(&mut self, event: &Event) {
        match self {
            View::Json => {
                let line = serde_json::to_string(event).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            View::Plain => match event {
                Event::Step {
                    step,
                    message,
                    elapsed_ms,
                } => {
                    eprintln!("[{:>7}] {:<11} {message}", secs(*elapsed_ms), step.label())
                }
                Event::Info {
                    message,
                    elapsed_ms,
                } => eprintln!("[{:>7}]             {message}", secs(*elapsed_ms)),
                Event::Done { .. } => done(event),
            },
            View::Spinner(current) => match event {
                Event::Step {
                    step,
                    message,
                    elapsed_ms,
                } => {
                    if let Some((bar, label)) = current.take() {
                        bar.finish_with_message(format!("✓ {label}"));
                    }
                    let bar = ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(100));
                    let label =
                        format!("{:<11} {message} (at {})", step.label(), secs(*elapsed_ms));
                    bar.set_message(label.clone());
                    *current = Some((bar, label));
                }
                Event::Info { message, .. } => match current {
                    Some((bar, _)) => bar.println(format!("              {message}")),
                    None => eprintln!("              {message}"),
                },
                Event::Done { outcome, .. } => {
                    if let Some((bar, label)) = current.take() {
                        let mark = if *outcome == Outcome::Failed {
                            "✗"
                        } else {
                            "✓"
                        };
                        bar.finish_with_message(format!("{mark} {label}"));
                    }
                    done(event)
                }
            },
        }
    }

    fn finish(&mut self) {
        if let View::Spinner(current) = self
            && let Some((bar, label)) = current.take()
        {
            bar.finish_with_message(format!("? {label}"));
        }
    }
}

fn done(event: &Event) {
    if let Event::Done {
        outcome,
        message,
        elapsed_ms,
        ..
    } = event
    {
        match outcome {
            Outcome::Failed => eprintln!("error: {message} (after {})", secs(*elapsed_ms)),
            // The action is over: a closed stdout changes nothing about it.
            _ => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{message} ({})", secs(*elapsed_ms));
            }
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}
