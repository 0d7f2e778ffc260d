//! Throughput rows: every target runs once per round, in an order that rotates
//! from round to round (so no target always runs first, or right after a busy
//! neighbour). Each figure reported is the median of that figure over the
//! rounds (req/s, and each latency percentile on its own: one round's p99 can
//! be twice another's), errors are summed over all rounds. The proxy's own CPU
//! time per request is read from `/proc` around each run: unlike req/s it does
//! not depend on what else the machine's cores are doing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::wrk::{self, WrkResult};

/// One target of a row: its name, address and the processes whose CPU counts.
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The proxy's processes (teal serve; nginx workers); empty for direct.
    pub pids: Vec<u32>,
    /// Over TLS: `https://localhost:PORT` (the name the benchmark's
    /// certificate covers, sent as SNI), else `http://ADDR`.
    pub https: bool,
}

impl Target {
    /// The URL wrk asks for `path`.
    pub fn url(&self, path: &str) -> String {
        if self.https {
            format!("https://localhost:{}{path}", self.addr.port())
        } else {
            format!("http://{}{path}", self.addr)
        }
    }
}

/// What one target measured over its rounds.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    /// Medians over the rounds.
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// Every error of every round.
    pub errors: u64,
    /// CPU time of `pids` per request, in microseconds (median over the
    /// rounds); None without pids.
    pub cpu_us: Option<f64>,
    /// The user-space part of it (median over the rounds): what the proxy's
    /// own code costs, the rest being the kernel's work on its behalf.
    pub user_us: Option<f64>,
    /// Every round's result, in the order run, for the report's spread columns.
    pub rounds: Vec<WrkResult>,
}

/// How one row is run.
pub struct Row<'a> {
    pub script: &'a Path,
    pub path: &'a str,
    pub conns: usize,
    pub close: bool,
    pub duration: Duration,
    pub rounds: usize,
}

/// Runs `row` against every target for `row.rounds` rounds; the medians
/// of each figure over the rounds for each target, in the order of `targets`.
pub fn measure(row: &Row<'_>, targets: &[Target]) -> anyhow::Result<Vec<Sample>> {
    let mut runs: Vec<Vec<(WrkResult, Option<Cpu>)>> = vec![Vec::new(); targets.len()];
    for round in 0..row.rounds.max(1) {
        for k in 0..targets.len() {
            let index = (round + k) % targets.len();
            let target = &targets[index];
            let before = cpu_ticks(&target.pids);
            let result = wrk::run(
                row.script,
                &target.url(row.path),
                row.conns,
                2,
                row.duration,
                row.close,
            )?;
            let after = cpu_ticks(&target.pids);
            let per_request =
                |ticks: u64| ticks as f64 * 1e6 / clock_ticks() / result.requests as f64;
            let cpu = (!target.pids.is_empty() && result.requests > 0).then(|| Cpu {
                total_us: per_request(after.total().saturating_sub(before.total())),
                user_us: per_request(after.user.saturating_sub(before.user)),
            });
            runs[index].push((result, cpu));
        }
    }
    Ok(targets
        .iter()
        .zip(runs)
        .map(|(target, runs)| {
            let rounds: Vec<WrkResult> = runs.iter().map(|(r, _)| r.clone()).collect();
            let cpu: Vec<Cpu> = runs.iter().filter_map(|(_, cpu)| *cpu).collect();
            let of =
                |f: fn(&Cpu) -> f64| (!cpu.is_empty()).then(|| median(cpu.iter().map(f).collect()));
            Sample {
                name: target.name,
                rps: median(rounds.iter().map(WrkResult::rps).collect()),
                p50_us: median(rounds.iter().map(|r| r.p50 as f64).collect()) as u64,
                p99_us: median(rounds.iter().map(|r| r.p99 as f64).collect()) as u64,
                p999_us: median(rounds.iter().map(|r| r.p999 as f64).collect()) as u64,
                errors: rounds.iter().map(WrkResult::errors).sum(),
                cpu_us: of(|c| c.total_us),
                user_us: of(|c| c.user_us),
                rounds,
            }
        })
        .collect())
}

/// The middle value (the upper middle of an even count); 0 for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The proxy's CPU time per request in one run, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    total_us: f64,
    user_us: f64,
}

/// CPU ticks of some processes, split as `/proc` splits them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ticks {
    pub user: u64,
    pub system: u64,
}

impl Ticks {
    pub fn total(&self) -> u64 {
        self.user + self.system
    }
}

/// User and system CPU ticks of `pids` (all their threads), from `/proc`.
pub fn cpu_ticks(pids: &[u32]) -> Ticks {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The command name may hold spaces: fields count from after its ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(Ticks { user, system })
        })
        .fold(Ticks::default(), |sum, t| Ticks {
            user: sum.user + t.user,
            system: sum.system + t.system,
        })
}

/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 on
/// x86 and arm64 whatever the kernel's own tick rate.
fn clock_ticks() -> f64 {
    100.0
}
