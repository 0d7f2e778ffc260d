//! Throughput rows: every target runs once per round, in an order that rotates
//! from round to round (so no target always runs first, or right after a busy
//! neighbour), and the round with the median req/s is reported for each. The
//! proxy's own CPU time per request is read from `/proc` around each run:
//! unlike req/s it does not depend on what else the machine's cores are doing.

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
}

/// What one target measured in its median round.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    pub wrk: WrkResult,
    /// CPU time of `pids` per request, in microseconds; None without pids.
    pub cpu_us: Option<f64>,
    /// req/s of every round, in order, for the report's spread column.
    pub rounds: Vec<f64>,
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

/// Runs `row` against every target for `row.rounds` rounds; the median round
/// (by req/s) of each target, in the order of `targets`.
pub fn measure(row: &Row<'_>, targets: &[Target]) -> anyhow::Result<Vec<Sample>> {
    let mut runs: Vec<Vec<(WrkResult, Option<f64>)>> = vec![Vec::new(); targets.len()];
    for round in 0..row.rounds.max(1) {
        for k in 0..targets.len() {
            let index = (round + k) % targets.len();
            let target = &targets[index];
            let before = cpu_ticks(&target.pids);
            let result = wrk::run(
                row.script,
                target.addr,
                row.path,
                row.conns,
                2,
                row.duration,
                row.close,
            )?;
            let used = cpu_ticks(&target.pids).saturating_sub(before);
            let cpu_us = (!target.pids.is_empty() && result.requests > 0)
                .then(|| used as f64 * 1e6 / clock_ticks() / result.requests as f64);
            runs[index].push((result, cpu_us));
        }
    }
    Ok(targets
        .iter()
        .zip(runs)
        .map(|(target, mut runs)| {
            let rounds = runs.iter().map(|(r, _)| r.rps()).collect();
            runs.sort_by(|a, b| a.0.rps().total_cmp(&b.0.rps()));
            let (wrk, cpu_us) = runs.swap_remove(runs.len() / 2);
            Sample {
                name: target.name,
                wrk,
                cpu_us,
                rounds,
            }
        })
        .collect())
}

/// User + system CPU ticks of `pids` (all their threads), from `/proc`.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The command name may hold spaces: fields count from after its ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .sum()
}

/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 on
/// x86 and arm64 whatever the kernel's own tick rate.
fn clock_ticks() -> f64 {
    100.0
}
