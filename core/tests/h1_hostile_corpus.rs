//! A corpus of hostile and ambiguous HTTP/1.1 requests, each with the verdict RFC 9110/9112
//! (and our stricter choices, documented on `H1Error`) call for.
//!
//! Every case is run through `ServerConnection` at once, one byte at a time and in several
//! pseudo-random splits; all runs must produce the same events (adjacent data merged), the same
//! output bytes and the same final state. The application answers each complete request with
//! `200` and the body `ok`, so pipelined requests proceed.

mod support;

use weft_core::Limits;
use weft_core::h1::H1Error;

use support::{Ev, Outcome, byte_split, random_split, read_responses, serve};

/// What the server must make of a case.
#[derive(Debug, Clone)]
enum Verdict {
    /// Every request served, in order; no error.
    Accept(Vec<Req>),
    /// Refused with `error`, answered by `status` with `connection: close`, after `requests`
    /// request heads were surfaced, `served` of them complete and answered with 200.
    Reject {
        error: H1Error,
        status: u16,
        requests: usize,
        served: usize,
    },
    /// A CONNECT answered with 200: the connection becomes a tunnel carrying `leftover`.
    Tunnel { target: String, leftover: Vec<u8> },
}

/// One request as the application saw it.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    target: String,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    input: Vec<u8>,
    limits: Limits,
    verdict: Verdict,
}

fn accept(name: &'static str, input: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        limits: Limits::default(),
        verdict: Verdict::Accept(Vec::new()),
    }
}

fn reject(name: &'static str, input: impl AsRef<[u8]>, error: H1Error, status: u16) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        limits: Limits::default(),
        verdict: Verdict::Reject {
            error,
            status,
            requests: 0,
            served: 0,
        },
    }
}

fn tunnel(name: &'static str, input: impl AsRef<[u8]>, target: &str, leftover: &[u8]) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        limits: Limits::default(),
        verdict: Verdict::Tunnel {
            target: target.to_owned(),
            leftover: leftover.to_vec(),
        },
    }
}

impl Case {
    /// Adds a request the server must surface (for `accept` cases).
    fn req(mut self, method: &str, target: &str, body: impl AsRef<[u8]>) -> Self {
        let Verdict::Accept(requests) = &mut self.verdict else {
            panic!("{}: req() on a case that is not accepted", self.name);
        };
        requests.push(Req {
            method: method.to_owned(),
            target: target.to_owned(),
            body: body.as_ref().to_vec(),
            trailers: Vec::new(),
        });
        self
    }

