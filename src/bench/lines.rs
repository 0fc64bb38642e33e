//! `nuggetnet bench lines`: pacing accuracy of many serial lines at once, on real
//! pseudo-terminals and the real clock.
//!
//! Everything runs in this one process, but through the same code the BBS uses for a
//! `[[serial]]` line:
//! 1. `--lines` pseudo-terminal pairs are made with tokio-serial; the real line drivers
//!    ([`crate::serial::spawn_lines`]) open the slave device paths as `virtual-modem` lines with
//!    `connect_speed` set to the line's rate and pacing on;
//! 2. every call the drivers hand over is served like a session serves one: a
//!    [`Connection`] built with the call's `line_bps` sends 1 KiB chunks without end, so the
//!    bytes go through the real token bucket ([`crate::transport::pace::PacedWriter`]) and the
//!    real driver pump;
//! 3. the far (master) end of every pair plays a terminal program: it waits for the line to
//!    answer `AT` with `OK`, dials `ATDT1` with CR, waits for `CONNECT <speed>`, and counts the
//!    data bytes (never the modem's text) that arrive in the `--secs` seconds after the first
//!    read that carried data (whose own bytes are not counted).
//!
//! It reports, per rate, the achieved rate of each line against the nominal `bps / 10` bytes
//! per second as min / median / max error, whether every line is within 2%, the aggregate
//! rate, how long all lines were measured together, and the CPU time the whole process used
//! while they were (from `/proc/self/stat`). `--mixed` puts half the lines at 300 bps and half
//! at 9600 bps, to show that a slow line does not slow a fast one. Results are printed as
//! Markdown rows for `BENCHMARKS.md`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::serial::{LineMode, LineRegistry, SerialPortConfig};
use crate::transport::connection::Connection;
use crate::transport::{Incoming, TelnetMode};

