//! Modem-control lines (DCD, DTR, RTS, RI, DSR) behind a trait, and what a port must be.
//!
//! Owns [`ModemLines`] (implemented for tokio-serial's `SerialStream`, mocked with mockall in
//! tests), [`SerialIo`] (a byte stream with modem lines: what the driver runs on), [`WithLines`]
//! (a stream paired with separate line control, e.g. a PTY with a mock) and [`NoLines`] (for
//! ports without modem-control lines). It must not interpret the lines; that is the machines'
//! job in `crate::modem`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The RS-232 modem-control lines of a port, as the DTE (the computer) sees them.
#[cfg_attr(test, mockall::automock)]
pub trait ModemLines: Send {
    /// Data Carrier Detect: high while a modem has a carrier (or, on a null-modem cable, while
    /// the other computer's DTR is high).
    fn carrier_detect(&mut self) -> io::Result<bool>;
    /// Sets Data Terminal Ready. Dropping it makes a modem with `&D2` hang up; on a null-modem
    /// cable it is the other computer's DCD.
    fn set_dtr(&mut self, level: bool) -> io::Result<()>;
    /// Sets Request To Send.
    fn set_rts(&mut self, level: bool) -> io::Result<()>;
    /// Ring Indicator.
    fn ring_indicator(&mut self) -> io::Result<bool>;
    /// Data Set Ready.
    fn data_set_ready(&mut self) -> io::Result<bool>;
}

impl ModemLines for tokio_serial::SerialStream {
    fn carrier_detect(&mut self) -> io::Result<bool> {
        tokio_serial::SerialPort::read_carrier_detect(self).map_err(io::Error::from)
    }
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        tokio_serial::SerialPort::write_data_terminal_ready(self, level).map_err(io::Error::from)
    }
    fn set_rts(&mut self, level: bool) -> io::Result<()> {
        tokio_serial::SerialPort::write_request_to_send(self, level).map_err(io::Error::from)
    }
    fn ring_indicator(&mut self) -> io::Result<bool> {
        tokio_serial::SerialPort::read_ring_indicator(self).map_err(io::Error::from)
    }
    fn data_set_ready(&mut self) -> io::Result<bool> {
        tokio_serial::SerialPort::read_data_set_ready(self).map_err(io::Error::from)
    }
}

/// A serial port as the driver uses it: bytes both ways plus modem-control lines.
pub trait SerialIo: AsyncRead + AsyncWrite + ModemLines + Unpin {}
impl<T: AsyncRead + AsyncWrite + ModemLines + Unpin> SerialIo for T {}

/// Line control for ports that have none (PTYs, three-wire cables): outputs are ignored and
/// DCD always reads high.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLines;

impl ModemLines for NoLines {
    fn carrier_detect(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn set_dtr(&mut self, _level: bool) -> io::Result<()> {
        Ok(())
    }
    fn set_rts(&mut self, _level: bool) -> io::Result<()> {
        Ok(())
    }
    fn ring_indicator(&mut self) -> io::Result<bool> {
        Ok(false)
    }
    fn data_set_ready(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

/// A byte stream paired with separate modem-line control.
#[derive(Debug)]
pub struct WithLines<S, L> {
    pub stream: S,
    pub lines: L,
}

impl<S, L> WithLines<S, L> {
    pub fn new(stream: S, lines: L) -> Self {
        WithLines { stream, lines }
    }
}

impl<S: AsyncRead + Unpin, L: Unpin> AsyncRead for WithLines<S, L> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, L: Unpin> AsyncWrite for WithLines<S, L> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl<S: Send, L: ModemLines> ModemLines for WithLines<S, L> {
    fn carrier_detect(&mut self) -> io::Result<bool> {
        self.lines.carrier_detect()
    }
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        self.lines.set_dtr(level)
    }
    fn set_rts(&mut self, level: bool) -> io::Result<()> {
        self.lines.set_rts(level)
    }
    fn ring_indicator(&mut self) -> io::Result<bool> {
        self.lines.ring_indicator()
    }
    fn data_set_ready(&mut self) -> io::Result<bool> {
        self.lines.data_set_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_lines_delegates_to_the_mock() {
        let mut lines = MockModemLines::new();
        lines
            .expect_carrier_detect()
            .times(1)
            .returning(|| Ok(false));
        lines
            .expect_set_dtr()
            .withf(|l| !*l)
            .times(1)
            .returning(|_| Ok(()));
        let mut port = WithLines::new(tokio::io::empty(), lines);
        assert!(!port.carrier_detect().unwrap());
        port.set_dtr(false).unwrap();
        assert!(NoLines.carrier_detect().unwrap());
    }
}
