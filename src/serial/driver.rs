//! The async driver of one serial line: the thin shell around a pure line machine.
//!
//! Owns the per-line task: open the port (retrying with capped exponential back-off when it
//! cannot be opened or vanishes), feed the line machine (`crate::modem`) with port bytes, timer
//! deadlines, polled DCD levels and session closes, and carry out its actions: write to the
//! port, set DTR, create the `tokio::io::duplex` pair of a call and hand one end to the node
//! manager as an [`Incoming`], pump bytes between the port and the other end, and drop that end
//! when the call ends (the session reads end of file). It must not parse AT commands or result
//! codes itself, and it never panics on port errors: they end the call and reopen the port.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::config::{LineMode, SerialPortConfig};
use super::lines::SerialIo;
use super::registry::LineRegistry;
use super::SerialError;
use crate::modem::answer::AnswerMachine;
use crate::modem::direct::DirectLine;
use crate::modem::emulator::VirtualModem;
use crate::modem::{Action, Event, LineMachine, LineState};
use crate::transport::{Incoming, TelnetMode};

/// How often DCD is polled on lines that watch it.
const DCD_POLL: Duration = Duration::from_millis(200);
/// Buffer of each call's duplex pipe.
const PIPE_BYTES: usize = 4096;
/// Most bytes queued toward the port before session output is no longer read.
const MAX_TO_PORT: usize = 4096;
/// How long queued output may take to reach the port after the session closed before the call
/// is ended anyway (a port stuck in flow control).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long to wait before waking a machine again for a deadline it did not move.
const TIMER_RETRY: Duration = Duration::from_millis(50);
/// How long a call may go on after shutdown was requested, so the session can say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Opens serial ports. The server uses [`TokioSerialOpener`]; tests hand out PTYs.
pub trait PortOpener: Send + Sync + 'static {
    /// Opens the port described by `config`.
    fn open(&self, config: &SerialPortConfig) -> Result<Box<dyn SerialIo + Send>, SerialError>;
}

/// Opens real devices with tokio-serial.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSerialOpener;

impl PortOpener for TokioSerialOpener {
    fn open(&self, config: &SerialPortConfig) -> Result<Box<dyn SerialIo + Send>, SerialError> {
        use super::config::{FlowControl, Parity};
        let data_bits = match config.data_bits {
            5 => tokio_serial::DataBits::Five,
            6 => tokio_serial::DataBits::Six,
            7 => tokio_serial::DataBits::Seven,
            _ => tokio_serial::DataBits::Eight,
        };
        let parity = match config.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Even => tokio_serial::Parity::Even,
        };
        let stop_bits = if config.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        };
        let flow = match config.flow_control {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::RtsCts => tokio_serial::FlowControl::Hardware,
            FlowControl::XonXoff => tokio_serial::FlowControl::Software,
        };
        let device = config.device.to_string_lossy().into_owned();
        let builder = tokio_serial::new(device, config.baud)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(flow);
        let port = tokio_serial::SerialStream::open(&builder).map_err(|e| SerialError::Open {
            device: config.device.clone(),
            source: io::Error::from(e),
        })?;
        Ok(Box::new(port))
    }
}

/// Everything a line task needs besides its configuration.
pub(crate) struct LineContext {
    pub opener: Arc<dyn PortOpener>,
    pub intake: mpsc::Sender<Incoming>,
    pub shutdown: CancellationToken,
    pub registry: LineRegistry,
}