/// Command-line arguments.
#[derive(Debug, clap::Args)]
pub struct LinesArgs {
    /// How many lines to run at once.
    #[arg(long, default_value_t = 32)]
    pub lines: usize,
    /// The speed of every line (its `CONNECT` rate and pacing rate), in bits per second.
    #[arg(long, default_value_t = 2400)]
    pub bps: u32,
    /// How long to count each line's bytes, in seconds from its first data byte.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Run half the lines at 300 bps and half at 9600 bps instead of all at `--bps`.
    #[arg(long)]
    pub mixed: bool,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    /// A pseudo-terminal pair could not be made.
    #[error("cannot create a pseudo-terminal pair: {0}")]
    Pty(#[source] tokio_serial::Error),
    /// A pseudo-terminal has no device path for the driver to open.
    #[error("pseudo-terminal {0} has no device path")]
    NoDevicePath(usize),
    /// The generated line configuration was refused.
    #[error("line configuration: {0}")]
    Config(#[from] crate::serial::SerialConfigError),
    /// The far end of a line failed to read or write.
    #[error("line {line}: {source}")]
    Io { line: usize, source: std::io::Error },
    /// A line did not do what a virtual modem should, in time.
    #[error("line {line}: {what}")]
    Line { line: usize, what: String },
    /// The process's CPU time could not be read.
    #[error("cannot read CPU time from /proc/self/stat: {0}")]
    Cpu(String),
    /// Some line never began its window (its far end stopped without a result).
    #[error("not every line started sending")]
    NotAllStarted,
    /// The run did not finish in time.
    #[error("the run did not finish within {0:?}")]
    Timeout(Duration),
}

/// Longest wait for a line to open, answer `OK` and connect.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between `AT` probes while a line is still opening.
const PROBE_EVERY: Duration = Duration::from_millis(300);
/// What the session side sends at a time.
const CHUNK: usize = 1024;
/// Clock ticks per second in `/proc/self/stat` (`USER_HZ`, fixed at 100 in the Linux ABI).
const USER_HZ: f64 = 100.0;
/// Half a `--mixed` run goes at this rate.
const MIXED_SLOW: u32 = 300;
/// The other half goes at this one.
const MIXED_FAST: u32 = 9600;
/// The accuracy the issue asks for.
const TOLERANCE: f64 = 0.02;

/// What one line measured.
#[derive(Debug, Clone, Copy)]
struct LineResult {
    bps: u32,
    /// Data bytes that arrived in the window, after the first read of data.
    bytes: u64,
    /// When the first data byte arrived.
    started: Instant,
}

impl LineResult {
    fn nominal(&self) -> f64 {
        f64::from(self.bps) / 10.0
    }
}

/// What a far end tells the coordinator.
enum Report {
    /// The line's first data byte arrived; its window has begun.
    Started,
    /// The line's window is over (or the line failed).
    Done(Result<LineResult, LinesError>),
}

/// Runs the benchmark and prints its Markdown rows.
pub async fn run(args: LinesArgs) -> Result<(), LinesError> {
    let n = args.lines.max(1);
    let secs = args.secs.max(1);
    let rates: Vec<u32> = (0..n)
        .map(|i| match (args.mixed, i < n / 2) {
            (true, true) => MIXED_SLOW,
            (true, false) => MIXED_FAST,
            (false, _) => args.bps.max(1),
        })
        .collect();

    // The pairs: the drivers open each slave by its device path, as they would a USB adapter.
    let mut far_ends = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for (i, &bps) in rates.iter().enumerate() {
        let (master, slave) = SerialStream::pair().map_err(LinesError::Pty)?;
        let device = slave.name().ok_or(LinesError::NoDevicePath(i))?;
        ports.push(SerialPortConfig {
            name: format!("bench{i}"),
            device: device.into(),
            baud: bps,
            mode: LineMode::VirtualModem,
            connect_speed: Some(bps),
            answer_delay_ms: 100,
            pace: true,
            ..SerialPortConfig::default()
        });
        far_ends.push((master, slave));
    }
    SerialPortConfig::validate_all(&ports)?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (intake, calls) = mpsc::channel(n);
    crate::serial::spawn_lines(
        ports,
        intake,
        shutdown.clone(),
        &tracker,
        LineRegistry::new(),
    );
    tracker.spawn(serve_calls(calls, shutdown.clone()));

    let (report_tx, mut reports) = mpsc::channel(2 * n);
    let finish = CancellationToken::new();
    let far_tasks = TaskTracker::new();
    let window = Duration::from_secs(secs);
    for (i, (master, slave)) in far_ends.into_iter().enumerate() {
        far_tasks.spawn(far_end(
            i,
            master,
            slave,
            window,
            report_tx.clone(),
            finish.clone(),
        ));
    }
    drop(report_tx);
    far_tasks.close();

    // Collect: CPU time is read when every line's window has begun and again when all are over.
    let limit = DIAL_TIMEOUT + window + Duration::from_secs(30);
    let collect = async {
        let mut started = 0;
        let mut cpu_start = None;
        let mut results = Vec::with_capacity(n);
        while results.len() < n {
            match reports.recv().await {
                Some(Report::Started) => {
                    started += 1;
                    if started == n {
                        cpu_start = Some((cpu_seconds()?, Instant::now()));
                    }
                }
                Some(Report::Done(r)) => results.push(r?),
                None => break,
            }
        }
        let cpu_end = (cpu_seconds()?, Instant::now());
        Ok::<_, LinesError>((results, cpu_start, cpu_end))
    };
    let outcome = tokio::time::timeout(limit, collect).await;

    // Stop the senders and the lines while the far ends still drain, so nothing waits on a
    // full pseudo-terminal buffer.
    shutdown.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(15), tracker.wait()).await;
    finish.cancel();
    far_tasks.wait().await;

    let (results, cpu_start, cpu_end) = outcome.map_err(|_| LinesError::Timeout(limit))??;
    let cpu_start = cpu_start.ok_or(LinesError::NotAllStarted)?;
    print_report(&args, secs, &results, cpu_start, cpu_end);
    Ok(())
}

/// Serves every call like a session would: a paced [`Connection`] sending without end.
async fn serve_calls(mut calls: mpsc::Receiver<Incoming>, stop: CancellationToken) {
    let senders = TaskTracker::new();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| b'A' + (i % 26) as u8).collect();
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => break,
            call = calls.recv() => match call {
                Some(call) => call,
                None => break,
            },
        };
        let stop = stop.clone();
        let chunk = chunk.clone();
        senders.spawn(async move {
            let mut conn = Connection::new(incoming.stream, TelnetMode::Never, incoming.line_bps);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    sent = conn.send(&chunk) => if sent.is_err() { break },
                }
            }
            // Dropping the connection hangs up, as a session that ends does.
        });
    }
    senders.close();
    senders.wait().await;
}

