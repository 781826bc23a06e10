//! Extensible priorities (RFC 9218): the `priority` request field and the PRIORITY_UPDATE
//! frame carry the same signal, urgency and incremental.
//!
//! The signal is a Structured Fields dictionary (RFC 8941 §3.2). [`PrioritySignal::parse`]
//! walks it once with a cursor, allocating nothing: the syntax of every member is checked, but
//! only `u` and `i` are kept.

/// The frame type of PRIORITY_UPDATE (RFC 9218 §7.1).
pub const PRIORITY_UPDATE: u8 = 0x10;

/// What a client says about a response's priority (RFC 9218 §4). weft surfaces it to the
/// application (request extensions and [`super::ServerEvent::PriorityUpdate`]); it does not
/// reorder output by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrioritySignal {
    /// 0 (most urgent) to 7; 3 when absent (§4.1).
    pub urgency: u8,
    /// Whether the response can be used in pieces, interleaved with others (§4.2).
    pub incremental: bool,
}

impl Default for PrioritySignal {
    fn default() -> Self {
        PrioritySignal {
            urgency: 3,
            incremental: false,
        }
    }
}

impl PrioritySignal {
    /// Parses a `priority` field value, a Structured Fields dictionary (RFC 8941): unknown
    /// members, out-of-range and mistyped values are ignored (§4), and a value that does not
    /// parse yields the defaults.
    pub fn parse(value: &[u8]) -> PrioritySignal {
        PrioritySignal::parse_lines([value])
    }

    /// Parses several `priority` field lines of one section, which RFC 8941 §4.2 reads as one
    /// dictionary joined with commas: a later member overrides an earlier one, and one line
    /// that does not parse makes the whole value fall back to the defaults.
    pub(crate) fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> PrioritySignal {
        let mut signal = PrioritySignal::default();
        for line in lines {
            if Cursor::new(line).dictionary(&mut signal).is_none() {
                return PrioritySignal::default();
            }
        }
        signal
    }

    /// Applies one dictionary member; wrong types and out-of-range values are ignored (§4).
    fn apply(&mut self, key: &[u8], value: Item) {
        match (key, value) {
            (b"u", Item::Integer(urgency)) => {
                if let Ok(urgency @ 0..=7) = u8::try_from(urgency) {
                    self.urgency = urgency;
                }
            }
            (b"i", Item::Boolean(incremental)) => self.incremental = incremental,
            _ => {}
        }
    }
}

/// A member value, reduced to what RFC 9218 can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Integer(i64),
    Boolean(bool),
    /// A decimal, string, token, byte sequence or inner list: valid, never used.
    Other,
}

/// A position in a field value. Every parsing method returns `None` on a syntax error
/// (RFC 8941 §4.2: the whole field is then ignored).
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8]) -> Self {
        Cursor { input, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.bump();
        }
        found
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    /// The bytes from `start` to the cursor.
    fn since(&self, start: usize) -> &'a [u8] {
        self.input.get(start..self.pos).unwrap_or_default()
    }

    /// sf-dictionary (RFC 8941 §4.2.2), surrounding spaces allowed (§4.2 step 2).
    fn dictionary(&mut self, signal: &mut PrioritySignal) -> Option<()> {
        self.skip_while(|b| b == b' ');
        while self.peek().is_some() {
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.member_value()?
            } else {
                self.parameters()?;
                Item::Boolean(true)
            };
            signal.apply(key, value);
            self.skip_while(is_ows);
            if self.peek().is_none() {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
            self.skip_while(is_ows);
            self.peek()?; // a trailing comma is an error
        }
        Some(())
    }

    /// member-value: an inner list or an item, then its parameters.
    fn member_value(&mut self) -> Option<Item> {
        let item = if self.peek() == Some(b'(') {
            self.inner_list()?;
            Item::Other
        } else {
            self.bare_item()?
        };
        self.parameters()?;
        Some(item)
    }

    /// inner-list (RFC 8941 §4.2.1.2), without its parameters.
    fn inner_list(&mut self) -> Option<()> {
        self.eat(b'(');
        loop {
            self.skip_while(|b| b == b' ');
            if self.eat(b')') {
                return Some(());
            }
            self.bare_item()?;
            self.parameters()?;
            match self.peek()? {
                b' ' | b')' => {}
                _ => return None,
            }
        }
    }

    /// parameters (RFC 8941 §4.2.3.2): parsed for syntax, ignored (RFC 9218 §4).
    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_while(|b| b == b' ');
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    /// key (RFC 8941 §4.2.3.3): lcalpha or `*`, then lcalpha, digits, `_-.*`.
    fn key(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        match self.peek()? {
            b'a'..=b'z' | b'*' => self.bump(),
            _ => return None,
        }
        self.skip_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'));
        Some(self.since(start))
    }

    /// bare-item (RFC 8941 §4.2.3.1).
    fn bare_item(&mut self) -> Option<Item> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b':' => self.byte_sequence(),
            b'?' => self.boolean(),
            b'A'..=b'Z' | b'a'..=b'z' | b'*' => {
                self.bump();
                self.skip_while(|b| is_tchar(b) || b == b':' || b == b'/');
                Some(Item::Other)
            }
            _ => None,
        }
    }

    /// integer or decimal (RFC 8941 §4.2.4): at most 15 digits, or 12 before and 1 to 3 after
    /// the point.
    fn number(&mut self) -> Option<Item> {
        let negative = self.eat(b'-');
        let start = self.pos;
        self.skip_while(|b| b.is_ascii_digit());
        let integer_digits = self.since(start);
        if integer_digits.is_empty() {
            return None;
        }
        if self.eat(b'.') {
            let fraction_start = self.pos;
            self.skip_while(|b| b.is_ascii_digit());
            let fraction_len = self.pos.saturating_sub(fraction_start);
            return (integer_digits.len() <= 12 && (1..=3).contains(&fraction_len))
                .then_some(Item::Other);
        }
        if integer_digits.len() > 15 {
            return None;
        }
        let magnitude = integer_digits.iter().fold(0i64, |n, &d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
        Some(Item::Integer(if negative { -magnitude } else { magnitude }))
    }

    /// sf-string (RFC 8941 §4.2.5): printable ASCII, `\` escaping only `"` and `\`.
    fn string(&mut self) -> Option<Item> {
        self.eat(b'"');
        loop {
            match self.peek()? {
                b'"' => {
                    self.bump();
                    return Some(Item::Other);
                }
                b'\\' => {
                    self.bump();
                    if !matches!(self.peek()?, b'"' | b'\\') {
                        return None;
                    }
                    self.bump();
                }
                0x20..=0x7e => self.bump(),
                _ => return None,
            }
        }
    }

    /// sf-binary (RFC 8941 §4.2.7): base64 between colons.
    fn byte_sequence(&mut self) -> Option<Item> {
        self.eat(b':');
        self.skip_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        self.eat(b':').then_some(Item::Other)
    }

    /// sf-boolean (RFC 8941 §4.2.8): `?0` or `?1`.
    fn boolean(&mut self) -> Option<Item> {
        self.eat(b'?');
        let value = match self.peek()? {
            b'0' => false,
            b'1' => true,
            _ => return None,
        };
        self.bump();
        Some(Item::Boolean(value))
    }
}

