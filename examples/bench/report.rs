//! The report's tables: one throughput row per target with ratios to direct and
//! (for teal) to nginx, and the closing table of every target from issue 6,
//! each judged from this run's own figures.

use std::time::Duration;

use crate::throughput::Sample;
use crate::{mib, micros, millis};

/// The samples of one (body, connections) row.
pub struct RowResult {
    pub body: &'static str,
    pub conns: String,
    pub samples: Vec<Sample>,
}

impl RowResult {
    pub fn new(body: &'static str, conns: String, samples: Vec<Sample>) -> RowResult {
        RowResult {
            body,
            conns,
            samples,
        }
    }

    fn sample(&self, name: &str) -> Option<&Sample> {
        self.samples.iter().find(|s| s.name == name)
    }

    pub fn rps(&self, name: &str) -> f64 {
        self.sample(name).map_or(0.0, |s| s.rps)
    }

    /// teal's req/s over nginx's.
    pub fn ratio(&self) -> f64 {
        self.rps("teal") / self.rps("nginx").max(1.0)
    }

    /// teal's p99 over nginx's.
    fn p99_ratio(&self) -> Option<f64> {
        let teal = self.sample("teal")?.p99_us as f64;
        let nginx = self.sample("nginx")?.p99_us as f64;
        Some(teal / nginx.max(1.0))
    }

    pub fn print(&self) {
        let direct = self.rps("direct").max(1.0);
        for s in &self.samples {
            let vs_nginx = if s.name == "teal" {
                format!("**{:.2}×**", self.ratio())
            } else {
                String::new()
            };
            let cpu = s.cpu_us.map_or("–".to_string(), |us| format!("{us:.1} µs"));
            let spread: Vec<String> = s.rounds.iter().map(|r| format!("{:.0}", r.rps())).collect();
            let p99s: Vec<String> = s
                .rounds
                .iter()
                .map(|r| micros(Duration::from_micros(r.p99)))
                .collect();
            println!(
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {cpu} | {:.2} | {vs_nginx} | {} | {} |",
                self.body,
                self.conns,
                s.name,
                s.rps,
                micros(Duration::from_micros(s.p50_us)),
                micros(Duration::from_micros(s.p99_us)),
                micros(Duration::from_micros(s.p999_us)),
                s.errors,
                s.rps / direct,
                spread.join(" / "),
                p99s.join(" / "),
            );
        }
    }
}

pub fn row_header() {
    println!(
        "| body | conns | target | req/s | p50 | p99 | p99.9 | errors | proxy CPU / req | vs direct | teal / nginx | req/s per round | p99 per round |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

/// Everything the targets table judges.
pub struct Outcome<'a> {
    pub rows: &'a [RowResult],
    pub switch_failed: u64,
    pub nginx_switch_failed: u64,
    pub switch_latency: Duration,
    pub idle_rss_kib: u64,
    /// teal's and nginx's RSS with 10,000 idle connections.
    pub rss_10k_kib: (u64, u64),
    pub deploy_overhead: Duration,
}

fn status(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn ratios(rows: &[&RowResult], f: impl Fn(&RowResult) -> Option<f64>) -> String {
    rows.iter()
        .filter_map(|r| f(r).map(|x| format!("{} {}: {x:.2}×", r.body, r.conns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the closing table: each of issue 6's targets against this run.
pub fn targets(o: &Outcome<'_>) {
    const MB: u64 = 1_000_000;
    let rows: Vec<&RowResult> = o.rows.iter().collect();
    let all_ge = rows.iter().all(|r| r.ratio() >= 1.0);
    let p99_ok = rows.iter().all(|r| r.p99_ratio().is_some_and(|x| x <= 1.0));
    println!("\n## Against the targets (this run)\n");
    println!("| measure | target | measured | status |");
    println!("|---|---|---|---|");
    println!(
        "| builtin throughput | ≥ 1.0× nginx at every concurrency | {} | {} |",
        ratios(&rows, |r| Some(r.ratio())),
        status(all_ge)
    );
    println!(
        "| builtin p99 latency | ≤ nginx p99 | teal p99 / nginx p99: {} | {} |",
        ratios(&rows, RowResult::p99_ratio),
        status(p99_ok)
    );
    println!(
        "| failed requests in the switches under load | 0 | {} (nginx reloads: {}) | {} |",
        o.switch_failed,
        o.nginx_switch_failed,
        status(o.switch_failed == 0)
    );
    println!(
        "| switch latency | < 1 ms | {} median | {} |",
        micros(o.switch_latency),
        status(o.switch_latency < Duration::from_millis(1))
    );
    println!(
        "| idle RSS | < 20 MB | {} | {} |",
        mib(o.idle_rss_kib),
        status(o.idle_rss_kib * 1024 < 20 * MB)
    );
    println!(
        "| RSS with 10k idle connections | < 200 MB | {} (nginx {}) | {} |",
        mib(o.rss_10k_kib.0),
        mib(o.rss_10k_kib.1),
        status(o.rss_10k_kib.0 * 1024 < 200 * MB)
    );
    println!(
        "| deploy overhead over app boot | < 300 ms | {} | {} |",
        millis(o.deploy_overhead),
        status(o.deploy_overhead < Duration::from_millis(300))
    );
}