/// The terminal-program end of one line: dial, then count data bytes for `window`; afterwards
/// keep reading (and discarding) until `finish`, so the line never blocks on a full buffer.
async fn far_end(
    line: usize,
    mut port: SerialStream,
    slave: SerialStream,
    window: Duration,
    reports: mpsc::Sender<Report>,
    finish: CancellationToken,
) {
    let result = measure(line, &mut port, slave, window, &reports).await;
    let _ = reports.send(Report::Done(result)).await;
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            _ = finish.cancelled() => break,
            r = port.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { break },
        }
    }
}

async fn measure(
    line: usize,
    port: &mut SerialStream,
    slave: SerialStream,
    window: Duration,
    reports: &mpsc::Sender<Report>,
) -> Result<LineResult, LinesError> {
    let io = |source| LinesError::Io { line, source };
    let dial_by = Instant::now() + DIAL_TIMEOUT;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];

    // The driver opens the line a moment after it starts; probe until it answers.
    loop {
        port.write_all(b"AT\r").await.map_err(io)?;
        let probe_end = Instant::now() + PROBE_EVERY;
        while Instant::now() < probe_end && !contains(&seen, b"OK") {
            if let Ok(r) = tokio::time::timeout_at(probe_end, port.read(&mut buf)).await {
                let n = r.map_err(io)?;
                seen.extend_from_slice(&buf[..n]);
            }
        }
        if contains(&seen, b"OK") {
            break;
        }
        if Instant::now() >= dial_by {
            return Err(LinesError::Line {
                line,
                what: "the virtual modem never answered OK".into(),
            });
        }
    }
    // The driver has its own handle on the slave now; ours is not needed.
    drop(slave);

    seen.clear();
    port.write_all(b"ATDT1\r").await.map_err(io)?;
    let (bps, data_at) = loop {
        if let Some(at) = find(&seen, b"CONNECT ") {
            let rest = &seen[at + 8..];
            if let Some(end) = find(rest, b"\r\n") {
                let speed = std::str::from_utf8(&rest[..end])
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .ok_or_else(|| LinesError::Line {
                        line,
                        what: format!("bad CONNECT line {:?}", String::from_utf8_lossy(rest)),
                    })?;
                break (speed, at + 8 + end + 2);
            }
        }
        let n = read_by(port, &mut buf, dial_by, line).await?;
        seen.extend_from_slice(&buf[..n]);
    };

    // The window begins when the first data arrives. Those first bytes are not counted: a
    // read that came late would have gathered bytes sent before the window began.
    let mut first = seen.len() - data_at;
    while first == 0 {
        first = read_by(port, &mut buf, dial_by, line).await?;
    }
    let started = Instant::now();
    let _ = reports.send(Report::Started).await;
    let mut bytes = 0u64;
    let end = started + window;
    loop {
        match tokio::time::timeout_at(end, port.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                return Err(LinesError::Line {
                    line,
                    what: "the line closed during the window".into(),
                })
            }
            Ok(Ok(n)) => bytes += n as u64,
            Ok(Err(e)) => return Err(io(e)),
        }
    }
    Ok(LineResult {
        bps,
        bytes,
        started,
    })
}

