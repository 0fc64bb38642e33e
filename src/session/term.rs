//! The session's view of a caller: keys in, rendered text out, in the caller's charset.
//!
//! [`Term`] joins a transport [`Connection`] with the terminal layer's key decoder, line
//! editor and output writer. Every wait for input has an idle time-out, watches for shutdown
//! and, once the caller holds a node, shows node messages live above the current prompt.

use std::collections::VecDeque;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::node::{Broadcast, Delivery, NodeGuard, NodeMessage};
use crate::terminal::detect::clamp_size;
use crate::terminal::keys::{Key, KeyDecoder};
use crate::terminal::line::{LineEditor, LineEvent, LineOptions};
use crate::terminal::out::{Out, Style};
use crate::terminal::screen::Screen;
use crate::terminal::{Caps, Charset};
use crate::transport::connection::{Connection, Input};

/// How long a lone ESC waits for the rest of an escape sequence before it counts as the Esc key.
const ESC_PAUSE: Duration = Duration::from_millis(150);

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The caller hung up (end of file, connection reset, carrier lost).
    Hangup,
    /// Nobody typed anything for the idle time-out.
    Idle,
    /// The BBS is shutting down.
    Shutdown,
    /// The caller logged off.
    Logoff,
    /// Too many failed logins.
    LoginFailed,
    /// No node was free.
    Busy,
    /// Something inside the BBS failed; the text is for the log, not the caller.
    Internal(String),
}

impl End {
    /// The reason written to the call log.
    pub fn as_str(&self) -> &'static str {
        match self {
            End::Hangup => "hangup",
            End::Idle => "idle",
            End::Shutdown => "shutdown",
            End::Logoff => "logoff",
            End::LoginFailed => "login-failed",
            End::Busy => "busy",
            End::Internal(_) => "internal-error",
        }
    }
}

/// One caller's terminal.
pub struct Term {
    conn: Connection,
    caps: Caps,
    keys: KeyDecoder,
    queue: VecDeque<Key>,
    idle: Duration,
    shutdown: CancellationToken,
    node: Option<NodeGuard>,
    /// Bytes that redraw the current prompt and what has been typed at it, so a live message
    /// can be shown above it.
    redraw: Vec<u8>,
    /// The window size the caller's telnet client last reported.
    naws: Option<(u16, u16)>,
    /// Terminal types reported over telnet.
    ttypes: Vec<String>,
    /// Time spent in doors so far, for the call log.
    door_time: Duration,
}

impl Term {
    /// A terminal over a connection, in `caps` until told otherwise.
    pub fn new(conn: Connection, caps: Caps, idle: Duration, shutdown: CancellationToken) -> Term {
        Term {
            conn,
            caps,
            keys: KeyDecoder::new(caps.charset),
            queue: VecDeque::new(),
            idle,
            shutdown,
            node: None,
            redraw: Vec::new(),
            naws: None,
            ttypes: Vec::new(),
            door_time: Duration::ZERO,
        }
    }

    /// Adds time spent in a door.
    pub fn add_door_time(&mut self, spent: Duration) {
        self.door_time += spent;
    }

    /// Time spent in doors during this call.
    pub fn door_time(&self) -> Duration {
        self.door_time
    }

    /// The caller's current capabilities.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Switches charset or size (after detection, or a settings change).
    pub fn set_caps(&mut self, caps: Caps) {
        if caps.charset != self.caps.charset {
            self.keys = KeyDecoder::new(caps.charset);
        }
        self.caps = caps;
        if let Some(node) = &self.node {
            node.set_caps(caps);
        }
    }

    /// The window size from telnet NAWS, if the client sent one.
    pub fn naws(&self) -> Option<(u16, u16)> {
        self.naws
    }

    /// Terminal types from telnet TTYPE.
    pub fn ttypes(&self) -> &[String] {
        &self.ttypes
    }

    /// Attaches the node this caller now holds: its messages are shown live from now on.
    pub fn attach_node(&mut self, node: NodeGuard) {
        node.set_caps(self.caps);
        self.node = Some(node);
    }

    /// The held node.
    pub fn node(&self) -> Option<&NodeGuard> {
        self.node.as_ref()
    }

    /// The underlying connection, for the lobby's raw reads.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// A fresh writer for the caller's charset.
    pub fn out(&self) -> Out {
        Out::new(&self.caps)
    }

