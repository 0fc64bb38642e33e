//! One caller's byte stream turned into input events and output bytes.
//!
//! [`Connection`] owns the stream and, on telnet links, the telnet codec: it answers
//! negotiation by itself, unescapes and escapes IAC, and hands the session only
//! [`Input`] events. On raw links it passes bytes untouched. It never interprets keys or
//! charsets: that is the terminal layer's job.
//!
//! Output is paced to the line rate when the caller has one (a modem's CONNECT rate, a serial
//! line's speed, or an emulated rate), and long output can be written so that a keystroke
//! stops it (skipping art on a slow line).

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::{Decoder, Encoder};

use super::pace::PacedWriter;
use super::{Stream, TelnetMode};
use crate::telnet::{TelnetCodec, TelnetEvent};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// A write that makes no progress for this long ends the call: a stalled peer must not hold
/// a node forever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What arrives from a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes the caller typed (telnet framing removed).
    Data(Bytes),
    /// The window size the caller's telnet client reported (NAWS).
    WindowSize { cols: u16, rows: u16 },
    /// The caller's terminal-type list (telnet TTYPE).
    TerminalTypes(Vec<String>),
    /// A raw-TCP caller turned out to speak telnet (its first byte was IAC).
    TelnetDetected,
}

/// A caller's stream with its framing.
pub struct Connection {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: PacedWriter<WriteHalf<Box<dyn Stream>>>,
    /// `None` on links that never speak telnet.
    codec: Option<TelnetCodec>,
    read_buf: BytesMut,
    /// Protocol replies not yet written; flushed before the next read so `recv` stays
    /// cancel-safe.
    protocol_out: BytesMut,
    write_buf: BytesMut,
    pending: VecDeque<Input>,
    bytes_in: u64,
    bytes_out: u64,
}

