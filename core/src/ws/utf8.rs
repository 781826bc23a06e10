//! Incremental UTF-8 validation across fragments (RFC 6455 §8.1): a text message fails as soon
//! as the bytes so far cannot begin any valid UTF-8 text, not only at its end.

/// Validates UTF-8 fed in pieces split anywhere, even inside a character.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// The start of a character whose remaining bytes have not arrived (at most 3 bytes).
    pending: [u8; 4],
    pending_len: usize,
}

/// The bytes fed so far are not the prefix of any valid UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next piece; fails as soon as the text can no longer be valid.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), InvalidUtf8> {
        while self.pending_len > 0 {
            let Some((&byte, rest)) = chunk.split_first() else {
                return Ok(());
            };
            chunk = rest;
            let slot = self.pending.get_mut(self.pending_len).ok_or(InvalidUtf8)?;
            *slot = byte;
            self.pending_len += 1;
            let held = self.pending.get(..self.pending_len).ok_or(InvalidUtf8)?;
            match std::str::from_utf8(held) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = chunk.get(e.valid_up_to()..).unwrap_or_default();
                let slot = self.pending.get_mut(..tail.len()).ok_or(InvalidUtf8)?;
                slot.copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
        }
    }

    /// Whether the text fed so far ends on a character boundary (a complete message).
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Forgets everything, ready for the next message.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split_everywhere(bytes: &[u8]) -> (bool, bool) {
        let whole = std::str::from_utf8(bytes).is_ok();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut v = Utf8Validator::default();
                let ok = v.feed(&bytes[..a]).is_ok()
                    && v.feed(&bytes[a..b]).is_ok()
                    && v.feed(&bytes[b..]).is_ok()
                    && v.is_complete();
                assert_eq!(ok, whole, "{bytes:?} split at {a},{b}");
            }
        }
        let mut v = Utf8Validator::default();
        let fail_fast = bytes
            .iter()
            .all(|b| v.feed(std::slice::from_ref(b)).is_ok());
        (whole, fail_fast)
    }

    #[test]
    fn agrees_with_std_at_every_split() {
        for text in ["", "a", "κόσμε", "\u{10FFFF}x", "€uro", "😀😀"] {
            assert_eq!(check_split_everywhere(text.as_bytes()), (true, true));
        }
        for bad in [
            &b"\xff"[..],
            b"a\xc0\xafb",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xce\xba\xe1",
            b"\xe1\x80",
        ] {
            assert!(!check_split_everywhere(bad).0);
        }
    }

    #[test]
    fn fails_on_first_impossible_byte() {
        // F4 90 can never begin a scalar value (above U+10FFFF): rejected at the second byte.
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"ok\xf4").is_ok());
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // A truncated character is only an error at the end of the message.
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"\xe2\x82").is_ok());
        assert!(!v.is_complete());
    }
}
