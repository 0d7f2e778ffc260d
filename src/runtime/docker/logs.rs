//! Container output through the engine's logs API: the tail of one container for
//! error reports, and the merged, optionally followed output of a slot for
//! `teal logs`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use futures_util::stream::{self, BoxStream, StreamExt};

use super::engine::{LABEL_INSTANCE, LABEL_SERVICE, LABEL_SLOT, LABEL_VERSION, engine_error};
use crate::runtime::{LogLine, LogRun, RuntimeError};

/// The last `lines` lines the container wrote (stdout and stderr).
pub(super) async fn tail(docker: &Docker, name: &str, lines: usize) -> Vec<String> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut out = Vec::new();
    let mut chunks = docker.logs(name, Some(options));
    let mut splitter = Lines::default();
    while let Some(Ok(chunk)) = chunks.next().await {
        out.extend(splitter.push(&chunk));
    }
    out.extend(splitter.finish());
    let skip = out.len().saturating_sub(lines);
    out.split_off(skip)
}

/// The output of the containers of one run of `service`, merged, each line
/// tagged with its instance. The engine keeps a container's output as long as
/// the container: so the runs are the two slots' containers teal keeps (a
/// `--version` that neither runs is an error that says so). With `follow` it
/// goes on with new output until dropped.
pub(super) async fn stream(
    docker: &Docker,
    service: &str,
    run: &LogRun,
    follow: bool,
) -> Result<BoxStream<'static, LogLine>, RuntimeError> {
    let which = match run {
        LogRun::Slot(slot) => format!("{LABEL_SLOT}={slot}"),
        LogRun::Before(live) => format!("{LABEL_SLOT}={}", live.other()),
        LogRun::Version(version) => format!("{LABEL_VERSION}={version}"),
    };
    let filters = HashMap::from([("label", vec![format!("{LABEL_SERVICE}={service}"), which])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine_error(format!("listing containers of {service}"), e))?;
    if containers.is_empty() && !matches!(run, LogRun::Slot(_)) {
        let what = match run {
            LogRun::Version(version) => format!("version {version}"),
            _ => "the run before the live one".to_string(),
        };
        return Err(RuntimeError::InvalidSpec(format!(
            "no container of {service} holds the output of {what}: with the docker runtime, \
             output lives in the engine as long as its container, and teal keeps only the \
             containers of the two slots (see `teal status {service}`)"
        )));
    }
    let mut streams = Vec::new();
    for container in containers {
        let Some(id) = container.id else { continue };
        let instance = container
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_INSTANCE))
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .build();
        let chunks = docker.logs(&id, Some(options));
        let lines = chunks
            .take_while(|chunk| std::future::ready(chunk.is_ok()))
            .filter_map(|chunk| std::future::ready(chunk.ok()))
            .map(Some)
            .chain(stream::once(async { None }))
            .scan(Lines::default(), |splitter, chunk| {
                let lines = match chunk {
                    Some(chunk) => splitter.push(&chunk),
                    None => splitter.finish(),
                };
                std::future::ready(Some(stream::iter(lines)))
            })
            .flatten()
            .map(move |line| LogLine { instance, line });
        streams.push(lines.boxed());
    }
    Ok(stream::select_all(streams).boxed())
}

/// Splits engine log chunks (which need not end at a newline) into lines.
#[derive(Debug, Default)]
pub(super) struct Lines {
    partial: String,
}

impl Lines {
    pub(super) fn push(&mut self, chunk: &LogOutput) -> Vec<String> {
        self.partial
            .push_str(&String::from_utf8_lossy(chunk.as_ref()));
        let mut lines = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        lines
    }

    pub(super) fn finish(&mut self) -> Vec<String> {
        let rest = std::mem::take(&mut self.partial);
        if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest]
        }
    }
}