/// Runs one line until shutdown: open, drive, and reopen with back-off after failures.
pub(crate) async fn run_line(config: SerialPortConfig, ctx: LineContext) {
    let name = config.display_name();
    let span = tracing::info_span!(
        "line",
        line = %name,
        device = %config.device.display(),
        mode = config.mode.as_str()
    );
    async move {
        ctx.registry.register(&config);
        let (min, max) = config.retry_bounds();
        let mut backoff = min;
        while !ctx.shutdown.is_cancelled() {
            ctx.registry.set_state(&name, LineState::Opening);
            match ctx.opener.open(&config) {
                Ok(port) => {
                    info!("serial port open");
                    let opened = Instant::now();
                    match drive(&config, &name, port, &ctx).await {
                        Ok(()) => break,
                        Err(e) => {
                            warn!(error = %e, "serial line failed");
                            ctx.registry
                                .set_state(&name, LineState::Error { msg: e.to_string() });
                        }
                    }
                    if opened.elapsed() >= max {
                        backoff = min;
                    }
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "cannot open serial port");
                    ctx.registry
                        .set_state(&name, LineState::Error { msg: e.to_string() });
                }
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            ctx.registry.set_state(&name, LineState::Retrying);
            backoff = (backoff * 2).min(max);
        }
        debug!("line stopped");
    }
    .instrument(span)
    .await
}

/// The pure machine for a line's mode.
fn machine_for(config: &SerialPortConfig) -> Box<dyn LineMachine> {
    match config.mode {
        LineMode::Modem => Box::new(AnswerMachine::new(config.answer_config())),
        LineMode::VirtualModem => Box::new(VirtualModem::new(config.emulator_config())),
        LineMode::Direct => Box::new(DirectLine::new(config.baud, config.watches_carrier())),
    }
}

/// What the port did.
enum PortIo {
    Wrote(usize),
    Read(usize),
    Failed(io::Error),
}

