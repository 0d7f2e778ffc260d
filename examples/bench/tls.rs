//! The TLS rows (`bench/run --tls`): teal, nginx and HAProxy terminating TLS
//! with the same ECDSA P-256 certificate in front of the same backend (the
//! demo app instance teal runs), in one run:
//!
//! - keep-alive over TLS (wrk, HTTP/1.1) at ~100 B and 64 KiB, and wrk with
//!   `Connection: close` (a full handshake per request: wrk never resumes);
//! - a new TLS connection per request with teal's load client (rustls), with
//!   session resumption off and on: handshakes/s;
//! - HTTP/2 over TLS with h2load;
//! - whether each proxy resumes sessions, and RSS per idle TLS connection.
//!
//! The plain backend (direct) stays in the wrk tables as the baseline.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use teal::load::{Load, LoadReport, LoadSpec};

use crate::setup::{Nginx, Teal, TealTls, free_port, rss_kib};
use crate::throughput::{Row, Target, cpu_ticks, median};
use crate::tls_setup::{Cert, HOST, Haproxy, haproxy_version, open_idle_tls, resumes};
use crate::{h2load, mib, micros, report, wrk};

/// Idle TLS connections opened per proxy for the footprint.
const IDLE_CONNS: usize = 2_000;
/// Concurrent clients of the new-connection and HTTP/2 rows.
const CLIENTS: usize = 16;
/// Streams per h2load connection.
const STREAMS: usize = 10;

/// A proxy terminating TLS: its name, TLS address, the processes whose CPU
/// counts, and those whose memory does.
struct Proxy {
    name: &'static str,
    addr: SocketAddr,
    cpu_pids: Vec<u32>,
    rss_pids: Vec<u32>,
}

impl Proxy {
    fn rss(&self) -> u64 {
        self.rss_pids.iter().map(|p| rss_kib(*p)).sum()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.addr.port())
    }
}

