//! Getting one image onto hosts (`parallel` at a time): ask each host's engine,
//! stream the image where it is missing, ask again. Every failure is one line
//! naming the host, the image and the cause; the caller stages nothing then.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::local::LocalImage;
use super::{Plan, Presence};
use crate::remote::error::RemoteError;
use crate::remote::host::Host;
use crate::remote::report::{Reporter, Transfer, TransferEnd, bytes};
use crate::remote::shell::quote;
use crate::remote::ssh::last_line;

/// The exit status ssh itself reports when the connection failed.
const SSH_FAILED: i32 = 255;

/// How the image reached one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    pub host: String,
    /// False when the host already had it.
    pub transferred: bool,
    /// Bytes that went over ssh (zstd).
    pub sent: u64,
    /// Bytes of the export before compression.
    pub raw: u64,
    /// From the first question to the host until it was verified there.
    pub elapsed: Duration,
}

/// Ships `image` to every host that lacks it. If any host fails, the first
/// failure (in host order) is returned and the others are reported.
pub async fn ship_all(
    hosts: &[Host],
    image: &LocalImage,
    parallel: usize,
    reporter: &dyn Reporter,
) -> Result<Vec<Shipment>, RemoteError> {
    let results: Vec<Result<Shipment, RemoteError>> = futures_util::stream::iter(hosts)
        .map(|host| ship(host, image, reporter))
        .buffered(parallel.max(1))
        .collect()
        .await;
    let mut shipped = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(s) => shipped.push(s),
            Err(e) => failures.push(e),
        }
    }
    let mut failures = failures.into_iter();
    let Some(first) = failures.next() else {
        return Ok(shipped);
    };
    for other in failures {
        reporter.note("teal", &format!("also: {other}"));
    }
    Err(RemoteError::Failed(format!(
        "{first}; nothing was staged or switched on any host"
    )))
}

/// Ships `image` to one host.
async fn ship(
    host: &Host,
    image: &LocalImage,
    reporter: &dyn Reporter,
) -> Result<Shipment, RemoteError> {
    let started = Instant::now();
    let failed =
        |cause: String| RemoteError::host(&host.name, format!("image {}: {cause}", image.label()));
    if !image.runs_on(&host.facts.arch) {
        let arch = image.arch.as_deref().unwrap_or("?");
        return Err(failed(format!(
            "it is built for {arch} but the host is {}; build it for the host (docker build --platform linux/...)",
            host.facts.arch
        )));
    }
    let presence = ask(host, image, true).await.map_err(failed)?;
    if Plan::of(&presence) == Plan::Skip {
        let elapsed = started.elapsed();
        reporter.note(
            &host.name,
            &format!(
                "image {} is already there: not sent (checked in {:.2}s)",
                image.label(),
                elapsed.as_secs_f64()
            ),
        );
        return Ok(Shipment {
            host: host.name.clone(),
            transferred: false,
            sent: 0,
            raw: 0,
            elapsed,
        });
    }
    reporter.note(
        &host.name,
        &format!(
            "image {} is not there: sending it ({} before zstd)",
            image.label(),
            bytes(image.size)
        ),
    );
    let progress = reporter.transfer(
        &host.name,
        &format!("image {}", image.reference),
        (image.size > 0).then_some(image.size),
    );
    let verified = match stream(host, image, &*progress).await {
        Ok(figures) => match ask(host, image, false).await {
            Ok(p) if p.present => Ok(figures),
            Ok(_) => Err("the host's engine does not have it after the load".to_string()),
            Err(cause) => Err(cause),
        },
        Err(cause) => Err(cause),
    };
    let (sent, raw) = match verified {
        Ok(figures) => figures,
        Err(cause) => {
            progress.finish(&TransferEnd::Failed);
            return Err(failed(cause));
        }
    };
    let shipment = Shipment {
        host: host.name.clone(),
        transferred: true,
        sent,
        raw,
        elapsed: started.elapsed(),
    };
    progress.finish(&TransferEnd::Done {
        sent,
        raw: Some(raw),
        elapsed: shipment.elapsed,
    });
    Ok(shipment)
}

/// Streams the compressed export into `teal image load` on the host; returns
/// the bytes sent and the bytes before compression, or why it failed.
async fn stream(
    host: &Host,
    image: &LocalImage,
    progress: &dyn Transfer,
) -> Result<(u64, u64), String> {
    let export = image.export();
    let raw = export.raw_counter();
    let export_failed = export.failure();
    let script = format!(
        "exec {teal} image load --expect {id} --tag {reference}",
        teal = quote(&host.facts.teal),
        id = quote(&image.id),
        reference = quote(&image.reference),
    );
    let mut sent = 0;
    let out = host
        .ssh()
        .feed(&script, export, |n| {
            sent = n;
            progress.sent(raw.load(Ordering::Relaxed));
        })
        .await;
    // A broken export also breaks the stream: say where it started.
    if let Some(e) = export_failed.lock().ok().and_then(|mut e| e.take()) {
        return Err(format!(
            "exporting it from this machine's Docker engine failed: {e}"
        ));
    }
    match out {
        Err(e) => Err(format!("sending it failed: {}", cause_of(&e))),
        Ok(out) if out.status.code() == Some(SSH_FAILED) => Err(format!(
            "the ssh connection broke during the transfer: {}",
            last_line(&out)
        )),
        Ok(out) if !out.status.success() => Err(format!(
            "loading it on the host failed: {}",
            without_error_prefix(&last_line(&out))
        )),
        Ok(_) => Ok((sent, raw.load(Ordering::Relaxed))),
    }
}

/// Asks the host's engine (through the host's teal) whether it has the image;
/// with `tag`, a host that has it also gets the reference pointed at it.
async fn ask(host: &Host, image: &LocalImage, tag: bool) -> Result<Presence, String> {
    let mut script = format!(
        "exec {teal} image has {id}",
        teal = quote(&host.facts.teal),
        id = quote(&image.id)
    );
    if tag {
        script.push_str(&format!(" --tag {}", quote(&image.reference)));
    }
    let out = host.shell(&script).await.map_err(|e| cause_of(&e))?;
    if !out.status.success() {
        return Err(format!(
            "asking the host's Docker engine for it failed: {}",
            without_error_prefix(&last_line(&out))
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Presence>(line).ok())
        .ok_or_else(|| format!("unexpected answer from `teal image has` on the host: {text:?}"))
}

/// A remote error's message without the host (the caller names it once).
fn cause_of(e: &RemoteError) -> String {
    match e {
        RemoteError::Host { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// teal's own `error: ` before a message from the host's teal.
fn without_error_prefix(line: &str) -> &str {
    line.strip_prefix("error: ").unwrap_or(line)
}
