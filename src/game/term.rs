//! The door's view of its caller: keys in, screens out, with the call's limits enforced.
//!
//! [`GameTerm`] joins a transport [`Connection`] with the terminal layer like the BBS's own
//! session terminal does, but answers to the door's rules: every wait ends at the call's
//! deadline (time left from the dropfile), after the idle time-out, on end of file or a write
//! error (carrier lost), or when SIGHUP/SIGTERM cancels the stop token. It warns two minutes
//! and one minute before the deadline above the current prompt. While the charset is only
//! guessed (a dropfile that says ASCII), an ATASCII line end (0x9B) switches it to ATASCII.
//! Flashes (news headlines, already worded by the game) arrive on a channel: a wait hands
//! them to its caller (the board draws them in place), a prompt shows them above itself and
//! redraws. It must not know the game's screens; it does not depend on `session` or `node`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::exchange::{Event, Subscription};
use crate::terminal::keys::{Key, KeyDecoder};
use crate::terminal::line::{LineEditor, LineEvent, LineOptions};
use crate::terminal::out::{Out, Style};
use crate::terminal::screen::Screen;
use crate::terminal::{atascii, Caps, Charset};
use crate::transport::connection::{Connection, Input};

/// How long a lone ESC waits for the rest of an escape sequence.
const ESC_PAUSE: Duration = Duration::from_millis(150);

/// Why the door stops talking to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// End of file or a write error: the carrier is gone.
    Hangup,
    /// The call's time ran out.
    TimeUp,
    /// Nobody typed anything for the idle time-out.
    Idle,
    /// SIGHUP or SIGTERM.
    Signal,
    /// The player said goodbye.
    Quit,
}

/// What ended a wait.
#[derive(Debug)]
pub enum Wake {
    Key(Key),
    /// An exchange event from the subscription being watched.
    Event(Event),
    /// The requested tick time arrived.
    Tick,
    /// A flash (a news headline) to show now.
    Flash(String),
}

/// One caller's terminal, for the door.
pub struct GameTerm {
    conn: Connection,
    caps: Caps,
    keys: KeyDecoder,
    queue: VecDeque<Key>,
    deadline: Instant,
    idle: Duration,
    warnings: Vec<Duration>,
    stop: CancellationToken,
    detect_atascii: bool,
    switched: bool,
    warned: bool,
    last_input: Instant,
    /// Bytes that redraw the current prompt and what has been typed at it.
    redraw: Vec<u8>,
    /// Live flashes to show, if the game follows any.
    flashes: Option<mpsc::Receiver<String>>,
    /// The last flash shown above a prompt.
    flashed: Option<String>,
}

impl GameTerm {
    /// A terminal over `conn` in `caps` until `deadline`.
    pub fn new(
        conn: Connection,
        caps: Caps,
        deadline: Instant,
        idle: Duration,
        stop: CancellationToken,
        detect_atascii: bool,
    ) -> GameTerm {
        GameTerm {
            conn,
            caps,
            keys: KeyDecoder::new(caps.charset),
            queue: VecDeque::new(),
            deadline,
            idle,
            warnings: vec![Duration::from_secs(120), Duration::from_secs(60)],
            stop,
            detect_atascii,
            switched: false,
            warned: false,
            last_input: Instant::now(),
            redraw: Vec::new(),
            flashes: None,
            flashed: None,
        }
    }

    /// The last flash a prompt showed since the last call, if any.
    pub fn take_flashed(&mut self) -> Option<String> {
        self.flashed.take()
    }

    /// Shows the texts sent on `flashes` live from now on.
    pub fn set_flashes(&mut self, flashes: mpsc::Receiver<String>) {
        self.flashes = Some(flashes);
    }

    /// The caller's capabilities.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Whether the charset was switched to ATASCII since the last call (the screen must be
    /// drawn again).
    pub fn take_switched(&mut self) -> bool {
        std::mem::take(&mut self.switched)
    }

    /// Whether a time warning was printed since the last call (the board must be drawn
    /// again, as the warning scrolled it).
    pub fn take_warned(&mut self) -> bool {
        std::mem::take(&mut self.warned)
    }

