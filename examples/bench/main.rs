//! teal's benchmark harness: the builtin proxy against the same backend reached
//! directly and through a tuned nginx, in one run on one machine, with ratios.
//! Run it with `bench/run` (which installs wrk and nginx and builds release);
//! BENCHMARKS.md records its output. `bench/run --quick` is the under-two-minutes
//! version (never run by the test suite: speed is not asserted in tests);
//! `bench/run --tls` runs the TLS rows instead (teal vs nginx vs HAProxy).

mod footprint;
mod h2load;
mod report;
mod setup;
mod switch;
mod throughput;
mod tls;
mod tls_setup;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use setup::{Nginx, Teal, rss_kib};
use teal::load::{Load, LoadSpec};
use throughput::{Row, Target};

#[derive(Debug, Parser)]
#[command(about = "teal vs direct vs nginx, same run")]
struct Args {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per throughput row; each figure reported is its median over them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Milliseconds between two switches under load (both routers).
    #[arg(long, default_value_t = 100)]
    switch_every_ms: u64,
    /// Under two minutes: 2 s runs, one round, 16 and 256 connections, 20 switches.
    #[arg(long)]
    quick: bool,
    /// Worker threads for teal, worker processes for nginx.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Switches under load, per router.
    #[arg(long, default_value_t = 100)]
    switches: usize,
    /// Concurrency levels for the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    concurrency: Vec<usize>,
    /// Only write the tuned nginx config into this directory (`nginx.conf`),
    /// listening on `LISTEN` and proxying to `BACKEND`, with `--threads`
    /// workers; then exit. `bench/callgrind` uses it, so both measure the same
    /// nginx.
    #[arg(long, num_args = 3, value_names = ["DIR", "LISTEN", "BACKEND"])]
    nginx_conf: Option<Vec<String>>,
    /// Which throughput rows to run: `small` (~100 B), `large` (64 KiB),
    /// `close` (a new connection per request).
    #[arg(long, value_delimiter = ',', default_value = "small,large,close")]
    rows: Vec<RowKind>,
    /// Only the throughput rows: no footprint, switches or deploy overhead
    /// (for looking into one row with many rounds).
    #[arg(long)]
    throughput_only: bool,
    /// Only the TLS rows: teal, nginx and HAProxy with one certificate
    /// (keep-alive, a handshake per request with resumption off and on,
    /// HTTP/2 with h2load, memory per idle TLS connection).
    #[arg(long)]
    tls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RowKind {
    Small,
    Large,
    Close,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.seconds = 2;
        args.rounds = 1;
        args.switches = args.switches.min(20);
        args.concurrency = vec![16, 256];
    }
    if let Some(conf) = &args.nginx_conf {
        let [dir, listen, backend] = conf.as_slice() else {
            anyhow::bail!("--nginx-conf takes DIR LISTEN BACKEND");
        };
        let dir = std::path::Path::new(dir);
        return Nginx::write_conf(
            &dir.join("nginx.conf"),
            dir,
            listen.parse()?,
            backend.parse()?,
            args.threads,
        );
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bin = teal_bin()?;
    let work = tempfile::Builder::new().prefix("teal-bench-").tempdir()?;
    if args.tls {
        return tls::run(&bin, work.path(), args.seconds, args.rounds, args.threads).await;
    }
    std::fs::create_dir_all(work.path().join("teal"))?;
    std::fs::create_dir_all(work.path().join("nginx"))?;
    let teal = Teal::start(&bin, &work.path().join("teal"), args.threads)?;
    teal.cli(&["deploy", "web"])?;
    let backend = teal.live_backend()?;
    let nginx = Nginx::start(&work.path().join("nginx"), backend, args.threads)?;
    let script = wrk::install_script(work.path())?;
    let targets = [
        Target {
            name: "direct",
            addr: backend,
            pids: Vec::new(),
            https: false,
        },
        Target {
            name: "teal",
            addr: teal.listen,
            pids: vec![teal.pid()],
            https: false,
        },
        Target {
            name: "nginx",
            addr: nginx.listen,
            pids: nginx.worker_pids(),
            https: false,
        },
    ];

    println!("# teal benchmark run\n");
    println!(
        "- date: {}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    println!("- machine: {} cores, {}", cores(), cpu_model());
    println!(
        "- teal {} (release, `teal serve --threads {}`: {} proxy worker threads), {}, {}",
        env!("CARGO_PKG_VERSION"),
        args.threads,
        args.threads,
        nginx_version(),
        wrk::version()
    );
    println!(
        "- nginx: `worker_processes {}`, keep-alive upstream (512), access log off, `listen … reuseport deferred` (teal's listeners: SO_REUSEPORT and TCP_DEFER_ACCEPT too)",
        args.threads
    );
    println!(
        "- backend: the demo app (`teal demo-app`), one process; wrk `-t2`, {} s per run, {} round(s) per row in rotating order, medians over the rounds reported{}\n",
        args.seconds,
        args.rounds,
        if args.quick { " (`--quick`)" } else { "" }
    );

    // Footprint at idle, before any load has grown allocator pools.
    let idle_teal = rss_kib(teal.pid());
    let idle_nginx: u64 = nginx.pids().iter().map(|p| rss_kib(*p)).sum();

    let duration = Duration::from_secs(args.seconds);
    let mut rows: Vec<report::RowResult> = Vec::new();
    println!("## Throughput and latency (keep-alive)\n");
    report::row_header();
    for (kind, body, path) in [
        (RowKind::Small, "~100 B", "/"),
        (RowKind::Large, "64 KiB", "/bytes?n=65536"),
    ] {
        if !args.rows.contains(&kind) {
            continue;
        }
        for &conns in &args.concurrency {
            let row = Row {
                script: &script,
                path,
                conns,
                close: false,
                duration,
                rounds: args.rounds,
            };
            let samples = throughput::measure(&row, &targets)?;
            let result = report::RowResult::new(body, conns.to_string(), samples);
            result.print();
            rows.push(result);
        }
    }
    // teal's req/s with a new connection per request, when that row ran: the
    // switches below load teal at about half of it.
    let mut close_rps = None;
    if args.rows.contains(&RowKind::Close) {
        let row = Row {
            script: &script,
            path: "/",
            conns: 16,
            close: true,
            duration,
            rounds: args.rounds,
        };
        let close = report::RowResult::new(
            "~100 B",
            "16 (close)".into(),
            throughput::measure(&row, &targets)?,
        );
        println!();
        println!("New connection per request (`Connection: close`, 16 concurrent):\n");
        report::row_header();
        close.print();
        close_rps = Some(close.rps("teal"));
        rows.push(close);
    }
    println!(
        "\nEach figure is the median over the rounds (req/s, p50, p99, p99.9 and CPU each on its own); errors are summed over all rounds. teal / nginx: the ratio of the two medians, and in brackets the median of the per-round ratios (each round runs both within seconds). proxy CPU: user + system time of the proxy's processes (teal serve; nginx workers) over the run, per request, from `/proc`, and in brackets its user-space part (the proxy's own code; the rest is the kernel's work for it). The last two columns list every round's req/s and p99, in the order run."
    );
    if args.throughput_only {
        return Ok(());
    }

    println!("\n## Footprint (RSS)\n");
    println!(
        "Read {} s after the last connection opened (each had sent one request and got its answer): teal parks an HTTP/1.1 connection idle for 1 to 2 s, dropping its buffers; nginx frees them at once.\n",
        footprint::SETTLE.as_secs_f64()
    );
    println!("| state | teal | nginx (master + workers) |");
    println!("|---|---|---|");
    println!("| idle | {} | {} |", mib(idle_teal), mib(idle_nginx));
    let mut rss_10k = (0, 0);
    for n in [1_000usize, 10_000] {
        let (teal_conns, teal_failed) = footprint::open_idle(teal.listen, n).await;
        tokio::time::sleep(footprint::SETTLE).await;
        let teal_rss = rss_kib(teal.pid());
        drop(teal_conns);
        let (nginx_conns, nginx_failed) = footprint::open_idle(nginx.listen, n).await;
        tokio::time::sleep(footprint::SETTLE).await;
        let nginx_rss: u64 = nginx.pids().iter().map(|p| rss_kib(*p)).sum();
        drop(nginx_conns);
        println!(
            "| {n} idle keep-alive connections | {}{} | {}{} |",
            mib(teal_rss),
            failed_note(teal_failed),
            mib(nginx_rss),
            failed_note(nginx_failed)
        );
        rss_10k = (teal_rss, nginx_rss);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Both slots running: rollbacks are pure switches, and nginx alternates between them.
    teal.cli(&["deploy", "web", "--version", "2.0.0"])?;
    let green = teal.live_backend()?;
    let capacity = close_rps.unwrap_or(1000.0).max(1000.0);
    let every = Duration::from_millis(args.switch_every_ms);
    println!("\n## {} switches under load\n", args.switches);
    let teal_switch = teal_switches(&teal, args.switches, capacity, every).await?;
    let nginx_switch = nginx_switches(
        &nginx,
        work.path(),
        [(backend, "1.0.0"), (green, "2.0.0")],
        args.switches,
        capacity,
        args.threads,
        every,
    )
    .await?;
    let teal_latency =
        switch::teal_latency((backend, "1.0.0".into()), (green, "2.0.0".into()), 50).await?;
    let (tl_med, tl_max) = switch::median_max(teal_latency);
    let (nl_med, nl_max) = switch::median_max(nginx_switch.latencies.clone());
    println!(
        "| router | switches | requests | failed | failures by kind | switch latency median / max |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| teal builtin (`teal rollback`) | {} | {} | {} | {} | {} / {} |",
        args.switches,
        teal_switch.sent,
        teal_switch.failed(),
        kinds(&teal_switch),
        micros(tl_med),
        micros(tl_max)
    );
    println!(
        "| nginx (`SIGHUP` reload) | {} | {} | {} | {} | {} / {} |",
        args.switches,
        nginx_switch.report.sent,
        nginx_switch.report.failed(),
        kinds(&nginx_switch.report),
        micros(nl_med),
        micros(nl_max)
    );
    println!(
        "\nLoad: the teal load client (8 keep-alive + 2 new-connection workers, no retries) paced to about half of teal's new-connection capacity ({:.0} req/s); one switch every {} ms at most (a reload that takes longer sets nginx's pace). Switch latency: teal measured in-process around `Router::set_routes` (50 switches, keep-alive poller); nginx from `SIGHUP` to the first answer of the new upstream.",
        capacity / 2.0,
        args.switch_every_ms
    );

    println!("\n## Deploy overhead\n");
    let deploy = deploy_overhead(&teal, &bin).await?;
    println!("| measure | median of 5 |");
    println!("|---|---|");
    println!(
        "| `teal deploy` wall time, command to live | {} |",
        millis(deploy.0)
    );
    println!(
        "| the app's own boot: spawn to first 200 (polled every 1 ms) | {} |",
        millis(deploy.1)
    );
    let overhead = deploy.0.saturating_sub(deploy.1);
    println!("| overhead | {} |", millis(overhead));

    report::targets(&report::Outcome {
        rows: &rows,
        switch_failed: teal_switch.failed(),
        nginx_switch_failed: nginx_switch.report.failed(),
        switch_latency: tl_med,
        idle_rss_kib: idle_teal,
        rss_10k_kib: rss_10k,
        deploy_overhead: overhead,
    });
    Ok(())
}

fn load_spec(target: SocketAddr, capacity: f64) -> LoadSpec {
    // 10 workers; each request takes roughly 1/capacity of a worker's time at full
    // speed, so pausing makes the total about half of capacity.
    let per_worker = (capacity / 2.0 / 10.0).max(1.0);
    let pause = Duration::from_secs_f64((1.0 / per_worker - 10.0 / capacity).max(0.0));
    LoadSpec {
        target,
        host: Some("bench".into()),
        tls: None,
        path: "/".into(),
        keepalive_connections: 8,
        fresh_connection_workers: 2,
        max_requests: 10_000_000,
        max_duration: Duration::from_secs(600),
        request_timeout: Duration::from_secs(10),
        pause,
    }
}

async fn teal_switches(
    teal: &Teal,
    switches: usize,
    capacity: f64,
    every: Duration,
) -> anyhow::Result<teal::load::LoadReport> {
    let load = Load::start(load_spec(teal.listen, capacity));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..switches {
        let started = Instant::now();
        teal.cli(&["rollback", "web"])?;
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(load.stop().await)
}

struct NginxSwitches {
    report: teal::load::LoadReport,
    latencies: Vec<Duration>,
}

async fn nginx_switches(
    nginx: &Nginx,
    dir: &std::path::Path,
    backends: [(SocketAddr, &str); 2],
    switches: usize,
    capacity: f64,
    workers: usize,
    every: Duration,
) -> anyhow::Result<NginxSwitches> {
    let load = Load::start(load_spec(nginx.listen, capacity));
    let mut poller = switch::Poller::new(nginx.listen);
    let mut latencies = Vec::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for round in 0..switches {
        let (addr, version) = backends[(round + 1) % 2];
        Nginx::write_conf(&nginx.conf, &dir.join("nginx"), nginx.listen, addr, workers)?;
        let decided = Instant::now();
        nginx.reload()?;
        let seen = poller
            .until(version, Duration::from_secs(10))
            .await
            .with_context(|| format!("nginx never served {version} after reload {round}"))?;
        latencies.push(seen - decided);
        tokio::time::sleep(every.saturating_sub(decided.elapsed())).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(NginxSwitches {
        report: load.stop().await,
        latencies,
    })
}

/// Median `teal deploy` wall time and median app boot time, 5 each.
async fn deploy_overhead(
    teal: &Teal,
    bin: &std::path::Path,
) -> anyhow::Result<(Duration, Duration)> {
    let mut deploys = Vec::new();
    for n in 0..5 {
        let started = Instant::now();
        teal.cli(&["deploy", "web", "--version", &format!("3.0.{n}")])?;
        deploys.push(started.elapsed());
    }
    let mut boots = Vec::new();
    for _ in 0..5 {
        let port = setup::free_port()?;
        let started = Instant::now();
        let child = Command::new(bin)
            .args([
                "demo-app",
                "--port",
                &port.to_string(),
                "--app-version",
                "boot",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let _owned = setup::Owned(child);
        let mut poller = switch::Poller::new(SocketAddr::from(([127, 0, 0, 1], port)));
        loop {
            if poller.version().await.as_deref() == Some("boot") {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "demo app did not boot"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        boots.push(started.elapsed());
    }
    Ok((switch::median_max(deploys).0, switch::median_max(boots).0))
}

fn kinds(r: &teal::load::LoadReport) -> String {
    let mut parts: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    parts.extend(r.statuses.iter().map(|(s, v)| format!("HTTP {s}: {v}")));
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn teal_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/release/examples/bench → target/release/teal
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("teal"))
        .context("locating target dir")?;
    anyhow::ensure!(
        bin.exists(),
        "{} missing: run `cargo build --release` first",
        bin.display()
    );
    Ok(bin)
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(
            Resource::RLIMIT_NOFILE,
            hard.min(1 << 20),
            hard.min(1 << 20),
        );
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn nginx_version() -> String {
    Command::new(setup::nginx_bin())
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_default()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn micros(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn failed_note(failed: usize) -> String {
    if failed == 0 {
        String::new()
    } else {
        format!(" ({failed} failed to open)")
    }
}
