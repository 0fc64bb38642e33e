//! Pacing: output sent no faster than the caller's line rate.
//!
//! Owns [`TokenBucket`], a pure token bucket (no clock inside: every call is given `now`), and
//! [`PacedWriter`], an async wrapper over any [`AsyncWrite`] that spends the bucket before each
//! write and sleeps on the tokio clock (so `tokio::time::pause()` makes tests exact). Each node
//! owns its own writer, so pacing one line never blocks another. Long output (art) can be
//! written with [`PacedWriter::write_paced`], which stops early when an interrupt future (a
//! caller's keystroke) completes and reports how much was sent.
//!
//! Follows issue 4 item 5: bytes per second = bps / 10 for 8N1 (start bit, eight data bits,
//! stop bit), or bps divided by the bits of one character for other framings. It must not know
//! about telnet, charsets or sessions; it only counts bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Nanoseconds per second, as the unit of credit.
const NANOS: u128 = 1_000_000_000;

/// What the bucket allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// This many bytes (at least 1) may be sent now.
    Send(usize),
    /// Nothing may be sent for this long.
    Wait(Duration),
}

/// A token bucket that lets bytes through at a line rate.
///
/// Credit is kept as an exact integer (bit-nanoseconds), so there is no drift over long
/// outputs. A new bucket holds one byte of credit, so output starts at once and then follows
/// the line rate exactly; after a pause up to a tenth of a second of output (at least one byte)
/// may go at once, which keeps the rate smooth on slow lines.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    bps: u128,
    /// Credit for one byte: bits per character times 10^9.
    byte_cost: u128,
    /// The most credit that can be saved up.
    cap: u128,
    credit: u128,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for an 8N1 line at `bps` bits per second (`bps / 10` bytes per second),
    /// starting at `now` with credit for one byte. A rate of 0 is taken as 1 bps.
    pub fn new(bps: u32, now: Instant) -> TokenBucket {
        TokenBucket::with_framing(bps, 10, now)
    }

    /// A bucket for a line with `bits_per_char` bits per character on the wire (start bit,
    /// data bits, parity bit, stop bits; 10 for 8N1, 11 for 8N2 or 8E1).
    pub fn with_framing(bps: u32, bits_per_char: u32, now: Instant) -> TokenBucket {
        let bps = u128::from(bps.max(1));
        let byte_cost = u128::from(bits_per_char.max(1)) * NANOS;
        let burst_bytes = (bps / u128::from(bits_per_char.max(1)) / 10).max(1);
        let cap = burst_bytes * byte_cost;
        TokenBucket {
            bps,
            byte_cost,
            cap,
            credit: byte_cost,
            last: now,
        }
    }

    /// The bytes per second this bucket lets through.
    pub fn bytes_per_sec(&self) -> f64 {
        (self.bps * NANOS) as f64 / self.byte_cost as f64
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(self.bps))
            .min(self.cap);
    }

    /// Takes credit for up to `want` bytes at `now`: returns how many may go, or how long to
    /// wait before at least one may.
    pub fn take(&mut self, want: usize, now: Instant) -> Grant {
        self.refill(now);
        if want == 0 {
            return Grant::Send(0);
        }
        let affordable = self.credit / self.byte_cost;
        if affordable == 0 {
            let missing = self.byte_cost - self.credit;
            let nanos = missing.div_ceil(self.bps);
            return Grant::Wait(Duration::from_nanos(
                u64::try_from(nanos).unwrap_or(u64::MAX),
            ));
        }
        let n = usize::try_from(affordable).unwrap_or(usize::MAX).min(want);
        self.credit -= n as u128 * self.byte_cost;
        Grant::Send(n)
    }

    /// Gives back credit for bytes taken but not sent (a short write).
    pub fn refund(&mut self, bytes: usize) {
        self.credit = self
            .credit
            .saturating_add(bytes as u128 * self.byte_cost)
            .min(self.cap);
    }
}

