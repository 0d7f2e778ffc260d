//! The report's tables: one throughput row per target with ratios to direct and
//! (for teal) to nginx, and the closing table of every target from issue 6,
//! each judged from this run's own figures.

use std::time::Duration;

use crate::throughput::{Sample, median};
use crate::wrk::WrkResult;
use crate::{mib, micros, millis};

/// teal against nginx round by round: in each round the two ran within
/// seconds of each other, so their ratio is free of the drift between rounds
/// that moves both alike.
pub struct Paired {
    /// Median of the per-round ratios teal / nginx.
    pub median: f64,
    /// Rounds in which teal was at least level (req/s ≥, p99 ≤ nginx's).
    pub ahead: usize,
    pub rounds: usize,
}

impl Paired {
    fn show(&self) -> String {
        format!(
            "{:.2}× (level or ahead in {} of {} rounds)",
            self.median, self.ahead, self.rounds
        )
    }
}

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

    /// `figure` of teal over nginx in each round; `ahead` says whether a
    /// round's ratio is teal level or better.
    fn paired(&self, figure: fn(&WrkResult) -> f64, ahead: fn(f64) -> bool) -> Option<Paired> {
        let teal = self.sample("teal")?;
        let nginx = self.sample("nginx")?;
        let ratios: Vec<f64> = teal
            .rounds
            .iter()
            .zip(&nginx.rounds)
            .map(|(t, n)| figure(t) / figure(n).max(f64::MIN_POSITIVE))
            .collect();
        if ratios.is_empty() {
            return None;
        }
        Some(Paired {
            ahead: ratios.iter().filter(|r| ahead(**r)).count(),
            rounds: ratios.len(),
            median: median(ratios),
        })
    }

    /// Paired req/s ratios.
    pub fn paired_rps(&self) -> Option<Paired> {
        self.paired(WrkResult::rps, |r| r >= 1.0)
    }

    /// Paired p99 ratios.
    pub fn paired_p99(&self) -> Option<Paired> {
        self.paired(|r| r.p99 as f64, |r| r <= 1.0)
    }

    pub fn print(&self) {
        let direct = self.rps("direct").max(1.0);
        for s in &self.samples {
            let vs_nginx = if s.name == "teal" {
                let paired = self
                    .paired_rps()
                    .map_or(String::new(), |p| format!(" (paired {:.2}×)", p.median));
                format!("**{:.2}×**{paired}", self.ratio())
            } else if s.name != "nginx" && s.name != "direct" {
                format!("{:.2}×", s.rps / self.rps("nginx").max(1.0))
            } else {
                String::new()
            };
            let cpu = match (s.cpu_us, s.user_us) {
                (Some(all), Some(user)) => format!("{all:.1} µs ({user:.1} user)"),
                _ => "–".to_string(),
            };
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
    row_header_with("teal / nginx");
}

/// The header with `vs_nginx` naming the ratio column (the TLS rows show
/// HAProxy's ratio too).
pub fn row_header_with(vs_nginx: &str) {
    println!(
        "| body | conns | target | req/s | p50 | p99 | p99.9 | errors | proxy CPU / req (user part) | vs direct | {vs_nginx} | req/s per round | p99 per round |"
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

/// Each row's paired ratio, then the ratio of its medians in brackets.
fn paired_ratios(
    rows: &[&RowResult],
    paired: fn(&RowResult) -> Option<Paired>,
    of_medians: fn(&RowResult) -> Option<f64>,
) -> String {
    rows.iter()
        .filter_map(|r| {
            let p = paired(r)?;
            let m = of_medians(r).map_or(String::new(), |m| format!(" [{m:.2}×]"));
            Some(format!("{} {}: {}{m}", r.body, r.conns, p.show()))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints the closing table: each of issue 6's targets against this run. The
/// throughput and p99 targets are judged on the paired ratios (the median of
/// teal / nginx round by round); the ratios of the rows' medians are shown too.
pub fn targets(o: &Outcome<'_>) {
    const MB: u64 = 1_000_000;
    let rows: Vec<&RowResult> = o.rows.iter().collect();
    let rps_ok = rows
        .iter()
        .all(|r| r.paired_rps().is_some_and(|p| p.median >= 1.0));
    let p99_ok = rows
        .iter()
        .all(|r| r.paired_p99().is_some_and(|p| p.median <= 1.0));
    println!("\n## Against the targets (this run)\n");
    println!(
        "Throughput and p99 are judged on the median over the rounds of teal / nginx in the same round; the ratio of the row's medians follows in brackets.\n"
    );
    println!("| measure | target | measured | status |");
    println!("|---|---|---|---|");
    println!(
        "| builtin throughput | ≥ 1.0× nginx at every concurrency | {} | {} |",
        paired_ratios(&rows, RowResult::paired_rps, |r| Some(r.ratio())),
        status(rps_ok)
    );
    println!(
        "| builtin p99 latency | ≤ nginx p99 | teal p99 / nginx p99: {} | {} |",
        paired_ratios(&rows, RowResult::paired_p99, RowResult::p99_ratio),
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