/// Reads once, failing at `deadline` or on end of file.
async fn read_by(
    port: &mut SerialStream,
    buf: &mut [u8],
    deadline: Instant,
    line: usize,
) -> Result<usize, LinesError> {
    match tokio::time::timeout_at(deadline, port.read(buf)).await {
        Err(_) => Err(LinesError::Line {
            line,
            what: "no CONNECT or no data in time".into(),
        }),
        Ok(Ok(0)) => Err(LinesError::Line {
            line,
            what: "the line closed while dialling".into(),
        }),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(source)) => Err(LinesError::Io { line, source }),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// User plus system CPU time of this process so far, in seconds.
fn cpu_seconds() -> Result<f64, LinesError> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| LinesError::Cpu(e.to_string()))?;
    parse_cpu_seconds(&stat).ok_or_else(|| LinesError::Cpu("unexpected format".into()))
}

/// Reads `utime` and `stime` (fields 14 and 15) from a `/proc/<pid>/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The signed error of a line's achieved rate against its nominal rate, as a fraction.
fn error_of(r: &LineResult, window_secs: u64) -> f64 {
    let achieved = r.bytes as f64 / window_secs as f64;
    (achieved - r.nominal()) / r.nominal()
}

/// The median of a sorted, non-empty sample.
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn print_report(
    args: &LinesArgs,
    secs: u64,
    results: &[LineResult],
    cpu_start: (f64, Instant),
    cpu_end: (f64, Instant),
) {
    let cpu = cpu_end.0 - cpu_start.0;
    let wall = cpu_end.1.duration_since(cpu_start.1).as_secs_f64();
    let first = results.iter().map(|r| r.started).min();
    let last = results.iter().map(|r| r.started).max();
    let spread = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let mut rates: Vec<u32> = results.iter().map(|r| r.bps).collect();
    rates.sort_unstable();
    rates.dedup();

    let case = if args.mixed {
        format!("mixed {MIXED_SLOW}/{MIXED_FAST}")
    } else {
        "uniform".to_string()
    };
    println!(
        "| case | lines | bps | nominal B/s per line | error min / median / max | all within 2% \
         | aggregate B/s (nominal) | CPU while all lines ran |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for bps in rates {
        let group: Vec<&LineResult> = results.iter().filter(|r| r.bps == bps).collect();
        let mut errors: Vec<f64> = group.iter().map(|r| error_of(r, secs)).collect();
        errors.sort_by(f64::total_cmp);
        let within = errors.iter().all(|e| e.abs() <= TOLERANCE);
        let aggregate: f64 = group.iter().map(|r| r.bytes as f64).sum::<f64>() / secs as f64;
        let nominal: f64 = group.iter().map(|r| r.nominal()).sum();
        println!(
            "| {case} | {} | {bps} | {:.0} | {:+.2}% / {:+.2}% / {:+.2}% | {} | {:.0} ({:.0}) \
             | {:.2} s in {:.1} s ({:.1}% of one core) |",
            group.len(),
            f64::from(bps) / 10.0,
            errors[0] * 100.0,
            median(&errors) * 100.0,
            errors[errors.len() - 1] * 100.0,
            if within { "yes" } else { "**no**" },
            aggregate,
            nominal,
            cpu,
            wall,
            100.0 * cpu / wall.max(1e-9),
        );
    }
    println!();
    println!(
        "Each line counted for {secs} s from its first read of data; the windows began within \
         {spread:.3} s of each other, so all {} lines ran together for {:.2} s.",
        results.len(),
        (secs as f64 - spread).max(0.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_command_name() {
        let stat = "4242 (nugget (bench) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("no fields"), None);
    }

    #[test]
    fn median_of_even_and_odd_samples() {
        assert_eq!(median(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 5.0]), 2.5);
    }
}
