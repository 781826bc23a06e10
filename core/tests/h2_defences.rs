//! The HTTP/2 server's defences against abusive clients (RFC 9113 §10.5 and the CVEs named
//! below), one test per defence. Each sets its budget small in `Limits.h2`, repeats the abuse
//! far past it, and asserts the answer on the wire (GOAWAY or RST_STREAM and its code) and that
//! the work and output the client obtained stayed proportional to the budget, not to the abuse.

#[path = "support/h2_peer.rs"]
mod h2_peer;

use http::{HeaderMap, StatusCode};
use weft_core::Limits;
use weft_core::h2::{ErrorCode, Frame, SendError, Settings};

use h2_peer::{
    Out, Peer, get_fields, hpack_int, hpack_str, is_ping_ack, is_rst, is_settings_ack,
    request_fields, secs,
};

/// Small budgets, so each is crossed within a few frames; timers far away unless a test
/// needs one.
fn defence_limits() -> Limits {
    let mut limits = Limits::default();
    limits.h2.idle_timeout = secs(3600);
    limits.h2.send_stall_timeout = secs(3600);
    limits.h2.flood_window = secs(10);
    limits.h2.max_client_resets = 5;
    limits.h2.max_error_resets = 5;
    limits.h2.max_stream_errors_total = 8;
    limits.h2.max_continuation_frames = 4;
    limits.h2.max_settings_frames = 5;
    limits.h2.max_ping_frames = 5;
    limits.h2.max_empty_frames = 5;
    limits.h2.max_window_update_frames = 20;
    limits.h2.max_priority_frames = 20;
    limits
}

/// Most rounds any abuse runs: far past every budget above.
const ABUSE_ROUNDS: u32 = 500;

/// Runs `abuse(peer, round)` for rounds 1, 2, ... until the server sends a GOAWAY or raises
/// an Error; returns the round that did it, or `None` if it never did in `ABUSE_ROUNDS`.
fn rounds_until_goaway(peer: &mut Peer, mut abuse: impl FnMut(&mut Peer, u32)) -> Option<u32> {
    for round in 1..=ABUSE_ROUNDS {
        abuse(peer, round);
        if !peer.goaways().is_empty() || peer.error_event().is_some() {
            return Some(round);
        }
    }
    None
}

/// Asserts the abuse was stopped near its budget: not long before (the budget is what a
/// legitimate client may use), not long after (the defence bites).
fn assert_stopped_near(rounds: Option<u32>, budget: u32, what: &str) {
    let rounds = rounds.unwrap_or_else(|| {
        panic!("{what}: no GOAWAY after {ABUSE_ROUNDS} rounds with a budget of {budget}")
    });
    assert!(
        rounds + 2 >= budget,
        "{what}: GOAWAY after {rounds} rounds, well inside the budget of {budget}"
    );
    assert!(
        rounds <= budget + 2,
        "{what}: GOAWAY only after {rounds} rounds with a budget of {budget}"
    );
}

/// Asserts that input after the connection error produces nothing: no event, no output.
fn assert_ignores_further_input(peer: &mut Peer) {
    let events = peer.event_log.len();
    let written = peer.written;
    for i in 0..50 {
        peer.get(1001 + 2 * i);
        peer.ping([0; 8]);
    }
    peer.drain();
    assert_eq!(
        peer.event_log.len(),
        events,
        "events after the connection ended"
    );
    assert_eq!(peer.written, written, "output after the connection ended");
}

/// Abuse that must end in GOAWAY ENHANCE_YOUR_CALM near `budget` rounds, with at most
/// `per_round` output bytes a round: runs it and checks all of that.
fn assert_flood_stopped(
    mut peer: Peer,
    budget: u32,
    per_round: usize,
    what: &str,
    abuse: impl FnMut(&mut Peer, u32),
) {
    let written = peer.written;
    let rounds = rounds_until_goaway(&mut peer, abuse);
    assert_stopped_near(rounds, budget, what);
    peer.expect_connection_error(ErrorCode::EnhanceYourCalm);
    let output = peer.written - written;
    let bound = rounds.unwrap_or(0) as usize * per_round + 512;
    assert!(
        output <= bound,
        "{what}: {output} bytes written, bound {bound}"
    );
    assert_ignores_further_input(&mut peer);
}

