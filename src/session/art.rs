//! Hand-drawn art files: `ansi/NAME.ans` (CP437 with ANSI sequences, SAUCE record stripped)
//! and `atascii/NAME.ata` (raw ATASCII). Plain-ASCII callers, and any screen without a file,
//! get the screen rendered from its description instead.
//!
//! Files are read at each use, so a sysop can redraw art without a restart.

use std::path::PathBuf;

use crate::terminal::sauce;
use crate::terminal::Charset;

/// Largest art file we send; anything bigger is a mistake, not art.
const MAX_ART_BYTES: u64 = 256 * 1024;

/// Where art lives.
#[derive(Debug, Clone)]
pub struct Art {
    pub ansi_dir: PathBuf,
    pub atascii_dir: PathBuf,
}

impl Art {
    /// The art for `name` in `charset`, ready to send, or `None` to use the rendered screen.
    pub fn load(&self, name: &str, charset: Charset) -> Option<Vec<u8>> {
        let path = match charset {
            Charset::Ansi => self.ansi_dir.join(format!("{name}.ans")),
            Charset::Atascii => self.atascii_dir.join(format!("{name}.ata")),
            Charset::Ascii => return None,
        };
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_ART_BYTES {
            tracing::warn!(path = %path.display(), "art file too large; using the built-in screen");
            return None;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read art file");
                return None;
            }
        };
        // CP437 art ends at its 0x1A; in ATASCII 0x1A is a graphics glyph, so only a SAUCE
        // trailer is removed there.
        Some(match charset {
            Charset::Ansi => sauce::strip(&bytes).0.to_vec(),
            _ => sauce::strip_record(&bytes).0.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::atascii_screen::AtasciiScreen;
    use crate::terminal::cp437;

    fn shipped() -> Art {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Art {
            ansi_dir: root.join("ansi"),
            atascii_dir: root.join("atascii"),
        }
    }

    #[test]
    fn shipped_ansi_welcome_fits_80_columns_without_its_sauce() {
        let bytes = shipped().load("welcome", Charset::Ansi).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"SAUCE00"), "SAUCE stripped");
        assert!(!bytes.contains(&0x1A));
        let mut vt = vt100::Parser::new(25, 80, 0);
        vt.process(cp437::to_unicode(&bytes).as_bytes());
        let screen = vt.screen().contents();
        assert!(screen.contains("W H E R E   G R E E D"), "{screen}");
        assert!(screen.lines().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn shipped_atascii_welcome_fits_40_columns() {
        let bytes = shipped().load("welcome", Charset::Atascii).unwrap();
        assert_eq!(bytes[0], 0x7D, "starts by clearing the screen");
        assert!(!bytes.contains(&b'\r') && !bytes.contains(&b'\n'));
        let mut screen = AtasciiScreen::new();
        screen.feed(&bytes);
        let text = screen.contents();
        assert!(text.contains("BBS: WHERE GREED IS GOOD"), "{text}");
        // The logo is drawn in inverse spaces.
        assert!((0..40).any(|c| screen.is_inverse(0, c)));
    }

    #[test]
    fn missing_files_and_ascii_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let art = Art {
            ansi_dir: dir.path().into(),
            atascii_dir: dir.path().into(),
        };
        assert!(art.load("welcome", Charset::Ansi).is_none());
        assert!(art.load("welcome", Charset::Ascii).is_none());
        std::fs::write(dir.path().join("welcome.ata"), [0x7D, b'H', b'I', 0x9B]).unwrap();
        assert_eq!(
            art.load("welcome", Charset::Atascii).unwrap(),
            vec![0x7D, b'H', b'I', 0x9B]
        );
    }
}