impl Connection {
    /// Wraps a stream; output is paced to `line_bps` when given. Nothing is sent until
    /// [`Connection::start`].
    pub fn new(stream: Box<dyn Stream>, mode: TelnetMode, line_bps: Option<u32>) -> Connection {
        let codec = match mode {
            TelnetMode::Negotiate => Some(TelnetCodec::telnet()),
            TelnetMode::RawAutodetect => Some(TelnetCodec::raw_autodetect()),
            TelnetMode::Never => None,
        };
        let (reader, writer) = tokio::io::split(stream);
        Connection {
            reader,
            writer: PacedWriter::new(writer, line_bps),
            codec,
            read_buf: BytesMut::with_capacity(256),
            protocol_out: BytesMut::new(),
            write_buf: BytesMut::new(),
            pending: VecDeque::new(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Sends the opening telnet requests on a telnet link (nothing on other links).
    pub async fn start(&mut self) -> io::Result<()> {
        if let Some(codec) = self.codec.as_mut() {
            if codec.is_telnet() {
                let opening = codec.start_negotiation();
                self.protocol_out.extend_from_slice(&opening);
                self.flush_protocol().await?;
            }
        }
        Ok(())
    }

    /// Whether the link currently speaks telnet.
    pub fn is_telnet(&self) -> bool {
        self.codec.as_ref().is_some_and(|c| c.is_telnet())
    }

    /// The next input event, or `None` when the caller has hung up.
    ///
    /// Cancel-safe: dropping the future loses no input and no protocol reply.
    pub async fn recv(&mut self) -> io::Result<Option<Input>> {
        loop {
            if let Some(input) = self.pending.pop_front() {
                return Ok(Some(input));
            }
            self.flush_protocol().await?;
            if !self.read_buf.is_empty() {
                self.decode_buffered()?;
                if !self.pending.is_empty() || !self.protocol_out.is_empty() {
                    continue;
                }
            }
            self.read_buf.reserve(READ_CHUNK);
            let n = self.reader.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_in += n as u64;
            self.decode_buffered()?;
        }
    }

    fn decode_buffered(&mut self) -> io::Result<()> {
        let Some(codec) = self.codec.as_mut() else {
            let data = self.read_buf.split().freeze();
            if !data.is_empty() {
                self.pending.push_back(Input::Data(data));
            }
            return Ok(());
        };
        while let Some(event) = codec.decode(&mut self.read_buf).map_err(io::Error::other)? {
            match event {
                TelnetEvent::Data(data) => self.pending.push_back(Input::Data(data)),
                TelnetEvent::Send(bytes) => self.protocol_out.extend_from_slice(&bytes),
                TelnetEvent::WindowSize { cols, rows } => {
                    self.pending.push_back(Input::WindowSize { cols, rows })
                }
                TelnetEvent::TerminalTypes(names) => {
                    self.pending.push_back(Input::TerminalTypes(names))
                }
                TelnetEvent::TelnetDetected => {
                    // The peer speaks telnet after all: ask for what we ask every telnet
                    // caller, as tcpser and FujiNet in telnet mode expect.
                    let opening = codec.start_negotiation();
                    self.protocol_out.extend_from_slice(&opening);
                    self.pending.push_back(Input::TelnetDetected);
                }
                // Other events (environment, stray commands) change nothing for us.
                _ => {}
            }
        }
        Ok(())
    }

    async fn flush_protocol(&mut self) -> io::Result<()> {
        while !self.protocol_out.is_empty() {
            let n = write_with_timeout(&mut self.writer, &self.protocol_out).await?;
            self.protocol_out.advance(n);
            self.bytes_out += n as u64;
        }
        Ok(())
    }

    fn encode(&mut self, data: &[u8]) -> io::Result<()> {
        match self.codec.as_mut() {
            Some(codec) => codec
                .encode(Bytes::copy_from_slice(data), &mut self.write_buf)
                .map_err(io::Error::other),
            None => {
                self.write_buf.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Sends application bytes (escaped for telnet where needed), paced to the line rate.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.flush_protocol().await?;
        self.encode(data)?;
        while !self.write_buf.is_empty() {
            let n = write_with_timeout(&mut self.writer, &self.write_buf).await?;
            self.write_buf.advance(n);
            self.bytes_out += n as u64;
        }
        Ok(())
    }

    /// Sends application bytes like [`Connection::send`], but stops as soon as the caller
    /// sends anything (a keystroke to skip art). Returns `true` when it was interrupted; the
    /// input that interrupted is kept for [`Connection::recv`].
    pub async fn send_interruptible(&mut self, data: &[u8]) -> io::Result<bool> {
        self.flush_protocol().await?;
        if !self.read_buf.is_empty() || !self.pending.is_empty() {
            return Ok(true);
        }
        self.encode(data)?;
        let reader = &mut self.reader;
        let read_buf = &mut self.read_buf;
        read_buf.reserve(READ_CHUNK);
        let interrupt = reader.read_buf(read_buf);
        let out = std::mem::take(&mut self.write_buf);
        let written = tokio::time::timeout(
            WRITE_STALL_TIMEOUT,
            self.writer.write_paced(&out, interrupt),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the caller stopped reading"))??;
        self.bytes_out += written as u64;
        let interrupted = written < out.len();
        if interrupted && !self.read_buf.is_empty() {
            self.bytes_in += self.read_buf.len() as u64;
        }
        Ok(interrupted)
    }

    /// Drops input that was typed but not yet read (e.g. the key that skipped art), keeping
    /// telnet events such as a window-size change.
    pub fn discard_typed(&mut self) -> io::Result<()> {
        self.decode_buffered()?;
        self.pending
            .retain(|input| !matches!(input, Input::Data(_)));
        Ok(())
    }

    /// Bytes received and sent so far, telnet framing included.
    pub fn byte_counts(&self) -> (u64, u64) {
        (self.bytes_in, self.bytes_out)
    }

    /// Flushes and closes the stream.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.flush_protocol().await;
            let _ = self.writer.flush().await;
            let _ = self.writer.shutdown().await;
        })
        .await;
    }
}

async fn write_with_timeout<W: tokio::io::AsyncWrite + Unpin>(
    stream: &mut W,
    buf: &[u8],
) -> io::Result<usize> {
    match tokio::time::timeout(WRITE_STALL_TIMEOUT, stream.write(buf)).await {
        Ok(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the caller stopped reading",
        )),
    }
}