// ----- CVE-2023-44487, rapid reset -----

#[test]
fn rapid_reset_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_client_resets;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 64, "rapid reset", |peer, round| {
        let stream = 2 * round - 1;
        peer.get(stream);
        peer.rst(stream, ErrorCode::Cancel);
    });
}

#[test]
fn rapid_reset_surfaces_no_more_requests_than_its_budget() {
    let limits = defence_limits();
    let budget = limits.h2.max_client_resets as usize;
    let mut peer = Peer::connect(limits);
    rounds_until_goaway(&mut peer, |peer, round| {
        let stream = 2 * round - 1;
        peer.get(stream);
        peer.rst(stream, ErrorCode::Cancel);
    });
    assert!(
        peer.requests_seen() <= budget + 2,
        "{} requests reached the application",
        peer.requests_seen()
    );
}

#[test]
fn client_resets_spread_over_flood_windows_are_allowed() {
    let limits = defence_limits();
    let per_window = limits.h2.max_client_resets - 1;
    let window = limits.h2.flood_window;
    let mut peer = Peer::connect(limits);
    let mut stream = 1;
    for _ in 0..5 {
        for _ in 0..per_window {
            peer.get(stream);
            peer.rst(stream, ErrorCode::Cancel);
            stream += 2;
        }
        peer.advance(window + secs(1));
    }
    peer.get(stream);
    peer.expect_request(stream);
    peer.expect_no_connection_error();
}

#[test]
fn resets_after_complete_responses_are_not_counted() {
    let limits = defence_limits();
    let budget = limits.h2.max_client_resets;
    let mut peer = Peer::connect(limits);
    for i in 0..(budget * 4) {
        let stream = 2 * i + 1;
        peer.get(stream);
        peer.expect_request(stream);
        peer.respond(stream, 200, b"done");
        // Crosses our END_STREAM: harmless, the response was finished.
        peer.rst(stream, ErrorCode::NoError);
    }
    peer.expect_no_connection_error();
}

// ----- CVE-2025-8671, MadeYouReset -----

#[test]
fn made_you_reset_with_zero_window_update_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_error_resets;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 64, "WINDOW_UPDATE 0 resets", |peer, round| {
        let stream = 2 * round - 1;
        peer.get(stream);
        // §6.9: a stream error PROTOCOL_ERROR, which we must answer with RST_STREAM.
        peer.window_update(stream, 0);
    });
}

#[test]
fn made_you_reset_answers_each_provocation_with_rst_until_budget() {
    let limits = defence_limits();
    let budget = limits.h2.max_error_resets as usize;
    let mut peer = Peer::connect(limits);
    peer.get(1);
    peer.window_update(1, 0);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    peer.expect_no_connection_error();
    rounds_until_goaway(&mut peer, |peer, round| {
        let stream = 2 * round + 1;
        peer.get(stream);
        peer.window_update(stream, 0);
    });
    let rsts = peer.count_written(is_rst);
    assert!(
        rsts <= budget + 2,
        "{rsts} RST_STREAM frames for a budget of {budget}"
    );
}

#[test]
fn made_you_reset_with_data_after_end_stream_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_error_resets;
    let peer = Peer::connect(limits);
    assert_flood_stopped(
        peer,
        budget,
        64,
        "DATA after END_STREAM resets",
        |peer, round| {
            let stream = 2 * round - 1;
            peer.get(stream);
            // §5.1 half-closed (remote): a stream error STREAM_CLOSED.
            peer.data(stream, b"x", false);
        },
    );
}

#[test]
fn stream_errors_over_the_connection_life_are_bounded() {
    let limits = defence_limits();
    let total = limits.h2.max_stream_errors_total;
    let window = limits.h2.flood_window;
    let mut peer = Peer::connect(limits);
    let mut stream = 1;
    let mut errors = 0;
    // Three errors per flood window stay under max_error_resets; the total does not.
    'windows: for _ in 0..20 {
        for _ in 0..3 {
            peer.headers(
                stream,
                &request_fields("GET", "/", &[("X-Upper", "1")]),
                true,
            );
            stream += 2;
            errors += 1;
            if !peer.goaways().is_empty() {
                break 'windows;
            }
        }
        peer.advance(window + secs(1));
    }
    assert_stopped_near(Some(errors), total, "stream errors total");
    peer.expect_connection_error(ErrorCode::EnhanceYourCalm);
}