/// Waits for the port to take queued bytes or to deliver new ones.
async fn port_io(
    port: &mut (dyn SerialIo + Send),
    to_port: &[u8],
    can_read: bool,
    buf: &mut [u8],
) -> PortIo {
    poll_fn(|cx| {
        if !to_port.is_empty() {
            match Pin::new(&mut *port).poll_write(cx, to_port) {
                Poll::Ready(Ok(n)) => return Poll::Ready(PortIo::Wrote(n)),
                Poll::Ready(Err(e)) => return Poll::Ready(PortIo::Failed(e)),
                Poll::Pending => {}
            }
        }
        if can_read {
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut *port).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => return Poll::Ready(PortIo::Read(rb.filled().len())),
                Poll::Ready(Err(e)) => return Poll::Ready(PortIo::Failed(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads session output, or waits forever when there is no call.
async fn session_read(
    reader: Option<&mut ReadHalf<DuplexStream>>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match reader {
        Some(r) => tokio::io::AsyncReadExt::read(r, buf).await,
        None => std::future::pending().await,
    }
}

/// Writes line input to the session, or waits forever when there is no call.
async fn session_write(
    writer: Option<&mut WriteHalf<DuplexStream>>,
    data: &[u8],
) -> io::Result<usize> {
    match writer {
        Some(w) => w.write(data).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The state of one opened port.
struct Pump<'a> {
    config: &'a SerialPortConfig,
    name: &'a str,
    ctx: &'a LineContext,
    to_port: Vec<u8>,
    to_session: Vec<u8>,
    reader: Option<ReadHalf<DuplexStream>>,
    writer: Option<WriteHalf<DuplexStream>>,
    /// While the virtual modem holds the call, session output is kept here, not sent.
    held: bool,
    held_output: Vec<u8>,
    /// When the session closed its end; the event waits until queued output reached the port
    /// (or [`DRAIN_LIMIT`] passed, for a port stuck in flow control).
    session_closed: Option<Instant>,
    dtr_warned: bool,
}

impl Pump<'_> {
    fn in_call(&self) -> bool {
        self.reader.is_some()
    }

    fn end_call(&mut self) {
        self.reader = None;
        self.writer = None;
        self.to_session.clear();
        self.held = false;
        self.held_output.clear();
        self.session_closed = None;
    }

    fn close_session(&mut self) {
        self.session_closed.get_or_insert_with(Instant::now);
    }

    async fn perform(&mut self, port: &mut (dyn SerialIo + Send), actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(bytes) => self.to_port.extend_from_slice(&bytes),
                Action::SetDtr(level) => {
                    if let Err(e) = port.set_dtr(level) {
                        if !self.dtr_warned {
                            debug!(error = %e, "cannot set DTR on this port");
                            self.dtr_warned = true;
                        }
                    }
                }
                Action::Connect { bps, caller_id } => self.connect(bps, caller_id).await,
                Action::Deliver(bytes) => {
                    if self.writer.is_some() {
                        self.to_session.extend_from_slice(&bytes);
                    }
                }
                Action::Hold => self.held = true,
                Action::Resume => {
                    self.held = false;
                    self.to_port.append(&mut self.held_output);
                }
                Action::EndCall => {
                    if self.in_call() {
                        info!("call ended");
                    }
                    self.end_call();
                }
                Action::Status(state) => {
                    match &state {
                        LineState::Error { msg } => warn!(%msg, "line error"),
                        s => debug!(state = %s.label(), "line state"),
                    }
                    self.ctx.registry.set_state(self.name, state);
                }
            }
        }
    }

    async fn connect(&mut self, bps: u32, caller_id: Option<String>) {
        self.end_call();
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let (reader, writer) = tokio::io::split(ours);
        let peer = caller_id
            .clone()
            .unwrap_or_else(|| self.config.device.display().to_string());
        let incoming = Incoming {
            stream: Box::new(theirs),
            kind: self.config.mode.transport_kind(),
            peer,
            ip: None,
            telnet: TelnetMode::Never,
            charset: self.config.charset,
            line_bps: self.config.pace.then_some(bps),
            caller_id: caller_id.clone(),
        };
        info!(
            bps,
            caller_id = caller_id.as_deref().unwrap_or(""),
            "call connected"
        );
        self.ctx.registry.set_caller_id(self.name, caller_id);
        if self.ctx.intake.send(incoming).await.is_err() {
            // The node manager is gone (shutting down): the call ends at once, which the
            // machine learns as a session close on the next turn.
            warn!("no node manager to take the call");
            self.close_session();
            return;
        }
        self.reader = Some(reader);
        self.writer = Some(writer);
    }
}

/// Drives one opened port until shutdown (`Ok`) or a port failure (`Err`).
async fn drive(
    config: &SerialPortConfig,
    name: &str,
    mut port: Box<dyn SerialIo + Send>,
    ctx: &LineContext,
) -> Result<(), SerialError> {
    let port_err = |source: io::Error| SerialError::Io {
        device: config.device.clone(),
        source,
    };
    let mut machine = machine_for(config);
    let watch_dcd = config.watches_carrier();
    let mut pump = Pump {
        config,
        name,
        ctx,
        to_port: Vec::new(),
        to_session: Vec::new(),
        reader: None,
        writer: None,
        held: false,
        held_output: Vec::new(),
        session_closed: None,
        dtr_warned: false,
    };
    let mut port_buf = vec![0u8; 1024];
    let mut session_buf = vec![0u8; 1024];
    let mut dcd_tick = tokio::time::interval(DCD_POLL);
    dcd_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown_at: Option<Instant> = None;
    let mut last_timer: Option<std::time::Instant> = None;

    let start = machine.on_event(Event::Start, Instant::now().into_std());
    pump.perform(&mut *port, start).await;

    let result = loop {
        let drained = pump
            .session_closed
            .map(|at| pump.to_port.is_empty() || Instant::now() >= at + DRAIN_LIMIT);
        if drained == Some(true) {
            pump.to_port.clear();
            pump.end_call();
            let actions = machine.on_event(Event::SessionClosed, Instant::now().into_std());
            pump.perform(&mut *port, actions).await;
        }
        if let Some(at) = shutdown_at {
            if !pump.in_call() || Instant::now() >= at {
                break Ok(());
            }
        }
        // A machine that leaves the deadline it was just woken for in place would make this
        // loop spin; wake it again a little later instead.
        let deadline = machine.deadline().map(|d| {
            if Some(d) == last_timer {
                Instant::from_std(d) + TIMER_RETRY
            } else {
                Instant::from_std(d)
            }
        });
        let can_read_port = pump.to_session.is_empty();
        let queued = if pump.held {
            pump.held_output.len()
        } else {
            pump.to_port.len()
        };
        let read_session = pump.in_call() && pump.session_closed.is_none() && queued < MAX_TO_PORT;
        let drain_deadline = pump.session_closed.map(|at| at + DRAIN_LIMIT);
        let write_session = !pump.to_session.is_empty();
        let now_event: Option<Vec<Action>> = tokio::select! {
            _ = ctx.shutdown.cancelled(), if shutdown_at.is_none() => {
                shutdown_at = Some(Instant::now() + SHUTDOWN_GRACE);
                None
            }
            _ = sleep_until_opt(shutdown_at), if shutdown_at.is_some() => None,
            _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => None,
            io = port_io(&mut *port, &pump.to_port, can_read_port, &mut port_buf) => match io {
                PortIo::Wrote(0) => break Err(port_err(io::ErrorKind::WriteZero.into())),
                PortIo::Wrote(n) => {
                    pump.to_port.drain(..n);
                    None
                }
                PortIo::Read(0) => break Err(port_err(io::ErrorKind::UnexpectedEof.into())),
                PortIo::Read(n) => Some(machine.on_event(
                    Event::Data(&port_buf[..n]),
                    Instant::now().into_std(),
                )),
                PortIo::Failed(e) => break Err(port_err(e)),
            },
            r = session_read(pump.reader.as_mut(), &mut session_buf), if read_session => {
                match r {
                    Ok(n) if n > 0 && pump.held => {
                        pump.held_output.extend_from_slice(&session_buf[..n])
                    }
                    Ok(n) if n > 0 => pump.to_port.extend_from_slice(&session_buf[..n]),
                    _ => pump.close_session(),
                }
                None
            }
            r = session_write(pump.writer.as_mut(), &pump.to_session), if write_session => {
                match r {
                    Ok(n) if n > 0 => {
                        pump.to_session.drain(..n);
                    }
                    _ => {
                        pump.to_session.clear();
                        pump.close_session();
                    }
                }
                None
            }
            _ = sleep_until_opt(deadline), if deadline.is_some() => {
                // A fresh DCD level first, so a hang-up sees whether the carrier fell.
                let now = Instant::now().into_std();
                last_timer = machine.deadline();
                let mut actions = Vec::new();
                if watch_dcd {
                    match port.carrier_detect() {
                        Ok(level) => actions.extend(machine.on_event(Event::Carrier(level), now)),
                        Err(e) => break Err(port_err(e)),
                    }
                }
                actions.extend(machine.on_event(Event::Timer, now));
                Some(actions)
            }
            _ = dcd_tick.tick(), if watch_dcd => match port.carrier_detect() {
                Ok(level) => Some(machine.on_event(Event::Carrier(level), Instant::now().into_std())),
                Err(e) => break Err(port_err(e)),
            },
        };
        if let Some(actions) = now_event {
            pump.perform(&mut *port, actions).await;
        }
    };

    // Leaving the port: end any call, say NO CARRIER to a virtual-modem caller, drop DTR so a
    // modem stops answering, and give queued bytes a moment to reach the port.
    if pump.in_call() {
        let actions = machine.on_event(Event::SessionClosed, Instant::now().into_std());
        pump.perform(&mut *port, actions).await;
    }
    pump.end_call();
    if result.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), port.write_all(&pump.to_port)).await;
        if let Err(e) = port.set_dtr(false) {
            debug!(error = %e, "cannot drop DTR at shutdown");
        }
        ctx.registry.set_state(name, LineState::Idle);
    }
    result
}