/// An [`AsyncWrite`] wrapper that paces writes to a line rate; unpaced when built without one.
#[derive(Debug)]
pub struct PacedWriter<W> {
    inner: W,
    bucket: Option<TokenBucket>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<W: AsyncWrite + Unpin> PacedWriter<W> {
    /// Paces `inner` at `bps` (8N1); `None` writes at full speed.
    pub fn new(inner: W, bps: Option<u32>) -> PacedWriter<W> {
        let now = tokio::time::Instant::now();
        PacedWriter {
            inner,
            bucket: bps.map(|b| TokenBucket::new(b, now.into_std())),
            sleep: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// Changes the rate (e.g. after a user picks an emulated speed); `None` stops pacing.
    pub fn set_rate(&mut self, bps: Option<u32>) {
        let now = tokio::time::Instant::now().into_std();
        self.bucket = bps.map(|b| TokenBucket::new(b, now));
    }

    /// The wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unwraps the writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Writes all of `buf` paced, unless `interrupt` completes first (a keystroke that skips
    /// art). Returns how many bytes were written; fewer than `buf.len()` means interrupted.
    /// The bytes written so far are flushed either way.
    pub async fn write_paced<F: Future>(&mut self, buf: &[u8], interrupt: F) -> io::Result<usize> {
        let mut interrupt = std::pin::pin!(interrupt);
        let mut written = 0;
        let result = loop {
            if written == buf.len() {
                break Ok(());
            }
            let rest = &buf[written..];
            tokio::select! {
                biased;
                _ = &mut interrupt => break Ok(()),
                r = self.write(rest) => match r {
                    Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(e) => break Err(e),
                },
            }
        };
        result?;
        self.flush().await?;
        Ok(written)
    }

    /// Writes all of `buf` paced and flushes.
    pub async fn write_all_paced(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf).await?;
        self.flush().await
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for PacedWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(bucket) = this.bucket.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        loop {
            let now = tokio::time::Instant::now();
            match bucket.take(buf.len(), now.into_std()) {
                Grant::Send(n) => {
                    return match Pin::new(&mut this.inner).poll_write(cx, &buf[..n]) {
                        Poll::Ready(Ok(done)) => {
                            bucket.refund(n - done.min(n));
                            Poll::Ready(Ok(done))
                        }
                        other => {
                            bucket.refund(n);
                            other
                        }
                    };
                }
                Grant::Wait(d) => {
                    this.sleep.as_mut().reset(now + d);
                    if this.sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn bucket_rate_is_exact_over_ten_seconds() {
        for bps in [300u32, 1200, 2400, 9600, 19200] {
            let start = Instant::now();
            let mut b = TokenBucket::new(bps, start);
            let mut now = start;
            let mut sent = 0usize;
            let end = start + Duration::from_secs(10);
            while now < end {
                match b.take(4096, now) {
                    Grant::Send(n) => sent += n,
                    Grant::Wait(d) => now += d,
                }
            }
            let expect = (bps / 10 * 10) as f64;
            let err = (sent as f64 - expect).abs() / expect;
            assert!(err < 0.005, "{bps} bps: sent {sent}, expected {expect}");
        }
    }

    #[test]
    fn wait_is_one_byte_time_on_an_empty_bucket() {
        let now = Instant::now();
        let mut b = TokenBucket::new(300, now);
        assert_eq!(b.take(100, now), Grant::Send(1));
        assert_eq!(
            b.take(1, now),
            Grant::Wait(Duration::from_millis(33) + Duration::from_nanos(333_334))
        );
        assert_eq!(b.take(0, now), Grant::Send(0));
        b.refund(1);
        assert_eq!(b.take(5, now), Grant::Send(1));
    }

    #[test]
    fn other_framings_cost_more_bits() {
        let now = Instant::now();
        let b = TokenBucket::with_framing(1100, 11, now);
        assert!((b.bytes_per_sec() - 100.0).abs() < 1e-9);
        assert!((TokenBucket::new(2400, now).bytes_per_sec() - 240.0).abs() < 1e-9);
    }

    #[test]
    fn credit_saved_during_a_pause_is_capped_at_a_tenth_of_a_second() {
        let now = Instant::now();
        let mut b = TokenBucket::new(2400, now);
        assert_eq!(b.take(1000, now + Duration::from_secs(60)), Grant::Send(24));
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let now = Instant::now();
        let mut b = TokenBucket::new(2400, now + Duration::from_secs(1));
        let _ = b.take(1000, now);
        assert!(matches!(b.take(1, now), Grant::Wait(_)));
    }

    async fn measure(bps: u32) -> usize {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 4096];
            while let Ok(n) = b.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got
        });
        let mut w = PacedWriter::new(a, Some(bps));
        let data = vec![b'x'; 100_000];
        let start = tokio::time::Instant::now();
        let written = w
            .write_paced(
                &data,
                tokio::time::sleep_until(start + Duration::from_secs(10)),
            )
            .await
            .unwrap();
        drop(w);
        let got = reader.await.unwrap();
        assert_eq!(got, written);
        written
    }

    #[tokio::test(start_paused = true)]
    async fn paced_writer_at_300_and_2400_bps_within_two_percent() {
        for bps in [300u32, 2400] {
            let sent = measure(bps).await as f64;
            let expect = f64::from(bps / 10) * 10.0;
            assert!(
                (sent - expect).abs() / expect < 0.02,
                "{bps} bps: {sent} bytes in 10 s, expected {expect}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_writer_writes_everything_at_once() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut w = PacedWriter::new(a, None);
        let n = w
            .write_paced(b"hello", std::future::pending::<()>())
            .await
            .unwrap();
        assert_eq!(n, 5);
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[tokio::test(start_paused = true)]
    async fn two_paced_writers_do_not_slow_each_other() {
        let start = tokio::time::Instant::now();
        let slow = tokio::spawn(measure(300));
        let fast = tokio::spawn(measure(9600));
        let (slow, fast) = (slow.await.unwrap(), fast.await.unwrap());
        assert!(slow < 3_100 && fast > 9_400, "{slow} {fast}");
        assert!(start.elapsed() <= Duration::from_secs(11));
    }
}