// ----- CVE-2024-27316, CONTINUATION flood -----

#[test]
fn endless_continuation_frames_are_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_continuation_frames;
    let mut peer = Peer::connect(limits);
    let mut fields = get_fields("/");
    fields.push(("x-long".to_owned(), "v".repeat(2000)));
    let block = peer.block(&fields);
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..10),
    });
    assert_flood_stopped(peer, budget, 0, "CONTINUATION flood", |peer, round| {
        // The block is never decoded: its bytes only have to keep coming.
        let at = (10 * round as usize) % (block.len() - 10);
        peer.send(Frame::Continuation {
            stream: 1,
            end_headers: false,
            fragment: block.slice(at..at + 10),
        });
    });
}

#[test]
fn continuation_block_larger_than_max_head_size_is_stopped() {
    let mut limits = defence_limits();
    limits.max_head_size = 4096;
    limits.h2.max_continuation_frames = 10_000;
    let mut peer = Peer::connect(limits);
    let mut fields = get_fields("/");
    for i in 0..40 {
        fields.push((format!("x-field-{i}"), format!("{i}-").repeat(300)));
    }
    let block = peer.block(&fields);
    assert!(block.len() > 10_000, "block of {} bytes", block.len());
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..1000),
    });
    let taken = peer.taken;
    let rounds = rounds_until_goaway(&mut peer, |peer, round| {
        let at = (1000 * round as usize) % (block.len() - 1000);
        peer.send(Frame::Continuation {
            stream: 1,
            end_headers: false,
            fragment: block.slice(at..at + 1000),
        });
    });
    // 4096 bytes of block fit in 5 frames of 1000: the sixth at the latest crosses it.
    assert_stopped_near(rounds, 4, "encoded block size");
    assert!(
        peer.taken - taken <= 8 * 1009,
        "took {} bytes",
        peer.taken - taken
    );
    peer.expect_connection_error(ErrorCode::EnhanceYourCalm);
    assert!(!peer.saw_request(1));
}

// ----- HPACK bomb -----

/// The start of a raw request block: GET https://example.com/ with nothing indexed.
fn raw_get_block() -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x84]; // :method GET, :scheme https, :path /
    block.push(0x01); // literal without indexing, name :authority
    hpack_str(b"example.com", &mut block);
    block
}

/// A request whose block puts a 4 000-byte field into the dynamic table (index 62).
fn raw_block_that_indexes_big_field() -> Vec<u8> {
    let mut block = raw_get_block();
    hpack_int(0, 6, 0x40, &mut block); // literal with incremental indexing, new name
    hpack_str(b"x-bomb", &mut block);
    hpack_str(&[b'a'; 4000], &mut block);
    block
}

/// A 30-byte block that decodes to 20 copies of the indexed field: 80 kB of header list.
fn raw_bomb_block() -> Vec<u8> {
    let mut block = raw_get_block();
    block.extend(std::iter::repeat_n(0xbe, 20)); // indexed field 62
    block
}

fn hpack_bomb_peer() -> Peer {
    let mut limits = defence_limits();
    limits.max_head_size = 8192;
    let mut peer = Peer::connect(limits);
    peer.raw_headers(1, raw_block_that_indexes_big_field(), true);
    peer.expect_request(1);
    peer.respond(1, 200, b"");
    peer.out.clear();
    peer
}

#[test]
fn hpack_bomb_is_refused_and_connection_survives() {
    let mut peer = hpack_bomb_peer();
    peer.raw_headers(3, raw_bomb_block(), true);
    assert!(
        !peer.saw_request(3),
        "an 80 kB header list reached the application"
    );
    let answered_431 = peer.out.iter().any(|o| {
        matches!(o, Out::Headers { stream: 3, fields, .. }
            if fields.iter().any(|(n, v)| n == ":status" && v == "431"))
    });
    let reset = !peer.rsts_on(3).is_empty();
    assert!(
        answered_431 || reset,
        "bomb neither answered 431 nor reset: {:?}",
        peer.out
    );
    peer.expect_no_connection_error();
    // The table stayed in step: a plain request still decodes.
    peer.raw_headers(5, raw_get_block(), true);
    peer.expect_request(5);
}