    /// Whole minutes left in the call.
    pub fn minutes_left(&self) -> u32 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        u32::try_from(left.as_secs().div_ceil(60)).unwrap_or(u32::MAX)
    }

    /// Gives the connection back when the call ends.
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// A writer for the caller's charset.
    pub fn out(&self) -> Out {
        Out::new(&self.caps)
    }

    /// Sends bytes; a failed write is a lost carrier.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        self.conn.send(bytes).await.map_err(|_| Stop::Hangup)
    }

    /// Renders and sends a screen.
    pub async fn show(&mut self, screen: &Screen) -> Result<(), Stop> {
        let bytes = screen.render(&self.caps);
        self.write(&bytes).await
    }

    /// A word-wrapped line of text in a style.
    pub async fn say(&mut self, text: &str, style: Style) -> Result<(), Stop> {
        let bytes = Screen::continued()
            .paragraph_styled(text, style)
            .render(&self.caps);
        self.write(&bytes).await
    }

    /// Remembers what redraws the prompt after a warning is shown above it.
    pub fn set_redraw(&mut self, bytes: Vec<u8>) {
        self.redraw = bytes;
    }

    /// Waits for a key, an event from `sub`, or the `tick` time, whichever comes first.
    pub async fn wait(
        &mut self,
        mut sub: Option<&mut Subscription>,
        tick: Option<Instant>,
    ) -> Result<Wake, Stop> {
        loop {
            if let Some(key) = self.queue.pop_front() {
                return Ok(Wake::Key(key));
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(Stop::TimeUp);
            }
            let left = self.deadline - now;
            if let Some(&w) = self.warnings.first() {
                if left <= w {
                    self.warnings.remove(0);
                    self.warn(left).await?;
                    continue;
                }
            }
            let pending_escape = self.keys.has_pending();
            let idle_left = (self.last_input + self.idle).saturating_duration_since(now);
            let mut wait = if pending_escape { ESC_PAUSE } else { idle_left };
            wait = wait.min(left);
            if let Some(&w) = self.warnings.first() {
                wait = wait.min(left.saturating_sub(w));
            }
            let sleep_until = match tick {
                Some(t) => (now + wait).min(t),
                None => now + wait,
            };
            let event = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Err(Stop::Signal),
                r = self.conn.recv() => match r {
                    Ok(Some(input)) => Some(input),
                    Ok(None) | Err(_) => return Err(Stop::Hangup),
                },
                flash = next_flash(self.flashes.as_mut()) => match flash {
                    Some(text) => return Ok(Wake::Flash(text)),
                    None => {
                        self.flashes = None;
                        None
                    }
                },
                ev = next_event(sub.as_deref_mut()) => match ev {
                    Some(Ok(ev)) => return Ok(Wake::Event(ev)),
                    // A follower that failed is treated as silent; the board still works.
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "exchange event follower stopped");
                        sub = None;
                        None
                    }
                    None => {
                        sub = None;
                        None
                    }
                },
                _ = tokio::time::sleep_until(sleep_until) => {
                    if tick.is_some_and(|t| Instant::now() >= t) {
                        return Ok(Wake::Tick);
                    }
                    if pending_escape {
                        let keys = self.keys.flush();
                        self.queue.extend(keys);
                    } else if Instant::now() >= self.last_input + self.idle {
                        return Err(Stop::Idle);
                    }
                    None
                }
            };
            if let Some(Input::Data(data)) = event {
                self.last_input = Instant::now();
                self.feed(&data);
            }
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.detect_atascii {
            if data.contains(&atascii::EOL) {
                let (width, height) = Charset::Atascii.default_size();
                self.caps = Caps {
                    width,
                    height,
                    ..Caps::for_charset(Charset::Atascii)
                };
                self.keys = KeyDecoder::new(Charset::Atascii);
                self.switched = true;
                self.detect_atascii = false;
            } else if data.iter().any(|&b| b == b'\r' || b == b'\n') {
                self.detect_atascii = false;
            }
        }
        let keys = self.keys.feed(data);
        self.queue.extend(keys);
    }

    async fn warn(&mut self, left: Duration) -> Result<(), Stop> {
        self.warned = true;
        let minutes = left.as_secs().div_ceil(60).max(1);
        self.above_prompt(
            &format!("*** {minutes} minute(s) left: the closing bell is near. ***"),
            Style::Warning,
        )
        .await
    }

    /// Shows `text` on its own lines below what is on the screen, then the prompt again with
    /// what has been typed at it.
    async fn above_prompt(&mut self, text: &str, style: Style) -> Result<(), Stop> {
        let mut out = self.out();
        out.newline();
        let mut bytes = out.into_bytes();
        bytes.extend(
            Screen::continued()
                .paragraph_styled(text, style)
                .render(&self.caps),
        );
        bytes.extend_from_slice(&self.redraw);
        self.write(&bytes).await
    }

    /// The next key (no events, no ticks); flashes are shown above the prompt meanwhile.
    pub async fn key(&mut self) -> Result<Key, Stop> {
        loop {
            match self.wait(None, None).await? {
                Wake::Key(Key::CursorPosition { .. }) => continue,
                Wake::Key(k) => return Ok(k),
                Wake::Flash(text) => {
                    self.above_prompt(&text, Style::Emphasis).await?;
                    self.flashed = Some(text);
                }
                Wake::Event(_) | Wake::Tick => continue,
            }
        }
    }

    /// Shows `prompt` and waits for one key.
    pub async fn hotkey(&mut self, prompt: &str) -> Result<Key, Stop> {
        let mut out = self.out();
        out.styled(prompt, Style::Prompt);
        out.text(" ");
        let bytes = out.into_bytes();
        self.redraw = bytes.clone();
        self.write(&bytes).await?;
        let key = self.key().await;
        self.redraw.clear();
        key
    }

    /// Shows `prompt` and reads a line. `None` when the player pressed ESC (cancel).
    pub async fn line(
        &mut self,
        prompt: &str,
        options: LineOptions,
    ) -> Result<Option<String>, Stop> {
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
            if key == Key::Escape {
                self.redraw.clear();
                let mut out = self.out();
                out.newline();
                self.write(&out.into_bytes()).await?;
                return Ok(None);
            }
            match editor.on_key(key, &self.caps) {
                LineEvent::Echo(bytes) => self.write(&bytes).await?,
                LineEvent::Done(text) => {
                    self.redraw.clear();
                    let mut out = self.out();
                    out.newline();
                    self.write(&out.into_bytes()).await?;
                    return Ok(Some(text));
                }
                LineEvent::Nothing => {}
            }
        }
    }

    /// Asks a yes/no question; RETURN takes the default, ESC says no.
    pub async fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, Stop> {
        let hint = if default { "(Y/n)" } else { "(y/N)" };
        loop {
            let key = self.hotkey(&format!("{prompt} {hint}")).await?;
            let answer = match key {
                Key::Enter => Some(default),
                Key::Escape => Some(false),
                Key::Char(c) if c.eq_ignore_ascii_case(&'y') => Some(true),
                Key::Char(c) if c.eq_ignore_ascii_case(&'n') => Some(false),
                _ => None,
            };
            let mut out = self.out();
            match answer {
                Some(a) => {
                    out.text(if a { "Yes" } else { "No" }).newline();
                    self.write(&out.into_bytes()).await?;
                    return Ok(a);
                }
                None => {
                    out.newline();
                    out.styled("Please answer Y or N.", Style::Error).newline();
                    self.write(&out.into_bytes()).await?;
                }
            }
        }
    }

    /// Waits for any key so the screen can be read.
    pub async fn pause(&mut self) -> Result<Key, Stop> {
        self.hotkey("Press any key").await
    }
}