/// Optional whitespace around dictionary commas (RFC 9110 §5.6.3).
fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::PrioritySignal;

    fn parse(value: &str) -> (u8, bool) {
        let signal = PrioritySignal::parse(value.as_bytes());
        (signal.urgency, signal.incremental)
    }

    #[test]
    fn empty_value_gives_defaults() {
        assert_eq!(parse(""), (3, false));
        assert_eq!(parse("   "), (3, false));
    }

    #[test]
    fn reads_urgency_and_incremental() {
        assert_eq!(parse("u=0"), (0, false));
        assert_eq!(parse("u=7, i"), (7, true));
        assert_eq!(parse("i, u=5"), (5, true));
        assert_eq!(parse("i=?1"), (3, true));
        assert_eq!(parse("u=1,i=?0"), (1, false));
        assert_eq!(parse("  u=2 ,\ti  "), (2, true));
    }

    #[test]
    fn ignores_out_of_range_and_mistyped_members() {
        assert_eq!(parse("u=8"), (3, false));
        assert_eq!(parse("u=-1"), (3, false));
        assert_eq!(parse("u=999999999999999"), (3, false));
        assert_eq!(parse("u=1.5"), (3, false));
        assert_eq!(parse("u=\"1\""), (3, false));
        assert_eq!(parse("u=?1"), (3, false));
        assert_eq!(parse("i=1"), (3, false));
        assert_eq!(parse("i=tok, u=2"), (2, false));
        assert_eq!(parse("u=(1 2), i"), (3, true));
    }

    #[test]
    fn ignores_unknown_members_and_parameters() {
        assert_eq!(parse("x=1, u=4, foo=\"bar\", i"), (4, true));
        assert_eq!(parse("u=4;a=1;b, i;c=:aGk=:"), (4, true));
        assert_eq!(parse("a=(b \"c\";d=1 ?0);e=f, u=6"), (6, false));
        assert_eq!(parse("*k=tok/en:x, u=6"), (6, false));
    }

    #[test]
    fn later_member_overrides_earlier() {
        assert_eq!(parse("u=1, u=6"), (6, false));
        assert_eq!(parse("i, i=?0"), (3, false));
    }

    #[test]
    fn invalid_syntax_gives_defaults() {
        for value in [
            "u=1,",
            ",u=1",
            "u=1 i",
            "U=1",
            "u=",
            "u=1;",
            "u=--1",
            "u=1234567890123456",
            "u=1.1234",
            "u=\"unterminated",
            "u=\"bad\\escape\"",
            "u=:abc",
            "i=?2",
            "u=(1 2",
            "u=1, i=?",
            "u=5\u{e9}",
        ] {
            assert_eq!(parse(value), (3, false), "{value:?}");
        }
    }

    #[test]
    fn several_lines_read_as_one_dictionary() {
        let signal = PrioritySignal::parse_lines([&b"u=1"[..], b"i"]);
        assert_eq!((signal.urgency, signal.incremental), (1, true));
        let signal = PrioritySignal::parse_lines([&b"u=1"[..], b"u=2"]);
        assert_eq!(signal.urgency, 2);
        let signal = PrioritySignal::parse_lines([&b"u=1"[..], b"u=,"]);
        assert_eq!(signal, PrioritySignal::default());
    }
}