#[test]
fn repeated_hpack_bombs_end_the_connection() {
    let mut peer = hpack_bomb_peer();
    let rounds = rounds_until_goaway(&mut peer, |peer, round| {
        peer.raw_headers(2 * round + 1, raw_bomb_block(), true);
    });
    let limits = defence_limits();
    let budget = limits
        .h2
        .max_error_resets
        .max(limits.h2.max_stream_errors_total);
    let rounds = rounds.expect("no GOAWAY after repeated HPACK bombs");
    assert!(rounds <= budget + 2, "GOAWAY after {rounds} bombs");
    peer.expect_connection_error(ErrorCode::EnhanceYourCalm);
    assert_eq!(peer.requests_seen(), 1);
}

// ----- control-frame floods -----

#[test]
fn settings_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_settings_frames;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 9, "SETTINGS flood", |peer, _| {
        peer.settings(&[(Settings::MAX_CONCURRENT_STREAMS, 100)]);
    });
}

#[test]
fn settings_flood_gets_no_more_acks_than_its_budget() {
    let limits = defence_limits();
    let budget = limits.h2.max_settings_frames as usize;
    let mut peer = Peer::connect(limits);
    let acks_before = peer.count_written(is_settings_ack);
    rounds_until_goaway(&mut peer, |peer, _| peer.settings(&[]));
    let acks = peer.count_written(is_settings_ack) - acks_before;
    assert!(
        acks <= budget + 2,
        "{acks} SETTINGS ACKs for a budget of {budget}"
    );
}

#[test]
fn ping_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_ping_frames;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 17, "PING flood", |peer, round| {
        peer.ping((round as u64).to_be_bytes());
    });
}

#[test]
fn pongs_do_not_pile_up_while_client_does_not_read() {
    let mut limits = defence_limits();
    limits.h2.max_ping_frames = u32::MAX;
    limits.max_buffered_output = 4096;
    let max_output = limits.max_buffered_output;
    let mut peer = Peer::connect(limits);
    peer.reading = false;
    let mut pings = 0u64;
    let mut refused = false;
    for _ in 0..100_000 {
        if peer.send(Frame::Ping {
            ack: false,
            data: pings.to_be_bytes(),
        }) == 0
        {
            refused = true;
            break;
        }
        pings += 1;
        assert!(
            peer.conn.pending_output() <= max_output + 1024,
            "{} bytes of output queued for a client that does not read",
            peer.conn.pending_output()
        );
    }
    assert!(
        refused,
        "took {pings} PINGs from a client that reads nothing"
    );
    assert!(
        !peer.conn.wants_read(),
        "refuses input but still wants to read"
    );
    // Once the client reads, input flows again and every PING is answered.
    peer.drain();
    assert!(peer.conn.wants_read());
    peer.flush();
    peer.drain();
    peer.expect_no_connection_error();
    let acks = peer.count_written(is_ping_ack) as u64;
    assert_eq!(acks, pings + 1, "every PING taken is answered");
}

#[test]
fn empty_data_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_empty_frames;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    assert_flood_stopped(peer, budget, 0, "empty DATA flood", |peer, _| {
        peer.data(1, b"", false);
    });
}

#[test]
fn empty_headers_continuation_flood_is_stopped() {
    let mut limits = defence_limits();
    limits.h2.max_continuation_frames = 10_000;
    let budget = limits.h2.max_empty_frames;
    let mut peer = Peer::connect(limits);
    let block = peer.block(&get_fields("/"));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block,
    });
    assert_flood_stopped(peer, budget, 0, "empty CONTINUATION flood", |peer, _| {
        peer.send(Frame::Continuation {
            stream: 1,
            end_headers: false,
            fragment: bytes::Bytes::new(),
        });
    });
}

