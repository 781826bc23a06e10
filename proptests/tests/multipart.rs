//! multipart/form-data (RFC 7578) through `weft_core::multipart::Parser`: what a client encodes
//! reads back as encoded, whatever the boundary, the bodies (binary, holding CRLF, `--` and
//! prefixes of the delimiter) and the points the encoding is cut at; any input, well-formed or
//! not, gives the same events whole and split, and never panics.

use proptest::prelude::*;
use weft_core::multipart::{Event, MultipartLimits, Parser};

/// A part as a client means it.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// What the parser reported, with each part's data joined.
#[derive(Debug, PartialEq)]
enum Seen {
    Start(String, Option<String>, Option<String>),
    Data(Vec<u8>),
    End,
    Finished,
    Error(String),
}

/// A valid boundary (RFC 2046 §5.1.1): 1 to 70 `bchars`, not ending in a space.
fn boundary() -> impl Strategy<Value = String> {
    "[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]"
}

/// A name or file name, with characters that must be escaped in a quoted string.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ .\\[\\]\"\\\\;=é-]{1,12}"
}

/// A body of arbitrary bytes and delimiter look-alikes, never holding the delimiter itself.
fn body(boundary: String) -> impl Strategy<Value = Vec<u8>> {
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        Just(b"\r\n--".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"--".to_vec()),
        Just(b"\r".to_vec()),
        (1..delimiter.len()).prop_map({
            let delimiter = delimiter.clone();
            move |len| delimiter[..len].to_vec()
        }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(move |pieces| {
        let mut body = pieces.concat();
        // Break any whole delimiter the pieces happened to form.
        while let Some(at) = find(&body, &delimiter) {
            body[at + 2] = b'x';
        }
        body
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn part(boundary: String) -> impl Strategy<Value = Part> {
    (
        text(),
        prop::option::of(text()),
        prop::option::of(prop::sample::select(vec![
            "text/plain",
            "application/octet-stream",
            "image/png; name=x",
        ])),
        body(boundary),
    )
        .prop_map(|(name, filename, content_type, body)| Part {
            name,
            filename,
            content_type: content_type.map(str::to_owned),
            body,
        })
}

/// A form: boundary, parts, transport padding, preamble and epilogue.
fn form() -> impl Strategy<Value = (String, Vec<Part>, String, String, String)> {
    boundary().prop_flat_map(|boundary| {
        (
            Just(boundary.clone()),
            prop::collection::vec(part(boundary), 0..5),
            "[ \t]{0,3}",
            "([a-z ]{0,20}\r\n)?",
            "(\r\n[a-z -]{0,20})?",
        )
    })
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Encodes `parts` as a browser would, with a quoted-pair for `"` and `\`.
fn encode(
    boundary: &str,
    parts: &[Part],
    padding: &str,
    preamble: &str,
    epilogue: &str,
) -> Vec<u8> {
    let mut out = preamble.as_bytes().to_vec();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}{padding}\r\n").as_bytes());
        let mut disposition = format!("form-data; name={}", quoted(&part.name));
        if let Some(filename) = &part.filename {
            disposition.push_str(&format!("; filename={}", quoted(filename)));
        }
        out.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        if let Some(content_type) = &part.content_type {
            out.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
    }
    if !parts.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--{padding}{epilogue}").as_bytes());
    out
}

/// Feeds `input` cut after each of `cuts` (sizes, cycled; whole when empty), then EOF.
fn run(boundary: &str, limits: &MultipartLimits, input: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut parser = Parser::new(boundary, limits.clone()).unwrap();
    let mut seen = Vec::new();
    let mut rest = input;
    let mut turn = 0;
    loop {
        let want = if cuts.is_empty() {
            rest.len()
        } else {
            cuts[turn % cuts.len()].max(1)
        };
        turn += 1;
        let taken = parser.receive(&rest[..want.min(rest.len())]);
        rest = &rest[taken..];
        if rest.is_empty() {
            parser.receive_eof();
        }
        let mut any = false;
        while let Some(event) = parser.poll_event() {
            any = true;
            match event {
                Ok(Event::PartStart(head)) => {
                    seen.push(Seen::Start(head.name, head.filename, head.content_type))
                }
                Ok(Event::Data(data)) => match seen.last_mut() {
                    Some(Seen::Data(joined)) => joined.extend_from_slice(&data),
                    _ => seen.push(Seen::Data(data.to_vec())),
                },
                Ok(Event::PartEnd) => seen.push(Seen::End),
                Ok(Event::End) => seen.push(Seen::Finished),
                Err(error) => seen.push(Seen::Error(error.to_string())),
            }
        }
        if parser.is_finished() {
            return seen;
        }
        assert!(taken > 0 || any, "the parser stalled");
        assert!(!rest.is_empty(), "at EOF the parser must finish");
    }
}

/// The parts a run saw, or the error it ended with.
fn parts_of(seen: Vec<Seen>) -> Result<Vec<Part>, String> {
    let mut parts: Vec<Part> = Vec::new();
    for event in seen {
        match event {
            Seen::Start(name, filename, content_type) => parts.push(Part {
                name,
                filename,
                content_type,
                body: Vec::new(),
            }),
            Seen::Data(data) => parts
                .last_mut()
                .ok_or("data outside a part")?
                .body
                .extend(data),
            Seen::End => {}
            Seen::Finished => return Ok(parts),
            Seen::Error(error) => return Err(error),
        }
    }
    Err("no End".to_owned())
}

/// Arbitrary bytes mixed with the tokens of the syntax, so that malformed input gets deep.
fn hostile(boundary: String) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        Just(format!("\r\n--{boundary}").into_bytes()),
        Just(format!("--{boundary}").into_bytes()),
        Just(b"--".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b" \t".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"a\"".to_vec()),
        Just(b"; filename=\"f\"".to_vec()),
        Just(b"; filename*=UTF-8''%C3%A9".to_vec()),
        Just(b"Content-Type: text/plain".to_vec()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn small_limits() -> MultipartLimits {
    let mut limits = MultipartLimits::default();
    limits.max_header_bytes = 80;
    limits.max_headers = 3;
    limits.max_parts = 3;
    limits.max_field_bytes = 20;
    limits.max_file_bytes = 40;
    limits.max_total_bytes = 400;
    limits.max_buffered_input = 16;
    limits
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn what_is_encoded_reads_back_whatever_the_cuts(
        (boundary, parts, padding, preamble, epilogue) in form(),
        cuts in prop::collection::vec(1usize..64, 0..8),
    ) {
        let encoded = encode(&boundary, &parts, &padding, &preamble, &epilogue);
        let limits = MultipartLimits::default();
        let read = parts_of(run(&boundary, &limits, &encoded, &cuts));
        prop_assert_eq!(read, Ok(parts));
    }

    #[test]
    fn reads_back_through_a_tiny_buffer(
        (boundary, parts, padding, preamble, epilogue) in form(),
        cut in 1usize..8,
    ) {
        let encoded = encode(&boundary, &parts, &padding, &preamble, &epilogue);
        let mut limits = MultipartLimits::default();
        limits.max_buffered_input = 1;
        limits.max_header_bytes = 300;
        let read = parts_of(run(&boundary, &limits, &encoded, &[cut]));
        prop_assert_eq!(read, Ok(parts));
    }

    #[test]
    fn any_input_gives_the_same_events_whole_and_cut(
        (boundary, input) in boundary().prop_flat_map(|b| (Just(b.clone()), hostile(b))),
        cuts in prop::collection::vec(1usize..32, 1..8),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { MultipartLimits::default() };
        let whole = run(&boundary, &limits, &input, &[]);
        let cut = run(&boundary, &limits, &input, &cuts);
        prop_assert_eq!(whole, cut);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(1usize..32, 0..4),
    ) {
        let limits = small_limits();
        let whole = run("b", &limits, &input, &[]);
        prop_assert_eq!(run("b", &limits, &input, &cuts), whole);
    }
}
