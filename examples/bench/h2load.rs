//! HTTP/2 over TLS with h2load (nghttp2-client): `-c` connections with `-m`
//! streams each for a duration; its summary lines parsed.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// One h2load run's numbers.
#[derive(Debug, Clone, Default)]
pub struct H2Result {
    pub rps: f64,
    pub succeeded: u64,
    /// Requests that failed or errored, and timeouts.
    pub failed: u64,
    /// "time for request": mean and max, in microseconds.
    pub mean_us: f64,
    pub max_us: f64,
    /// The protocol ALPN chose ("h2" when it worked).
    pub protocol: String,
}

/// `h2load -t2 -c{clients} -m{streams} -D{duration}` on `url`.
pub fn run(
    url: &str,
    clients: usize,
    streams: usize,
    duration: Duration,
) -> anyhow::Result<H2Result> {
    let out = Command::new("h2load")
        .arg("-t2")
        .arg(format!("-c{clients}"))
        .arg(format!("-m{streams}"))
        .arg(format!("-D{}", duration.as_secs().max(1)))
        .arg(url)
        .output()
        .context("running h2load (apt-get install nghttp2-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "h2load failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("h2load's summary: {text}"))
}

fn parse(text: &str) -> Option<H2Result> {
    let mut result = H2Result::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            // "finished in 3.00s, 12345.67 req/s, 1.23MB/s"
            let rps = rest.split(", ").nth(1)?.strip_suffix(" req/s")?;
            result.rps = rps.parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // "N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            for part in rest.split(", ") {
                let (n, what) = part.split_once(' ')?;
                let n: u64 = n.parse().ok()?;
                match what {
                    "succeeded" => result.succeeded = n,
                    "failed" | "errored" | "timeout" => result.failed += n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // "min max mean sd +/- sd", each with its unit
            let fields: Vec<&str> = rest.split_whitespace().collect();
            result.max_us = micros(fields.get(1)?)?;
            result.mean_us = micros(fields.get(2)?)?;
        } else if let Some(rest) = line.strip_prefix("Application protocol:") {
            result.protocol = rest.trim().to_string();
        }
    }
    Some(result)
}

/// h2load's durations: "123us", "4.56ms", "1.2s".
fn micros(text: &str) -> Option<f64> {
    if let Some(us) = text.strip_suffix("us") {
        us.parse().ok()
    } else if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<f64>().ok().map(|ms| ms * 1e3)
    } else {
        text.strip_suffix('s')?.parse::<f64>().ok().map(|s| s * 1e6)
    }
}

/// h2load's version, for the report.
pub fn version() -> String {
    Command::new("h2load")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