#[test]
fn window_update_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_window_update_frames;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 0, "WINDOW_UPDATE flood", |peer, _| {
        peer.window_update(0, 1);
    });
}

#[test]
fn priority_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_priority_frames;
    let peer = Peer::connect(limits);
    assert_flood_stopped(peer, budget, 0, "PRIORITY flood", |peer, round| {
        // Each on a different idle stream: no state may be kept for them.
        peer.priority(2 * round + 1, 0);
    });
}

#[test]
fn priority_update_flood_is_stopped() {
    let limits = defence_limits();
    let budget = limits.h2.max_priority_frames;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    assert_flood_stopped(peer, budget, 0, "PRIORITY_UPDATE flood", |peer, round| {
        let value = format!("u={}", round % 8);
        peer.priority_update(1, &value);
    });
}

// ----- zero-window stall -----

#[test]
fn response_stalled_on_zero_stream_window_is_reset() {
    let mut limits = defence_limits();
    limits.h2.send_stall_timeout = secs(5);
    let mut peer = Peer::connect_with(limits, &[(Settings::INITIAL_WINDOW_SIZE, 0)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_data(1, &[b'x'; 100], true), Ok(0));
    peer.pump();
    let due = peer.conn.poll_timeout().expect("a stall timer");
    assert!(
        due <= peer.now + secs(5),
        "stall timer later than send_stall_timeout"
    );
    peer.advance(secs(4));
    assert!(peer.rsts_on(1).is_empty(), "stall reset early");
    peer.advance(secs(2));
    peer.expect_rst(1, ErrorCode::Cancel);
    assert_eq!(
        peer.conn.send_data(1, b"x", true),
        Err(SendError::StreamClosed)
    );
    peer.expect_no_connection_error();
}

#[test]
fn response_stalled_on_zero_connection_window_closes_connection() {
    let mut limits = defence_limits();
    limits.h2.send_stall_timeout = secs(5);
    let mut peer = Peer::connect_with(limits, &[(Settings::INITIAL_WINDOW_SIZE, 1 << 20)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let body = vec![b'x'; 70_000];
    let mut sent = 0;
    for _ in 0..100 {
        let taken = peer.conn.send_data(1, &body[sent..], true).unwrap();
        sent += taken;
        peer.pump();
        if taken == 0 {
            break;
        }
    }
    assert_eq!(
        sent, 65_535,
        "the connection window is 65 535 until a WINDOW_UPDATE"
    );
    peer.advance(secs(6));
    peer.expect_connection_error(ErrorCode::FlowControlError);
}

#[test]
fn slow_but_progressing_client_is_not_stalled() {
    let mut limits = defence_limits();
    limits.h2.send_stall_timeout = secs(5);
    let mut peer = Peer::connect_with(limits, &[(Settings::INITIAL_WINDOW_SIZE, 10)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let body = [b'y'; 100];
    let mut sent = 0;
    for _ in 0..20 {
        if sent == body.len() {
            break;
        }
        sent += peer.conn.send_data(1, &body[sent..], true).unwrap();
        peer.pump();
        peer.advance(secs(4));
        peer.window_update(1, 10);
    }
    assert_eq!(sent, body.len());
    assert!(peer.rsts_on(1).is_empty());
    peer.expect_no_connection_error();
}

// ----- output bound -----

#[test]
fn send_data_is_bounded_by_output_buffer_when_client_does_not_read() {
    let mut limits = defence_limits();
    limits.max_buffered_output = 8192;
    let mut peer = Peer::connect_with(limits, &[(Settings::INITIAL_WINDOW_SIZE, 1 << 20)]);
    peer.window_update(0, 1 << 20);
    peer.get(1);
    peer.expect_request(1);
    peer.reading = false;
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let body = vec![b'z'; 500_000];
    let mut sent = 0;
    for _ in 0..100 {
        let taken = peer.conn.send_data(1, &body[sent..], true).unwrap();
        sent += taken;
        if taken == 0 {
            break;
        }
    }
    assert!(sent < body.len(), "took the whole body with nobody reading");
    assert!(
        peer.conn.pending_output() <= 8192 + 16_384 + 64,
        "{} bytes queued",
        peer.conn.pending_output()
    );
    peer.drain();
    assert!(
        peer.conn.send_capacity(1) > 0,
        "no room after the client read"
    );
}

// ----- stream identifiers -----

#[test]
fn stream_after_the_last_identifier_is_protocol_error() {
    let mut peer = Peer::connect(defence_limits());
    peer.get(0x7fff_ffff);
    peer.expect_request(0x7fff_ffff);
    peer.respond(0x7fff_ffff, 200, b"");
    peer.expect_no_connection_error();
    // No odd identifier is left above 2^31-1; anything else goes backwards (§5.1.1).
    peer.get(1);
    peer.expect_connection_error(ErrorCode::ProtocolError);
    assert!(!peer.saw_request(1));
}

#[test]
fn max_streams_per_connection_sends_goaway_and_drains() {
    let mut limits = defence_limits();
    limits.h2.max_streams_per_connection = 3;
    let mut peer = Peer::connect(limits);
    for stream in [1, 3, 5] {
        peer.get(stream);
        peer.expect_request(stream);
    }
    peer.get(7);
    assert!(
        !peer.saw_request(7),
        "served a stream past max_streams_per_connection"
    );
    let goaways = peer.goaways();
    assert!(
        !goaways.is_empty(),
        "no GOAWAY at max_streams_per_connection"
    );
    assert!(goaways.iter().all(|(_, code)| *code == ErrorCode::NoError));
    assert!(
        !peer.conn.is_closed(),
        "closed before the open streams finished"
    );
    for stream in [1, 3, 5] {
        peer.respond(stream, 200, b"ok");
        assert_eq!(peer.take_data(stream).0, b"ok");
    }
    peer.drain();
    assert_eq!(peer.goaways().last().map(|g| g.0), Some(5));
    assert!(peer.conn.is_closed(), "not closed after draining");
}

// ----- a slow application -----

#[test]
fn input_stops_while_the_application_takes_no_events() {
    let mut limits = defence_limits();
    limits.max_buffered_input = 4096;
    limits.h2.max_concurrent_streams = 10_000;
    let mut peer = Peer::connect(limits);
    peer.polling = false;
    let mut offered = 0;
    for i in 0..2000u32 {
        let stream = 2 * i + 1;
        peer.get(stream);
        offered += 1;
        if peer.backlog_len() > 0 {
            break;
        }
    }
    assert!(
        peer.backlog_len() > 0,
        "took {offered} requests while the application took no event"
    );
    // Buffered input is bounded by max_buffered_input, or one whole frame when that is larger
    // (a frame must fit to be decoded); a few requests were handled before the queue filled.
    let (max_buffered_input, max_frame) = (4096usize, 16_384usize + 9);
    let buffered_bound = max_buffered_input.max(max_frame);
    assert!(
        peer.taken < buffered_bound + 2048,
        "took {} bytes",
        peer.taken
    );
    // The application catches up: everything is served in order.
    peer.polling = true;
    for _ in 0..100 {
        peer.pump();
        peer.events.clear();
        if peer.flush() == 0 && peer.backlog_len() == 0 {
            break;
        }
    }
    assert_eq!(peer.backlog_len(), 0);
    assert_eq!(peer.requests_seen(), offered);
    peer.expect_no_connection_error();
}

#[test]
fn settings_acks_do_not_pile_up_while_client_does_not_read() {
    let mut limits = defence_limits();
    limits.h2.max_settings_frames = u32::MAX;
    limits.max_buffered_output = 2048;
    let mut peer = Peer::connect(limits);
    peer.reading = false;
    let mut sent = 0;
    for _ in 0..100_000 {
        if peer.send(Frame::Settings {
            ack: false,
            settings: Settings::new(),
        }) == 0
        {
            break;
        }
        sent += 1;
        assert!(
            peer.conn.pending_output() <= 2048 + 1024,
            "{} bytes of SETTINGS ACKs queued",
            peer.conn.pending_output()
        );
    }
    assert!(
        sent < 100_000,
        "took every SETTINGS from a client that reads nothing"
    );
    peer.drain();
    peer.expect_no_connection_error();
}