    /// Sends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.conn.send(bytes).await.map_err(|_| End::Hangup)
    }

    /// Sends what a writer built.
    pub async fn send(&mut self, out: Out) -> Result<(), End> {
        let bytes = out.into_bytes();
        self.write(&bytes).await
    }

    /// Sends art; any key stops it (the rest is skipped and the key is not taken as input).
    pub async fn show_art(&mut self, art: &[u8]) -> Result<(), End> {
        let interrupted = self
            .conn
            .send_interruptible(art)
            .await
            .map_err(|_| End::Hangup)?;
        if interrupted {
            self.conn.discard_typed().map_err(|_| End::Hangup)?;
            // Whatever the art left (colours, inverse) is reset by the next screen's styles.
            let mut out = self.out();
            out.newline();
            self.send(out).await?;
        }
        Ok(())
    }

    /// Renders and sends a screen.
    pub async fn show(&mut self, screen: &Screen) -> Result<(), End> {
        let bytes = screen.render(&self.caps);
        self.write(&bytes).await
    }

    /// Text in a style, word-wrapped to the screen, followed by a new line.
    pub async fn say(&mut self, text: &str, style: Style) -> Result<(), End> {
        let bytes = Screen::continued()
            .paragraph_styled(text, style)
            .render(&self.caps);
        self.write(&bytes).await
    }

    /// Waits for any key, so what is on screen can be read before the next screen clears it.
    pub async fn pause(&mut self) -> Result<(), End> {
        self.hotkey("Press any key to continue").await?;
        let mut out = self.out();
        out.newline();
        self.send(out).await
    }

    /// Waits for the next raw input event with the idle time-out (used by the lobby, before
    /// a charset is known). `Ok(None)` means the short `wait` ran out.
    pub async fn input(&mut self, wait: Duration) -> Result<Option<Input>, End> {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(End::Shutdown),
            r = tokio::time::timeout(wait, self.conn.recv()) => match r {
                Err(_) => Ok(None),
                Ok(Ok(Some(input))) => {
                    self.note_input(&input);
                    Ok(Some(input))
                }
                Ok(Ok(None)) | Ok(Err(_)) => Err(End::Hangup),
            },
        }
    }

    fn note_input(&mut self, input: &Input) {
        match input {
            Input::WindowSize { cols, rows } => {
                if let Some((w, h)) = clamp_size(*cols, *rows) {
                    self.naws = Some((w, h));
                    if self.node.is_some() || self.caps.charset != Charset::Atascii {
                        let mut caps = self.caps;
                        caps.width = w;
                        caps.height = h;
                        self.set_caps(caps);
                    }
                }
            }
            Input::TerminalTypes(names) => self.ttypes = names.clone(),
            Input::Data(_) | Input::TelnetDetected => {}
        }
    }

    /// Drops keys typed ahead (e.g. the rest of the lobby's line).
    pub fn discard_typeahead(&mut self) {
        self.queue.clear();
    }

    /// The next key, waiting at most the idle time-out. Node messages that arrive meanwhile
    /// are shown above the prompt, which is then redrawn.
    pub async fn key(&mut self) -> Result<Key, End> {
        loop {
            if let Some(key) = self.queue.pop_front() {
                return Ok(key);
            }
            let pending_escape = self.keys.has_pending();
            let wait = if pending_escape { ESC_PAUSE } else { self.idle };
            let event = {
                let node = self.node.as_mut();
                tokio::select! {
                    biased;
                    _ = self.shutdown.cancelled() => Event::Shutdown,
                    Some(delivery) = next_delivery(node) => Event::Delivery(delivery),
                    r = tokio::time::timeout(wait, self.conn.recv()) => match r {
                        Err(_) => Event::Timeout,
                        Ok(Ok(Some(input))) => Event::Input(input),
                        Ok(Ok(None)) | Ok(Err(_)) => Event::Hangup,
                    },
                }
            };
            match event {
                Event::Shutdown => return Err(End::Shutdown),
                Event::Hangup => return Err(End::Hangup),
                Event::Timeout if pending_escape => {
                    let keys = self.keys.flush();
                    self.queue.extend(keys);
                }
                Event::Timeout => return Err(End::Idle),
                Event::Delivery(Delivery::Message(message)) => self.show_message(&message).await?,
                Event::Delivery(Delivery::Broadcast(b)) => self.show_broadcast(&b).await?,
                Event::Input(input) => {
                    self.note_input(&input);
                    if let Input::Data(data) = input {
                        let keys = self.keys.feed(&data);
                        self.queue.extend(keys);
                    }
                }
            }
        }
    }

    async fn show_message(&mut self, message: &NodeMessage) -> Result<(), End> {
        let mut out = self.out();
        out.newline();
        out.styled(
            &format!(
                "*** Message from {} (node {}):",
                message.from_user, message.from_node
            ),
            Style::Emphasis,
        );
        out.newline();
        out.text(&message.text);
        out.newline();
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.redraw);
        self.write(&bytes).await
    }

    async fn show_broadcast(&mut self, b: &Broadcast) -> Result<(), End> {
        let mut out = self.out();
        out.newline();
        let mut bytes = out.into_bytes();
        bytes.extend(
            Screen::continued()
                .paragraph_styled(&format!("*** {}: {}", b.from, b.text), Style::Emphasis)
                .render(&self.caps),
        );
        bytes.extend_from_slice(&self.redraw);
        self.write(&bytes).await
    }

    /// Forgets broadcasts that went out while the caller was in a door.
    pub fn skip_broadcasts(&mut self) {
        if let Some(node) = self.node.as_mut() {
            node.skip_broadcasts();
        }
    }

    /// Shows `prompt` and waits for one key (ignoring CPR replies and other non-keys).
    pub async fn hotkey(&mut self, prompt: &str) -> Result<Key, End> {
        let mut out = self.out();
        out.styled(prompt, Style::Prompt);
        out.text(" ");
        self.redraw = out.into_bytes();
        let bytes = self.redraw.clone();
        self.write(&bytes).await?;
        loop {
            let key = self.key().await?;
            if !matches!(key, Key::CursorPosition { .. }) {
                self.redraw.clear();
                return Ok(key);
            }
        }
    }

    /// Shows `prompt` and reads a line with the editor's rules; the line is echoed as typed
    /// (masked for passwords) and ends with a new line on screen.
    pub async fn line(&mut self, prompt: &str, options: LineOptions) -> Result<String, End> {
        let mut out = self.out();
        out.styled(prompt, Style::Prompt);
        out.text(" ");
        let prompt_bytes = out.into_bytes();
        self.write(&prompt_bytes).await?;
        let mut editor = LineEditor::new(options);
        loop {
            self.redraw = prompt_bytes.clone();
            self.redraw.extend(editor.redraw(&self.caps));
            let key = self.key().await?;
            match editor.on_key(key, &self.caps) {
                LineEvent::Echo(bytes) => self.write(&bytes).await?,
                LineEvent::Done(text) => {
                    self.redraw.clear();
                    let mut out = self.out();
                    out.newline();
                    self.send(out).await?;
                    return Ok(text);
                }
                LineEvent::Nothing => {}
            }
        }
    }

    /// Asks a yes/no question; RETURN takes the default.
    pub async fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, End> {
        let hint = if default { "(Y/n)" } else { "(y/N)" };
        loop {
            let key = self.hotkey(&format!("{prompt} {hint}")).await?;
            let answer = match key {
                Key::Enter => Some(default),
                Key::Char(c) if c.eq_ignore_ascii_case(&'y') => Some(true),
                Key::Char(c) if c.eq_ignore_ascii_case(&'n') => Some(false),
                _ => None,
            };
            if let Some(answer) = answer {
                let mut out = self.out();
                out.text(if answer { "Yes" } else { "No" });
                out.newline();
                self.send(out).await?;
                return Ok(answer);
            }
            let mut out = self.out();
            out.newline();
            self.send(out).await?;
        }
    }

    /// Closes the connection after flushing; returns the bytes received and sent.
    pub async fn close(self) -> (u64, u64) {
        let counts = self.conn.byte_counts();
        self.conn.close().await;
        counts
    }
}

enum Event {
    Shutdown,
    Hangup,
    Timeout,
    Delivery(Delivery),
    Input(Input),
}

/// The next node message or broadcast, or never when no node is held.
async fn next_delivery(node: Option<&mut NodeGuard>) -> Option<Delivery> {
    match node {
        Some(node) => node.recv().await,
        None => std::future::pending().await,
    }
}
