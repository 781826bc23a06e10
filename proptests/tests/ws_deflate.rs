//! permessage-deflate (RFC 7692) properties: whatever both endpoints are configured with, the
//! client's offer, our server's answer and the client's check agree on one set of parameters;
//! with them, any sequence of messages, cut into frames anywhere, comes back intact in both
//! directions; and arbitrary bytes never make the decompressor panic or exceed its bound.

use proptest::collection::vec;
use proptest::prelude::*;
use weft_core::ws::deflate::{
    Compressor, Decompressor, DeflateConfig, DeflateError, Side, WindowBits, accept_offers,
    accept_response,
};

// ----- generators -----

fn window_bits() -> impl Strategy<Value = WindowBits> {
    (8u8..=15).prop_map(|n| WindowBits::new(n).unwrap_or(WindowBits::MAX))
}

fn config() -> impl Strategy<Value = DeflateConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        window_bits(),
        window_bits(),
        0u32..=9,
    )
        .prop_map(
            |(server_nct, client_nct, server_bits, client_bits, level)| {
                let mut config = DeflateConfig::default();
                config.server_no_context_takeover = server_nct;
                config.client_no_context_takeover = client_nct;
                config.server_max_window_bits = server_bits;
                config.client_max_window_bits = client_bits;
                config.compression_level = level;
                config
            },
        )
}

/// Messages that compress well (repeats of a small alphabet), badly (any bytes), or not at all
/// (empty), so back references across messages and stored blocks both occur.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(prop::sample::select(b"ab cd\n".to_vec()), 0..3000),
        vec(any::<u8>(), 0..600),
        Just(Vec::new()),
        (vec(any::<u8>(), 1..40), 1usize..200).prop_map(|(unit, times)| unit.repeat(times)),
    ]
}

/// Where to cut each compressed payload into frames (fractions of its length).
fn cuts() -> impl Strategy<Value = Vec<u16>> {
    vec(any::<u16>(), 0..4)
}

// ----- helpers -----

/// Splits `payload` at the positions `cuts` name and feeds it frame by frame.
fn deliver(
    decompressor: &mut Decompressor,
    payload: &[u8],
    cuts: &[u16],
) -> Result<Vec<u8>, DeflateError> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| payload.len() * usize::from(*c) / usize::from(u16::MAX))
        .collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for point in points {
        decompressor.decompress(&payload[start..point], false, &mut out)?;
        start = point;
    }
    decompressor.decompress(&payload[start..], true, &mut out)?;
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn negotiation_agrees_and_messages_round_trip_both_ways(
        client_config in config(),
        server_config in config(),
        messages in vec((message(), cuts()), 1..8),
    ) {
        let offer = client_config.offer();
        let accepted = accept_offers(&server_config, [offer.as_str()])
            .expect("our offer parses")
            .expect("our server accepts every valid offer");
        let params = accept_response(&client_config, [accepted.response.as_str()])
            .expect("our client accepts our server's answer")
            .expect("compression agreed");
        prop_assert_eq!(params, accepted.params);

        let mut to_client = params.compressor(Side::Server, server_config.compression_level);
        let mut at_client = params.decompressor(Side::Client, 1 << 20);
        let mut to_server = params.compressor(Side::Client, client_config.compression_level);
        let mut at_server = params.decompressor(Side::Server, 1 << 20);
        for (message, cuts) in &messages {
            let mut down = Vec::new();
            to_client.compress(message, &mut down).expect("compresses");
            prop_assert!(down.len() <= Compressor::max_compressed_len(message.len()));
            prop_assert_eq!(&deliver(&mut at_client, &down, cuts).expect("inflates"), message);
            let mut up = Vec::new();
            to_server.compress(message, &mut up).expect("compresses");
            prop_assert_eq!(&deliver(&mut at_server, &up, cuts).expect("inflates"), message);
        }
    }

    #[test]
    fn compressing_frame_by_frame_round_trips(
        window in window_bits(),
        no_context_takeover in any::<bool>(),
        messages in vec((message(), cuts()), 1..6),
    ) {
        let mut compressor =
            Compressor::new(6, window, no_context_takeover);
        let mut decompressor = Decompressor::new(window, no_context_takeover, 1 << 20);
        for (message, cuts) in &messages {
            let mut points: Vec<usize> = cuts
                .iter()
                .map(|c| message.len() * usize::from(*c) / usize::from(u16::MAX))
                .collect();
            points.sort_unstable();
            points.push(message.len());
            let mut out = Vec::new();
            let mut start = 0;
            let last = points.len() - 1;
            for (i, point) in points.into_iter().enumerate() {
                let mut frame = Vec::new();
                compressor
                    .compress_part(&message[start..point], i == last, &mut frame)
                    .expect("compresses");
                decompressor.decompress(&frame, i == last, &mut out).expect("inflates");
                start = point;
            }
            prop_assert_eq!(&out, message);
        }
    }

    #[test]
    fn arbitrary_payloads_never_exceed_the_bound(
        payloads in vec((vec(any::<u8>(), 0..300), any::<bool>()), 1..6),
        limit in 0usize..2000,
    ) {
        let mut decompressor = Decompressor::new(WindowBits::MAX, false, limit);
        let mut out = Vec::new();
        for (payload, fin) in &payloads {
            match decompressor.decompress(payload, *fin, &mut out) {
                Ok(()) => {}
                Err(DeflateError::MessageTooBig { limit: reported }) => {
                    prop_assert_eq!(reported, limit);
                    break;
                }
                Err(_) => break,
            }
            prop_assert!(decompressor.message_len() <= limit);
            if *fin {
                prop_assert!(out.len() <= limit);
                out.clear();
            }
        }
        prop_assert!(out.len() <= limit);
    }
}