    /// Adds a trailer field to the last request.
    fn trailer(mut self, name: &str, value: &str) -> Self {
        let Verdict::Accept(requests) = &mut self.verdict else {
            panic!("{}: trailer() on a case that is not accepted", self.name);
        };
        let last = requests.last_mut().expect("trailer() before req()");
        last.trailers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// For a rejection: how many request heads were surfaced, and how many of them were served.
    fn after(mut self, surfaced: usize, answered: usize) -> Self {
        let Verdict::Reject {
            requests, served, ..
        } = &mut self.verdict
        else {
            panic!("{}: after() on a case that is not rejected", self.name);
        };
        *requests = surfaced;
        *served = answered;
        self
    }

    fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// `POST /` with a Host field, the given extra field lines and the given body bytes.
fn post(fields: &str, body: impl AsRef<[u8]>) -> Vec<u8> {
    let mut input = format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").into_bytes();
    input.extend_from_slice(body.as_ref());
    input
}

/// `POST /` with `Transfer-Encoding: chunked` and the given chunked body.
fn chunked(body: impl AsRef<[u8]>) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// Joins byte strings.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn limits(edit: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    edit(&mut limits);
    limits
}

const HELLO_CHUNKED: &str = "5\r\nhello\r\n0\r\n\r\n";

fn corpus() -> Vec<Case> {
    use H1Error::*;
    let long_target = format!("/{}", "a".repeat(8999));
    let target_at_limit = format!("/{}", "b".repeat(8191));
    let many_fields: String = (0..100).map(|i| format!("X-F{i}: v\r\n")).collect();
    let most_fields: String = (0..99).map(|i| format!("X-F{i}: v\r\n")).collect();
    let exact_head = "GET /exact HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n";

    vec![
        // ----- Content-Length with Transfer-Encoding (RFC 9112 §6.3 rule 3) -----
        reject(
            "cl_te",
            post(
                "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\nG",
            ),
            ContentLengthWithTransferEncoding,
            400,
        ),
        reject(
            "te_cl",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                "8\r\nSMUGGLED\r\n0\r\n\r\n",
            ),
            ContentLengthWithTransferEncoding,
            400,
        ),
        reject(
            "te_cl_zero",
            post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", ""),
            ContentLengthWithTransferEncoding,
            400,
        ),
        // ----- Transfer-Encoding obfuscations (RFC 9112 §6.1, §6.3 rule 4) -----
        reject(
            "te_xchunked",
            post("Transfer-Encoding: xchunked\r\n", HELLO_CHUNKED),
            TransferEncodingNotChunked,
            400,
        ),
        accept(
            "te_leading_space_is_ows",
            post("Transfer-Encoding:  chunked\r\n", HELLO_CHUNKED),
        )
        .req("POST", "/", "hello"),
        accept(
            "te_leading_tab_is_ows",
            post("Transfer-Encoding:\tchunked\r\n", HELLO_CHUNKED),
        )
        .req("POST", "/", "hello"),
        accept(
            "te_trailing_ows",
            post("Transfer-Encoding: chunked \t\r\n", HELLO_CHUNKED),
        )
        .req("POST", "/", "hello"),
        accept(
            "te_uppercase",
            "POST / HTTP/1.1\r\nHOST: a\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .req("POST", "/", "hello"),
        accept(
            "te_empty_list_elements",
            post("Transfer-Encoding: , chunked,\r\n", HELLO_CHUNKED),
        )
        .req("POST", "/", "hello"),
        reject(
            "te_chunked_identity",
            post("Transfer-Encoding: chunked, identity\r\n", HELLO_CHUNKED),
            TransferEncodingNotChunked,
            400,
        ),
        reject(
            "te_identity_chunked",
            post("Transfer-Encoding: identity, chunked\r\n", HELLO_CHUNKED),
            UnsupportedTransferCoding,
            501,
        ),
        reject(
            "te_gzip_chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", HELLO_CHUNKED),
            UnsupportedTransferCoding,
            501,
        ),
        reject(
            "te_identity_line_then_chunked_line",
            post(
                "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
                HELLO_CHUNKED,
            ),
            UnsupportedTransferCoding,
            501,
        ),
        reject(
            "te_chunked_chunked",
            post("Transfer-Encoding: chunked, chunked\r\n", HELLO_CHUNKED),
            ChunkedAppliedTwice,
            400,
        ),
        reject(
            "te_chunked_on_two_lines",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                HELLO_CHUNKED,
            ),
            ChunkedAppliedTwice,
            400,
        ),
        reject(
            "te_space_before_colon",
            post("Transfer-Encoding : chunked\r\n", HELLO_CHUNKED),
            WhitespaceBeforeColon,
            400,
        ),
        reject(
            "te_tab_before_colon",
            post("Transfer-Encoding\t: chunked\r\n", HELLO_CHUNKED),
            WhitespaceBeforeColon,
            400,
        ),
        // An unknown field: no body, so nothing is smuggled.
        accept(
            "te_underscore_is_another_field",
            post("Transfer_Encoding: chunked\r\n", ""),
        )
        .req("POST", "/", ""),
        // ... and what follows is read as the next request line, which is not one.
        reject(
            "te_underscore_body_is_not_a_request",
            post("Transfer_Encoding: chunked\r\n", "0\r\n\r\n"),
            InvalidRequestTarget,
            400,
        )
        .after(1, 1),
        reject(
            "te_empty_value",
            post("Transfer-Encoding: \r\n", HELLO_CHUNKED),
            TransferEncodingNotChunked,
            400,
        ),
        reject(
            "te_quoted_chunked",
            post("Transfer-Encoding: \"chunked\"\r\n", HELLO_CHUNKED),
            TransferEncodingNotChunked,
            400,
        ),
        reject(
            "te_chunked_with_parameter",
            post("Transfer-Encoding: chunked;q=1\r\n", HELLO_CHUNKED),
            TransferEncodingNotChunked,
            400,
        ),
        reject(
            "te_vertical_tab",
            post("Transfer-Encoding: \x0bchunked\r\n", HELLO_CHUNKED),
            InvalidHeaderValue,
            400,
        ),
        reject(
            "te_nul_after_chunked",
            post("Transfer-Encoding: chunked\0\r\n", HELLO_CHUNKED),
            InvalidHeaderValue,
            400,
        ),
        reject(
            "te_on_http10",
            concat!(
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "5\r\nhello\r\n0\r\n\r\n"
            ),
            TransferEncodingOnHttp10,
            400,
        ),
        reject(
            "te_with_cl_on_http10",
            "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
            TransferEncodingOnHttp10,
            400,
        ),
        // ----- Content-Length (RFC 9110 §8.6) -----
        accept(
            "cl_duplicate_equal_lines",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
        )
        .req("POST", "/", "hello"),
        reject(
            "cl_duplicate_different_lines",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            ConflictingContentLength,
            400,
        ),
        accept("cl_list_equal", post("Content-Length: 5, 5\r\n", "hello")).req(
            "POST", "/", "hello",
        ),
        reject(
            "cl_list_different",
            post("Content-Length: 5, 6\r\n", "hello!"),
            ConflictingContentLength,
            400,
        ),
        reject(
            "cl_plus_sign",
            post("Content-Length: +5\r\n", "hello"),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_minus_sign",
            post("Content-Length: -5\r\n", "hello"),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_hex",
            post("Content-Length: 0x5\r\n", "hello"),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_inner_space",
            post("Content-Length: 1 0\r\n", "0123456789"),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_empty",
            post("Content-Length: \r\n", ""),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_trailing_comma",
            post("Content-Length: 5,\r\n", "hello"),
            InvalidContentLength,
            400,
        ),
        accept("cl_ows_around", post("Content-Length: \t 5 \t\r\n", "hello")).req(
            "POST", "/", "hello",
        ),
        accept("cl_leading_zeros", post("Content-Length: 005\r\n", "hello")).req(
            "POST", "/", "hello",
        ),
        reject(
            "cl_overflows_u64",
            post("Content-Length: 18446744073709551616\r\n", "hello"),
            InvalidContentLength,
            400,
        ),
        reject(
            "cl_u64_max_too_large",
            post("Content-Length: 18446744073709551615\r\n", "hello"),
            BodyTooLarge,
            413,
        ),
        reject(
            "cl_over_body_limit",
            post("Content-Length: 8388609\r\n", "hello"),
            BodyTooLarge,
            413,
        ),
        accept(
            "cl_zero_then_pipelined_request",
            post(
                "Content-Length: 0\r\n",
                "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
            ),
        )
        .req("POST", "/", "")
        .req("GET", "/admin", ""),
        // ----- line folding and misplaced whitespace (RFC 9112 §5.2, §2.2) -----
        reject(
            "obs_fold_space",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
            ObsoleteLineFolding,
            400,
        ),
        reject(
            "obs_fold_tab",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n",
            ObsoleteLineFolding,
            400,
        ),
        reject(
            "obs_fold_hides_transfer_encoding",
            post("X-A: b\r\n Transfer-Encoding: chunked\r\n", HELLO_CHUNKED),
            ObsoleteLineFolding,
            400,
        ),
        reject(
            "whitespace_before_first_field",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            WhitespaceAfterStartLine,
            400,
        ),
        reject(
            "tab_before_first_field",
            "GET / HTTP/1.1\r\n\tHost: a\r\n\r\n",
            WhitespaceAfterStartLine,
            400,
        ),
        // ----- bare LF and bare CR (RFC 9112 §2.2) -----
        reject(
            "bare_lf_after_request_line",
            "GET / HTTP/1.1\nHost: a\r\n\r\n",
            BareLineFeed,
            400,
        ),
        reject(
            "bare_lf_after_field",
            "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
            BareLineFeed,
            400,
        ),
        reject(
            "bare_lf_ends_head",
            "GET / HTTP/1.1\r\nHost: a\r\n\n",
            BareLineFeed,
            400,
        ),
        reject(
            "bare_lf_after_chunk_size",
            chunked("5\nhello\r\n0\r\n\r\n"),
            BareLineFeed,
            400,
        )
        .after(1, 0),
        reject(
            "bare_lf_after_chunk_data",
            chunked("5\r\nhello\n0\r\n\r\n"),
            MissingChunkTerminator,
            400,
        )
        .after(1, 0),
        reject(
            "bare_lf_after_last_chunk",
            chunked("5\r\nhello\r\n0\n\r\n"),
            BareLineFeed,
            400,
        )
        .after(1, 0),
        reject(
            "bare_lf_in_trailers",
            chunked("5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
            BareLineFeed,
            400,
        )
        .after(1, 0),
        reject(
            "bare_cr_in_field_value",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            BareCarriageReturn,
            400,
        ),
        reject(
            "bare_cr_ends_request_line",
            "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
            BareCarriageReturn,
            400,
        ),
        reject(
            "bare_cr_in_target",
            "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n",
            BareCarriageReturn,
            400,
        ),
        reject(
            "bare_cr_as_field_line",
            "GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n",
            BareCarriageReturn,
            400,
        ),
        reject(
            "bare_cr_in_chunk_line",
            chunked("5\rx\r\nhello\r\n0\r\n\r\n"),
            BareCarriageReturn,
            400,
        )
        .after(1, 0),
        // ----- control and non-ASCII bytes (RFC 9110 §5.1, §5.5) -----
        reject(
            "nul_in_field_value",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            InvalidHeaderValue,
            400,
        ),
        reject(
            "nul_in_target",
            "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        // RFC 9112 §3.2: a request-target never has a fragment; `http::Uri` would drop it.
        reject(
            "fragment_in_target",
            "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        // RFC 9110 §4.2.4: userinfo in an http URI is an error.
        reject(
            "userinfo_in_absolute_form",
            "GET http://user@a/b HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        reject(
            "bare_cr_opening_trailer_section",
            post("Transfer-Encoding: chunked\r\n", "0\r\n\r\r\n"),
            BareCarriageReturn,
            400,
        )
        .after(1, 0),
        reject(
            "invalid_utf8_in_target",
            b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        // Raw UTF-8 is not URI syntax, but httparse and `http::Uri` take it, as many servers
        // do; it cannot change where a message ends.
        accept(
            "utf8_in_target",
            "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .req("GET", "/caf\u{e9}", ""),
        reject(
            "nul_in_field_name",
            "GET / HTTP/1.1\r\nHost: a\r\nX\0Y: z\r\n\r\n",
            InvalidHeaderName,
            400,
        ),
        reject(
            "del_in_field_value",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
            InvalidHeaderValue,
            400,
        ),
        accept(
            "obs_text_in_field_value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n",
        )
        .req("GET", "/", ""),
        reject(
            "non_ascii_field_name",
            b"GET / HTTP/1.1\r\nHost: a\r\nX\xe9: y\r\n\r\n",
            InvalidHeaderName,
            400,
        ),
        reject(
            "field_line_without_colon",
            "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
            InvalidHeaderName,
            400,
        ),
        reject(
            "empty_field_name",
            "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
            InvalidHeaderName,
            400,
        ),
        reject(
            "space_inside_field_name",
            "GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n",
            InvalidHeaderName,
            400,
        ),
        // ----- chunk sizes and extensions (RFC 9112 §7.1) -----
        reject(
            "chunk_size_18_hex_digits",
            chunked("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            ChunkSizeOverflow,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_size_2_pow_64",
            chunked("10000000000000000\r\nhello\r\n0\r\n\r\n"),
            ChunkSizeOverflow,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_size_u64_max",
            chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            BodyTooLarge,
            413,
        )
        .after(1, 0),
        reject(
            "chunk_size_over_body_limit",
            chunked("1000000\r\nhello\r\n0\r\n\r\n"),
            BodyTooLarge,
            413,
        )
        .after(1, 0),
        reject(
            "chunks_add_up_over_body_limit",
            chunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"),
            BodyTooLarge,
            413,
        )
        .after(1, 0)
        .limits(limits(|l| l.max_body_size = 8)),
        reject(
            "chunk_size_trailing_space",
            chunked("5 \r\nhello\r\n0\r\n\r\n"),
            InvalidChunkExtension,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_size_leading_space",
            chunked(" 5\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkSize,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_size_negative",
            chunked("-5\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkSize,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_size_empty",
            chunked("\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkSize,
            400,
        )
        .after(1, 0),
        // "0" is a size; "x5" is not an extension.
        reject(
            "chunk_size_hex_prefix",
            chunked("0x5\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkExtension,
            400,
        )
        .after(1, 0),
        accept("chunk_size_leading_zeros", chunked("0005\r\nhello\r\n0\r\n\r\n")).req(
            "POST", "/", "hello",
        ),
        accept(
            "chunk_size_uppercase_hex",
            chunked("A\r\n0123456789\r\n0\r\n\r\n"),
        )
        .req("POST", "/", "0123456789"),
        accept(
            "chunk_extension_with_bws",
            chunked("5 ; a = b\r\nhello\r\n0\r\n\r\n"),
        )
        .req("POST", "/", "hello"),
        accept(
            "chunk_extension_name_only_and_quoted",
            chunked("5;a;b=\"x\\\"y\"\r\nhello\r\n0;c=d\r\n\r\n"),
        )
        .req("POST", "/", "hello"),
        reject(
            "chunk_extension_without_name",
            chunked("5;\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkExtension,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_extension_without_value",
            chunked("5;a=\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkExtension,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_extension_unterminated_quote",
            chunked("5;a=\"open\r\nhello\r\n0\r\n\r\n"),
            InvalidChunkExtension,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_line_too_long",
            chunked(format!("5;a={}\r\nhello\r\n0\r\n\r\n", "x".repeat(2000))),
            ChunkLineTooLong,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_extensions_add_up_too_large",
            chunked("5;a=0123456789\r\nhello\r\n5;a=0123456789\r\nworld\r\n0\r\n\r\n"),
            ChunkExtensionsTooLarge,
            400,
        )
        .after(1, 0)
        .limits(limits(|l| l.max_chunk_extensions_size = 16)),
        reject(
            "chunk_data_without_crlf",
            chunked("5\r\nhelloX\r\n0\r\n\r\n"),
            MissingChunkTerminator,
            400,
        )
        .after(1, 0),
        reject(
            "chunk_data_longer_than_size",
            chunked("3\r\nhello\r\n0\r\n\r\n"),
            MissingChunkTerminator,
            400,
        )
        .after(1, 0),
        // ----- trailers (RFC 9112 §7.1.2) -----
        accept(
            "trailers_accepted",
            chunked("5\r\nhello\r\n0\r\nX-Sum: 5\r\nX-Other: b\r\n\r\n"),
        )
        .req("POST", "/", "hello")
        .trailer("x-sum", "5")
        .trailer("x-other", "b"),
        reject(
            "trailers_too_large",
            chunked(format!("0\r\nX-Big: {}\r\n\r\n", "t".repeat(9000))),
            TrailersTooLarge,
            431,
        )
        .after(1, 0),
        reject(
            "trailer_without_colon",
            chunked("0\r\nbad trailer\r\n\r\n"),
            InvalidTrailer,
            400,
        )
        .after(1, 0),
        reject(
            "trailer_obs_fold",
            chunked("0\r\nX-T: a\r\n b\r\n\r\n"),
            InvalidTrailer,
            400,
        )
        .after(1, 0),
        // ----- size limits -----
        reject(
            "head_too_large",
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "h".repeat(17_000)),
            HeadTooLarge,
            431,
        ),
        accept("head_exactly_at_limit", exact_head)
            .req("GET", "/exact", "")
            .limits(limits(|l| l.max_head_size = exact_head.len())),
        reject("head_one_byte_over_limit", exact_head, HeadTooLarge, 431)
            .limits(limits(|l| l.max_head_size = exact_head.len() - 1)),
        reject(
            "too_many_fields",
            format!("GET / HTTP/1.1\r\nHost: a\r\n{many_fields}\r\n"),
            TooManyHeaders,
            431,
        ),
        accept(
            "fields_exactly_at_limit",
            format!("GET / HTTP/1.1\r\nHost: a\r\n{most_fields}\r\n"),
        )
        .req("GET", "/", ""),
        reject(
            "target_too_long",
            format!("GET {long_target} HTTP/1.1\r\nHost: a\r\n\r\n"),
            RequestTargetTooLong,
            414,
        ),
        accept(
            "target_exactly_at_limit",
            format!("GET {target_at_limit} HTTP/1.1\r\nHost: a\r\n\r\n"),
        )
        .req("GET", &target_at_limit, ""),
        // ----- Host (RFC 9112 §3.2) -----
        reject(
            "missing_host_http11",
            "GET / HTTP/1.1\r\n\r\n",
            MissingHost,
            400,
        ),
        reject(
            "double_host",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            DuplicateHost,
            400,
        ),
        reject(
            "double_host_different",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            DuplicateHost,
            400,
        ),
        reject(
            "host_with_userinfo",
            "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            InvalidHost,
            400,
        ),
        reject(
            "host_with_space",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            InvalidHost,
            400,
        ),
        reject(
            "host_with_path",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            InvalidHost,
            400,
        ),
        reject(
            "host_with_non_numeric_port",
            "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",
            InvalidHost,
            400,
        ),
        reject(
            "host_with_two_ports",
            "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n",
            InvalidHost,
            400,
        ),
        accept("host_with_empty_port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n").req("GET", "/", ""),
        accept("http10_without_host", "GET /old HTTP/1.0\r\n\r\n").req("GET", "/old", ""),
        accept("empty_host_http11", "GET / HTTP/1.1\r\nHost:\r\n\r\n").req("GET", "/", ""),
        accept(
            "host_with_port_and_ipv6",
            "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        )
        .req("GET", "/", ""),
        // ----- HTTP-version (RFC 9112 §2.3) -----
        reject(
            "http2_request_line",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            UnsupportedVersion,
            505,
        ),
        reject(
            "h2_prior_knowledge_preface",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            UnsupportedVersion,
            505,
        ),
        reject(
            "http09_version",
            "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
            UnsupportedVersion,
            505,
        ),
        // httparse knows only 1.0 and 1.1; a higher 1.x minor is refused as malformed.
        reject(
            "http12_version",
            "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        reject(
            "lowercase_version",
            "GET / http/1.1\r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        reject(
            "version_with_trailing_byte",
            "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        reject(
            "space_after_version",
            "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        reject(
            "missing_version",
            "GET /\r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        // ----- request line (RFC 9112 §3) -----
        reject(
            "method_with_paren",
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidMethod,
            400,
        ),
        reject(
            "method_with_nul",
            "GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidMethod,
            400,
        ),
        reject(
            "empty_method",
            " / HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidMethod,
            400,
        ),
        reject(
            "tab_as_separator",
            "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidMethod,
            400,
        ),
        reject(
            "double_space_in_request_line",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        accept("lowercase_method_is_another_method", "get / HTTP/1.1\r\nHost: a\r\n\r\n")
            .req("get", "/", ""),
        accept("extension_method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n").req("PURGE", "/x", ""),
        // ----- request-target forms (RFC 9112 §3.2) -----
        accept("options_asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").req("OPTIONS", "*", ""),
        reject(
            "get_asterisk",
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        tunnel(
            "connect_authority_form",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
            "example.com:443",
            b"\x16\x03\x01",
        ),
        reject(
            "connect_origin_form",
            "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        reject(
            "connect_without_port",
            "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        reject(
            "connect_absolute_form",
            "CONNECT http://example.com:443/ HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        reject(
            "connect_with_userinfo",
            "CONNECT user@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        accept(
            "absolute_form",
            "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        )
        .req("GET", "http://example.com/x?y=1", ""),
        reject(
            "authority_form_without_connect",
            "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetFormMismatch,
            400,
        ),
        reject(
            "relative_target",
            "GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidRequestTarget,
            400,
        ),
        reject(
            "space_inside_target",
            "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            InvalidVersion,
            400,
        ),
        // ----- Expect (RFC 9110 §10.1.1) -----
        accept(
            "expect_100_continue",
            post("Expect: 100-continue\r\nContent-Length: 5\r\n", "hello"),
        )
        .req("POST", "/", "hello"),
        accept(
            "expect_100_continue_any_case",
            post("Expect: 100-Continue\r\nContent-Length: 5\r\n", "hello"),
        )
        .req("POST", "/", "hello"),
        reject(
            "expect_unknown",
            post("Expect: 200-ok\r\nContent-Length: 5\r\n", "hello"),
            UnsupportedExpectation,
            417,
        ),
        reject(
            "expect_twice",
            post(
                "Expect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 5\r\n",
                "hello",
            ),
            UnsupportedExpectation,
            417,
        ),
        accept(
            "expect_ignored_on_http10",
            "POST / HTTP/1.0\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\nhello",
        )
        .req("POST", "/", "hello"),
        // ----- leading empty lines (RFC 9112 §2.2) -----
        accept("leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").req(
            "GET", "/", "",
        ),
        reject(
            "too_many_leading_empty_lines",
            format!("{}GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n".repeat(9)),
            HeadTooLarge,
            431,
        ),
        reject(
            "leading_bare_lf",
            "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            BareLineFeed,
            400,
        ),
        accept("only_empty_lines_then_close", "\r\n\r\n"),
        // ----- truncation (RFC 9112 §8) -----
        reject(
            "truncated_head",
            "GET / HTTP/1.1\r\nHost: a\r\n",
            IncompleteMessage,
            400,
        ),
        reject(
            "truncated_length_body",
            post("Content-Length: 10\r\n", "hello"),
            IncompleteMessage,
            400,
        )
        .after(1, 0),
        reject(
            "truncated_chunked_body",
            chunked("5\r\nhello\r\n"),
            IncompleteMessage,
            400,
        )
        .after(1, 0),
        // ----- pipelining -----
        accept(
            "three_pipelined_requests",
            cat(&[
                b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
                &post("Content-Length: 3\r\n", "two"),
                &chunked("5\r\nthree\r\n0\r\n\r\n"),
            ]),
        )
        .req("GET", "/1", "")
        .req("POST", "/", "two")
        .req("POST", "/", "three"),
        accept(
            "empty_line_between_pipelined_requests",
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .req("GET", "/1", "")
        .req("GET", "/2", ""),
        // Some old clients end a body with an extra CRLF: an empty line, not a request.
        accept(
            "stray_crlf_after_body",
            post("Content-Length: 2\r\n", "hi\r\n"),
        )
        .req("POST", "/", "hi"),
        reject(
            "pipelined_request_with_cl_te",
            cat(&[
                b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
                &post(
                    "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                    HELLO_CHUNKED,
                ),
            ]),
            ContentLengthWithTransferEncoding,
            400,
        )
        .after(1, 1),
        accept(
            "upgrade_request_answered_normally",
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .req("GET", "/ws", ""),
    ]
}

/// Reads the requests the application saw out of an accepted run.
fn requests_seen(name: &str, events: &[Ev]) -> Vec<Req> {
    let mut requests: Vec<Req> = Vec::new();
    let mut open = false;
    for event in events {
        match event {
            Ev::Request { method, target, .. } => {
                assert!(!open, "{name}: a request began before the last one ended");
                open = true;
                requests.push(Req {
                    method: method.clone(),
                    target: target.clone(),
                    body: Vec::new(),
                    trailers: Vec::new(),
                });
            }
            Ev::Data(data) => {
                assert!(open, "{name}: data outside a request");
                requests.last_mut().unwrap().body.extend_from_slice(data);
            }
            Ev::Trailers(fields) => {
                assert!(open, "{name}: trailers outside a request");
                requests.last_mut().unwrap().trailers = fields.clone();
            }
            Ev::End => {
                assert!(open, "{name}: end outside a request");
                open = false;
            }
            Ev::Upgraded(_) | Ev::Error(_) => panic!("{name}: unexpected {event:?}"),
        }
    }
    assert!(!open, "{name}: the last request never ended");
    requests
}

fn check_verdict(case: &Case, outcome: &Outcome) {
    let name = case.name;
    // A tunnel's socket is handed over, never closed; every other run ends closed.
    let tunnel = matches!(case.verdict, Verdict::Tunnel { .. });
    assert_eq!(outcome.closed, !tunnel, "{name}: closed at the end");
    match &case.verdict {
        Verdict::Accept(expected) => {
            assert_eq!(&requests_seen(name, &outcome.events), expected, "{name}");
            let responses = read_responses(&outcome.output, &[]);
            let finals: Vec<_> = responses.iter().filter(|r| r.status >= 200).collect();
            assert_eq!(finals.len(), expected.len(), "{name}: one response each");
            for response in &finals {
                assert_eq!(response.status, 200, "{name}");
                assert_eq!(response.body, b"ok", "{name}");
            }
            for interim in responses.iter().filter(|r| r.status < 200) {
                assert_eq!(interim.status, 100, "{name}: only 100 Continue is interim");
            }
        }
        Verdict::Reject {
            error,
            status,
            requests,
            served,
        } => {
            let errors: Vec<_> = outcome
                .events
                .iter()
                .filter(|e| matches!(e, Ev::Error(_)))
                .collect();
            assert_eq!(errors, [&Ev::Error(error.clone())], "{name}: the error");
            assert_eq!(
                outcome.events.last(),
                Some(&Ev::Error(error.clone())),
                "{name}: nothing follows the error"
            );
            let heads = outcome
                .events
                .iter()
                .filter(|e| matches!(e, Ev::Request { .. }))
                .count();
            let ends = outcome.events.iter().filter(|e| **e == Ev::End).count();
            assert_eq!((heads, ends), (*requests, *served), "{name}: requests seen");
            let responses = read_responses(&outcome.output, &[]);
            let (last, earlier) = responses
                .split_last()
                .unwrap_or_else(|| panic!("{name}: no error response written"));
            assert_eq!(last.status, *status, "{name}: error status");
            assert!(
                last.connection_has("close"),
                "{name}: error response without connection: close"
            );
            assert_eq!(last.header("content-length"), Some("0"), "{name}");
            let earlier: Vec<u16> = earlier
                .iter()
                .map(|r| r.status)
                .filter(|s| *s >= 200)
                .collect();
            assert_eq!(earlier, vec![200; *served], "{name}: responses before");
        }
        Verdict::Tunnel { target, leftover } => {
            let [
                Ev::Request {
                    method,
                    target: seen,
                    ..
                },
                Ev::End,
                Ev::Upgraded(rest),
            ] = &outcome.events[..]
            else {
                panic!("{name}: not a tunnel: {:?}", outcome.events);
            };
            assert_eq!((method.as_str(), seen), ("CONNECT", target), "{name}");
            assert_eq!(rest, leftover, "{name}: bytes after the head");
            let responses = read_responses(&outcome.output, &[]);
            assert_eq!(responses.len(), 1, "{name}");
            assert_eq!(responses[0].status, 200, "{name}");
            assert_eq!(responses[0].header("content-length"), None, "{name}");
            assert_eq!(responses[0].header("transfer-encoding"), None, "{name}");
        }
    }
}

/// Seeds and largest piece sizes for the pseudo-random splits.
const SPLITS: [(u64, usize); 6] = [
    (1, 3),
    (7, 8),
    (42, 17),
    (0x9e37_79b9_7f4a_7c15, 64),
    (2024, 5),
    (0xdead_beef, 300),
];

#[test]
fn corpus_has_enough_cases_with_unique_names() {
    let cases = corpus();
    assert!(cases.len() >= 70, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "duplicate case names");
}

#[test]
fn every_case_gets_its_verdict_when_sent_at_once() {
    let mut failures = Vec::new();
    for case in corpus() {
        let outcome = serve(&case.limits, &[&case.input]);
        let result = std::panic::catch_unwind(|| check_verdict(&case, &outcome));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{message}\n    events: {:?}", outcome.events));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_is_the_same_however_its_bytes_are_split() {
    let mut failures = Vec::new();
    for case in corpus() {
        let whole = serve(&case.limits, &[&case.input]);
        let mut splits = vec![("byte by byte".to_owned(), byte_split(&case.input))];
        for (seed, max_piece) in SPLITS {
            splits.push((
                format!("seed {seed:#x}, pieces up to {max_piece}"),
                random_split(&case.input, seed, max_piece),
            ));
        }
        for (how, pieces) in splits {
            let outcome = serve(&case.limits, &pieces);
            if outcome != whole {
                failures.push(format!(
                    "{} ({how}):\n    at once: {:?} {:?}\n    split:   {:?} {:?}",
                    case.name,
                    whole.events,
                    String::from_utf8_lossy(&whole.output),
                    outcome.events,
                    String::from_utf8_lossy(&outcome.output),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