/// The next flash, or never without a channel.
async fn next_flash(flashes: Option<&mut mpsc::Receiver<String>>) -> Option<String> {
    match flashes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next event of a subscription, or never without one.
async fn next_event(
    sub: Option<&mut Subscription>,
) -> Option<Result<Event, crate::exchange::ExchangeError>> {
    match sub {
        Some(sub) => sub.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn term(deadline: Duration, idle: Duration) -> (GameTerm, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(4096);
        let conn = Connection::new(Box::new(ours), crate::transport::TelnetMode::Never, None);
        let t = GameTerm::new(
            conn,
            Caps::for_charset(Charset::Ascii),
            Instant::now() + deadline,
            idle,
            CancellationToken::new(),
            true,
        );
        (t, theirs)
    }

    #[tokio::test(start_paused = true)]
    async fn time_runs_out_after_two_warnings() {
        let (mut t, mut caller) = term(Duration::from_secs(150), Duration::from_secs(600));
        assert_eq!(t.key().await, Err(Stop::TimeUp));
        drop(t);
        let mut shown = String::new();
        caller.read_to_string(&mut shown).await.unwrap();
        assert!(shown.contains("2 minute(s) left"), "{shown}");
        assert!(shown.contains("1 minute(s) left"), "{shown}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_hangup_signal_and_atari_return() {
        let (mut t, _caller) = term(Duration::from_secs(3600), Duration::from_secs(300));
        assert_eq!(t.key().await, Err(Stop::Idle));

        let (mut t, caller) = term(Duration::from_secs(3600), Duration::from_secs(300));
        drop(caller);
        assert_eq!(t.key().await, Err(Stop::Hangup));

        let (mut t, _caller) = term(Duration::from_secs(3600), Duration::from_secs(300));
        t.stop.cancel();
        assert_eq!(t.key().await, Err(Stop::Signal));

        let (mut t, mut caller) = term(Duration::from_secs(3600), Duration::from_secs(300));
        caller.write_all(b"\x9b").await.unwrap();
        assert_eq!(t.key().await, Ok(Key::Enter));
        assert!(t.take_switched());
        assert_eq!(t.caps().charset, Charset::Atascii);
    }
}