pub async fn run(
    bin: &Path,
    work: &Path,
    seconds: u64,
    rounds: usize,
    threads: usize,
) -> anyhow::Result<()> {
    for dir in ["teal", "nginx", "haproxy"] {
        std::fs::create_dir_all(work.join(dir))?;
    }
    let cert = Cert::make(work)?;
    let tls_listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let teal = Teal::start_with(
        bin,
        &work.join("teal"),
        threads,
        Some(TealTls {
            listen: tls_listen,
            cert: &cert.chain,
            key: &cert.key,
        }),
    )?;
    teal.cli(&["deploy", "web"])?;
    let backend = teal.live_backend()?;
    let nginx = Nginx::start_tls(
        &work.join("nginx"),
        backend,
        threads,
        &cert.chain,
        &cert.key,
    )?;
    let haproxy = Haproxy::start(&work.join("haproxy"), backend, threads, &cert)?;
    let proxies = [
        Proxy {
            name: "teal",
            addr: tls_listen,
            cpu_pids: vec![teal.pid()],
            rss_pids: vec![teal.pid()],
        },
        Proxy {
            name: "nginx",
            addr: nginx.listen,
            cpu_pids: nginx.worker_pids(),
            rss_pids: nginx.pids(),
        },
        Proxy {
            name: "haproxy",
            addr: haproxy.listen,
            cpu_pids: vec![haproxy.pid()],
            rss_pids: vec![haproxy.pid()],
        },
    ];

    println!("# teal TLS benchmark run\n");
    println!(
        "- date: {}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    println!(
        "- machine: {} cores, {}; shared with other work (figures move from run to run: compare within a run)",
        crate::cores(),
        crate::cpu_model()
    );
    println!(
        "- teal {} (release, `--threads {threads}`, rustls 0.23 with ring), {}, {}, {}, {}",
        env!("CARGO_PKG_VERSION"),
        crate::nginx_version(),
        haproxy_version(),
        wrk::version(),
        h2load::version()
    );
    println!(
        "- one ECDSA P-256 certificate for `{HOST}` (signed by a CA made for the run) in all three; nginx `worker_processes {threads}`, HAProxy `nbthread {threads}`, both with keep-alive upstreams and their TLS defaults (session tickets on; HAProxy also its session cache); teal issues stateless tickets too"
    );
    println!(
        "- backend: the demo app teal runs, one process, for all three; {seconds} s per run, {rounds} round(s) per row in rotating order, medians reported\n"
    );
    let idle: Vec<u64> = proxies.iter().map(Proxy::rss).collect();
    let duration = Duration::from_secs(seconds);

    let script = wrk::install_script(work)?;
    let mut targets = vec![Target {
        name: "direct",
        addr: backend,
        pids: Vec::new(),
        https: false,
    }];
    targets.extend(proxies.iter().map(|p| Target {
        name: p.name,
        addr: p.addr,
        pids: p.cpu_pids.clone(),
        https: true,
    }));
    println!("## Keep-alive over TLS (wrk, HTTP/1.1)\n");
    report::row_header_with("vs nginx");
    let rows = [
        ("~100 B", "/", 64, false),
        ("64 KiB", "/bytes?n=65536", 64, false),
        ("~100 B", "/", CLIENTS, true),
    ];
    for (body, path, conns, close) in rows {
        let row = Row {
            script: &script,
            path,
            conns,
            close,
            duration,
            rounds,
        };
        let label = if close {
            format!("{conns} (close: a full handshake each)")
        } else {
            conns.to_string()
        };
        report::RowResult::new(body, label, crate::throughput::measure(&row, &targets)?).print();
    }
    println!(
        "\ndirect is the backend over plain HTTP (what TLS costs). wrk (OpenSSL) never resumes a session: with `Connection: close` every request is a full handshake (ECDSA P-256 signature, X25519)."
    );

    println!("\n## A new TLS connection per request (teal's load client, rustls)\n");
    println!(
        "{CLIENTS} clients, each: connect, handshake (key share X25519, as browsers and wrk), `GET /` with `Connection: close`, read the answer, close; no retries.\n"
    );
    println!(
        "| resumption | target | resumes? | resumed | handshakes/s | p50 | p99 | failed | proxy CPU / handshake | vs nginx | per round |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut resumed = Vec::new();
    for proxy in &proxies {
        resumed.push(resumes(&cert, proxy.addr).await?);
    }
    for resume in [false, true] {
        let runs = handshake_rows(&cert, &proxies, resume, duration, rounds).await?;
        let nginx_rps = runs[1].rps;
        for ((proxy, run), resumes) in proxies.iter().zip(&runs).zip(&resumed) {
            println!(
                "| {} | {} | {} | {:.0} % | {:.0} | {} | {} | {} | {:.0} µs | {:.2}× | {} |",
                if resume { "on" } else { "off" },
                proxy.name,
                if *resumes { "yes" } else { "**no**" },
                run.resumed * 100.0,
                run.rps,
                micros(run.p50),
                micros(run.p99),
                run.failed,
                run.cpu_us,
                run.rps / nginx_rps.max(1.0),
                run.per_round.join(" / ")
            );
        }
    }
    println!(
        "\nresumes?: a second connection of one client, after a first that read its answer, is a resumed handshake (rustls's `HandshakeKind::Resumed`); resumed: the share of the row's handshakes that were. Resumption on: rustls's client default (TLS 1.3 tickets, kept in memory per server name); off: `Resumption::disabled()`. The client runs in this process on the same 2 cores."
    );

    println!("\n## HTTP/2 over TLS (h2load)\n");
    println!("`h2load -t2 -c{CLIENTS} -m{STREAMS} -D{seconds}`, ALPN h2.\n");
    println!("| target | protocol | req/s | mean | max | failed | vs nginx | per round |");
    println!("|---|---|---|---|---|---|---|---|");
    let h2 = h2_rows(&proxies, duration, rounds)?;
    let nginx_rps = h2[1].0;
    for (proxy, (rps, last, per_round, failed)) in proxies.iter().zip(&h2) {
        println!(
            "| {} | {} | {rps:.0} | {} | {} | {failed} | {:.2}× | {} |",
            proxy.name,
            last.protocol,
            micros(Duration::from_micros(last.mean_us as u64)),
            micros(Duration::from_micros(last.max_us as u64)),
            rps / nginx_rps.max(1.0),
            per_round.join(" / ")
        );
    }
    println!(
        "\n(mean and max: h2load's \"time for request\" of the last round; it gives no percentiles.)"
    );

    println!("\n## Memory per idle TLS connection\n");
    println!(
        "{IDLE_CONNS} TLS connections opened (full handshakes), each with one request answered, then left idle for {} s; RSS of the proxy's processes before and after.\n",
        crate::footprint::SETTLE.as_secs_f64()
    );
    println!(
        "| target | idle at start | before | with {IDLE_CONNS} idle TLS connections | per connection | failed |"
    );
    println!("|---|---|---|---|---|---|");
    for (proxy, idle) in proxies.iter().zip(idle) {
        let before = proxy.rss();
        let (conns, failed) = open_idle_tls(&cert, proxy.addr, IDLE_CONNS).await?;
        tokio::time::sleep(crate::footprint::SETTLE).await;
        let after = proxy.rss();
        let open = conns.len().max(1) as f64;
        drop(conns);
        println!(
            "| {} | {} | {} | {} | {:.1} KiB | {failed} |",
            proxy.name,
            mib(idle),
            mib(before),
            mib(after),
            after.saturating_sub(before) as f64 / open
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// One proxy's figures in a handshake row, over the rounds.
struct HandshakeRun {
    rps: f64,
    p50: Duration,
    p99: Duration,
    failed: u64,
    /// Handshakes that resumed a session, over all connections (all rounds).
    resumed: f64,
    cpu_us: f64,
    per_round: Vec<String>,
}

/// Each proxy, `rounds` times in rotating order: the load client's
/// new-connection workers for `duration`; medians over the rounds.
async fn handshake_rows(
    cert: &Cert,
    proxies: &[Proxy],
    resume: bool,
    duration: Duration,
    rounds: usize,
) -> anyhow::Result<Vec<HandshakeRun>> {
    let mut runs: Vec<Vec<(LoadReport, f64)>> = proxies.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        for k in 0..proxies.len() {
            let index = (round + k) % proxies.len();
            let proxy = &proxies[index];
            let before = cpu_ticks(&proxy.cpu_pids);
            let report = Load::start(LoadSpec {
                host: Some(HOST.into()),
                tls: Some(cert.load_tls(resume)?),
                keepalive_connections: 0,
                fresh_connection_workers: CLIENTS,
                max_requests: 100_000_000,
                max_duration: duration,
                ..LoadSpec::new(proxy.addr)
            })
            .wait()
            .await;
            let after = cpu_ticks(&proxy.cpu_pids);
            let ticks = after.total().saturating_sub(before.total());
            let cpu_us = ticks as f64 * 1e4 / report.ok.max(1) as f64;
            runs[index].push((report, cpu_us));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(runs
        .into_iter()
        .map(|runs| {
            let rate = |r: &LoadReport| r.ok as f64 / r.elapsed.as_secs_f64().max(1e-3);
            let of = |f: fn(&LoadReport) -> Duration| {
                Duration::from_secs_f64(median(
                    runs.iter().map(|(r, _)| f(r).as_secs_f64()).collect(),
                ))
            };
            HandshakeRun {
                rps: median(runs.iter().map(|(r, _)| rate(r)).collect()),
                p50: of(|r| r.latency_p50),
                p99: of(|r| r.latency_p99),
                failed: runs.iter().map(|(r, _)| r.failed()).sum(),
                resumed: runs.iter().map(|(r, _)| r.tls_resumed).sum::<u64>() as f64
                    / runs.iter().map(|(r, _)| r.sent).sum::<u64>().max(1) as f64,
                cpu_us: median(runs.iter().map(|(_, cpu)| *cpu).collect()),
                per_round: runs
                    .iter()
                    .map(|(r, _)| format!("{:.0}", rate(r)))
                    .collect(),
            }
        })
        .collect())
}

/// One proxy's h2load figures: the median req/s, the last round's result,
/// every round's req/s, and failures summed over the rounds.
type H2Row = (f64, h2load::H2Result, Vec<String>, u64);

/// h2load against each proxy, `rounds` times in rotating order: the median
/// req/s, the last round's result, every round's req/s, and failures summed.
fn h2_rows(proxies: &[Proxy], duration: Duration, rounds: usize) -> anyhow::Result<Vec<H2Row>> {
    let mut runs: Vec<Vec<h2load::H2Result>> = proxies.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds.max(1) {
        for k in 0..proxies.len() {
            let index = (round + k) % proxies.len();
            let result = h2load::run(&proxies[index].url("/"), CLIENTS, STREAMS, duration)?;
            runs[index].push(result);
        }
    }
    Ok(runs
        .into_iter()
        .map(|runs| {
            let rps = median(runs.iter().map(|r| r.rps).collect());
            let per_round = runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
            let failed = runs.iter().map(|r| r.failed).sum();
            (
                rps,
                runs.last().cloned().unwrap_or_default(),
                per_round,
                failed,
            )
        })
        .collect())
}
