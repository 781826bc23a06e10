use super::*;

const B: &str = "XyZ-boundary";

/// Events with the data of each part joined, so that splits compare equal.
#[derive(Debug, PartialEq)]
enum Seen {
    Start(PartHead),
    Data(Vec<u8>),
    End,
    Finished,
}

/// Feeds `body` in pieces of `step` bytes, then EOF; returns what came out and the error.
fn parse_with(
    limits: MultipartLimits,
    body: &[u8],
    step: usize,
) -> (Vec<Seen>, Option<MultipartError>) {
    let mut parser = Parser::new(B, limits).unwrap();
    let mut seen = Vec::new();
    let mut unread = body;
    for _ in 0..10 * body.len() + 10 {
        let offer = &unread[..step.min(unread.len())];
        let taken = parser.receive(offer);
        assert!(taken <= parser.capacity);
        unread = &unread[taken..];
        if unread.is_empty() {
            parser.receive_eof();
        }
        while let Some(event) = parser.poll_event() {
            match event {
                Ok(Event::PartStart(head)) => seen.push(Seen::Start(head)),
                Ok(Event::Data(data)) => {
                    assert!(!data.is_empty());
                    match seen.last_mut() {
                        Some(Seen::Data(joined)) => joined.extend_from_slice(&data),
                        _ => seen.push(Seen::Data(data.to_vec())),
                    }
                }
                Ok(Event::PartEnd) => seen.push(Seen::End),
                Ok(Event::End) => seen.push(Seen::Finished),
                Err(error) => return (seen, Some(error)),
            }
        }
        if parser.is_finished() {
            return (seen, None);
        }
    }
    panic!("the parser made no progress");
}

/// Parses with every split size from 1 to 7 and whole; all must agree.
fn parse(limits: MultipartLimits, body: &[u8]) -> (Vec<Seen>, Option<MultipartError>) {
    let whole = parse_with(limits.clone(), body, usize::MAX);
    for step in 1..8 {
        assert_eq!(
            parse_with(limits.clone(), body, step),
            whole,
            "split every {step} bytes"
        );
    }
    whole
}

fn ok(body: &[u8]) -> Vec<Seen> {
    let (seen, error) = parse(MultipartLimits::default(), body);
    assert_eq!(error, None, "{seen:?}");
    seen
}

fn err(limits: MultipartLimits, body: &[u8]) -> MultipartError {
    let (_, error) = parse(limits, body);
    error.expect("an error")
}

fn head(
    name: &str,
    filename: Option<&str>,
    content_type: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        name.to_owned(),
        filename.map(str::to_owned),
        content_type.map(str::to_owned),
    )
}

fn heads(seen: &[Seen]) -> Vec<(String, Option<String>, Option<String>)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Start(h) => Some((h.name.clone(), h.filename.clone(), h.content_type.clone())),
            _ => None,
        })
        .collect()
}

fn datas(seen: &[Seen]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in seen {
        match s {
            Seen::Start(_) => out.push(Vec::new()),
            Seen::Data(d) => out.last_mut().unwrap().extend_from_slice(d),
            _ => {}
        }
    }
    out
}

fn field(name: &str, body: &str) -> String {
    format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{body}\r\n")
}

fn close() -> String {
    format!("--{B}--\r\n")
}

#[test]
fn parses_fields_and_files() {
    let body = format!(
        "{}--{B}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nfile\r\ncontents\r\n{}",
        field("title", "hello"),
        close()
    );
    let seen = ok(body.as_bytes());
    assert_eq!(
        heads(&seen),
        [
            head("title", None, None),
            head("upload", Some("a.txt"), Some("text/plain"))
        ]
    );
    assert_eq!(
        datas(&seen),
        [b"hello".to_vec(), b"file\r\ncontents".to_vec()]
    );
    assert!(matches!(seen.last(), Some(Seen::Finished)));
    let Seen::Start(h) = &seen[3] else { panic!() };
    assert!(h.is_file());
    assert_eq!(h.headers.get("content-type").unwrap(), "text/plain");
}

#[test]
fn empty_part_body_has_no_data_event() {
    let seen = ok(format!("{}{}", field("empty", ""), close()).as_bytes());
    assert_eq!(seen.len(), 3);
    assert!(matches!(seen[1], Seen::End));
}

#[test]
fn ignores_preamble_and_epilogue() {
    let body = format!(
        "preamble --{B} text\r\n{}{}epilogue --{B}-- junk",
        field("a", "1"),
        close()
    );
    assert_eq!(datas(&ok(body.as_bytes())), [b"1".to_vec()]);
    // A preamble that is just CRLF.
    let body = format!("\r\n{}{}", field("a", "1"), close());
    assert_eq!(datas(&ok(body.as_bytes())), [b"1".to_vec()]);
}

#[test]
fn close_without_final_crlf_and_zero_parts_are_accepted() {
    let body = format!("{}--{B}--", field("a", "1"));
    assert_eq!(datas(&ok(body.as_bytes())), [b"1".to_vec()]);
    assert_eq!(ok(format!("--{B}--").as_bytes()), [Seen::Finished]);
}

#[test]
fn accepts_transport_padding_after_a_boundary() {
    let body = format!(
        "--{B} \t \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--{B}--  \r\n"
    );
    assert_eq!(datas(&ok(body.as_bytes())), [b"1".to_vec()]);
}

#[test]
fn body_may_hold_delimiter_look_alikes() {
    let tricky = format!("\r\n--XyZ-\r\n-{B}\r\r\n--XyZ-boundar\r--{B}x\n--{B}");
    // The body must not hold the delimiter itself: CRLF "--" boundary. These come close.
    let tricky = tricky.replace(&format!("\r\n--{B}"), "");
    let body = format!("{}{}", field("a", &tricky), close());
    assert_eq!(datas(&ok(body.as_bytes())), [tricky.as_bytes().to_vec()]);
    // A body ending in a prefix of the delimiter.
    let body = format!("{}{}", field("a", "x\r\n--XyZ"), close());
    assert_eq!(datas(&ok(body.as_bytes())), [b"x\r\n--XyZ".to_vec()]);
}

#[test]
fn streams_a_part_body_without_buffering_it_whole() {
    let big = "z".repeat(10_000);
    let body = format!("{}{}", field("a", &big), close());
    let mut parser = Parser::new(B, MultipartLimits::default()).unwrap();
    let head_len = body.find("zzz").unwrap();
    assert_eq!(
        parser.receive(&body.as_bytes()[..head_len + 5000]),
        head_len + 5000
    );
    assert!(matches!(parser.poll_event(), Some(Ok(Event::PartStart(_)))));
    match parser.poll_event() {
        Some(Ok(Event::Data(data))) => assert_eq!(data.len(), 5000),
        other => panic!("{other:?}"),
    }
    assert_eq!(parser.poll_event(), None);
}

#[test]
fn holds_back_only_a_possible_delimiter_prefix() {
    let mut parser = Parser::new(B, MultipartLimits::default()).unwrap();
    let start = format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc\r\n--XyZ");
    parser.receive(start.as_bytes());
    assert!(matches!(parser.poll_event(), Some(Ok(Event::PartStart(_)))));
    assert_eq!(
        parser.poll_event(),
        Some(Ok(Event::Data(Bytes::from_static(b"abc"))))
    );
    assert_eq!(parser.poll_event(), None);
    // Not the delimiter after all: the held-back bytes are data.
    parser.receive(b"!");
    assert_eq!(
        parser.poll_event(),
        Some(Ok(Event::Data(Bytes::from_static(b"\r\n--XyZ!"))))
    );
}

#[test]
fn reads_quoted_names_with_escapes() {
    let body = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"a\\\"b;c\"; filename=\"C:\\\\x.txt\"\r\n\r\n1\r\n{}",
        close()
    );
    assert_eq!(
        heads(&ok(body.as_bytes())),
        [head("a\"b;c", Some("C:\\x.txt"), None)]
    );
}

#[test]
fn prefers_extended_filename() {
    let body = format!(
        "--{B}\r\ncontent-disposition: FORM-DATA; name=files; filename=\"fallback.txt\"; \
         filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt\r\n\r\n1\r\n{}",
        close()
    );
    assert_eq!(
        heads(&ok(body.as_bytes())),
        [head("files", Some("naïve €.txt"), None)]
    );
    let latin1 = format!(
        "--{B}\r\nContent-Disposition: form-data; name=f; filename*=iso-8859-1'en'caf%E9\r\n\r\n1\r\n{}",
        close()
    );
    assert_eq!(
        heads(&ok(latin1.as_bytes())),
        [head("f", Some("café"), None)]
    );
}

#[test]
fn keeps_raw_utf8_filenames() {
    let body = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"ünï.txt\"\r\n\r\n1\r\n{}",
        close()
    );
    assert_eq!(
        heads(&ok(body.as_bytes())),
        [head("f", Some("ünï.txt"), None)]
    );
}

fn with_disposition(disposition: &str) -> String {
    format!(
        "--{B}\r\nContent-Disposition: {disposition}\r\n\r\n1\r\n{}",
        close()
    )
}

#[test]
fn rejects_a_part_without_name() {
    let body = with_disposition("form-data; filename=\"a\"");
    assert_eq!(
        err(MultipartLimits::default(), body.as_bytes()),
        MultipartError::MissingName
    );
}

#[test]
fn rejects_malformed_dispositions() {
    for disposition in [
        "attachment; name=\"a\"",
        "form-data; name=\"a\"; name=\"b\"",
        "form-data; name=\"a",
        "form-data; name=",
        "form-data; name \"a\"",
        "form-data name=a",
        "form-data; name=a; filename*=UTF-8''%ZZ",
        "form-data; name=a; filename*=koi8-r''x",
        "form-data; name=a; filename*=UTF-8''%FF",
    ] {
        assert_eq!(
            err(
                MultipartLimits::default(),
                with_disposition(disposition).as_bytes()
            ),
            MultipartError::MalformedContentDisposition,
            "{disposition}"
        );
    }
}

#[test]
fn rejects_a_part_without_content_disposition() {
    let body = format!("--{B}\r\nContent-Type: text/plain\r\n\r\n1\r\n{}", close());
    assert_eq!(
        err(MultipartLimits::default(), body.as_bytes()),
        MultipartError::MissingContentDisposition
    );
    let body = format!("--{B}\r\n\r\n1\r\n{}", close());
    assert_eq!(
        err(MultipartLimits::default(), body.as_bytes()),
        MultipartError::MissingContentDisposition
    );
}

#[test]
fn rejects_bare_line_feeds_and_malformed_headers() {
    for section in [
        "Content-Disposition: form-data; name=a\nX: y\r\n\r\n",
        "Content-Disposition: form-data; name=a\r\n\n\r\n\r\n",
        "Content-Disposition: form-data; name=a\r\nbad header\r\n\r\n",
        "Content-Disposition: form-data; name=a\r\n folded\r\n\r\n",
    ] {
        let body = format!("--{B}\r\n{section}1\r\n{}", close());
        assert_eq!(
            err(MultipartLimits::default(), body.as_bytes()),
            MultipartError::MalformedHeaders,
            "{section:?}"
        );
    }
}

#[test]
fn rejects_malformed_delimiter_lines() {
    for after in ["x\r\n", "-x", " -- \r\n", " x\r\n", "\rx"] {
        let body = format!("{}--{B}{after}", field("a", "1"));
        assert_eq!(
            err(MultipartLimits::default(), body.as_bytes()),
            MultipartError::MalformedDelimiter,
            "{after:?}"
        );
    }
}

#[test]
fn rejects_a_body_that_ends_early() {
    for cut in [
        "",
        "--XyZ",
        "no boundary at all",
        &field("a", "1"),
        &format!("--{B}\r\nContent-Disp"),
    ] {
        assert_eq!(
            err(MultipartLimits::default(), cut.as_bytes()),
            MultipartError::UnexpectedEof,
            "{cut:?}"
        );
    }
}

#[test]
fn validates_boundaries() {
    assert_eq!(validate_boundary("a"), Ok(()));
    assert_eq!(validate_boundary(&"a".repeat(70)), Ok(()));
    assert_eq!(
        validate_boundary("gc0p4Jq0M2Yt08jU534c0p'()+_,-./:=? x"),
        Ok(())
    );
    for bad in [
        "",
        &"a".repeat(71),
        "ends in space ",
        "semi;colon",
        "quote\"",
        "crlf\r\n",
        "é",
    ] {
        assert_eq!(
            validate_boundary(bad),
            Err(MultipartError::InvalidBoundary),
            "{bad:?}"
        );
        assert!(Parser::new(bad, MultipartLimits::default()).is_err());
    }
}

#[test]
fn finds_the_boundary_in_a_content_type() {
    let cases = [
        ("multipart/form-data; boundary=abc", "abc"),
        ("Multipart/Form-Data;boundary=abc", "abc"),
        (
            "multipart/form-data; charset=utf-8; BOUNDARY=\"a b:c\"",
            "a b:c",
        ),
        ("multipart/form-data ; boundary = abc ;", "abc"),
        ("multipart/form-data; boundary=\"q\\\"\"", "q\""),
    ];
    for (value, boundary) in cases {
        let found = boundary_from_content_type(value);
        if boundary.contains('"') {
            assert_eq!(found, Err(MultipartError::InvalidBoundary));
        } else {
            assert_eq!(found.as_deref(), Ok(boundary), "{value}");
        }
    }
    let errors = [
        ("application/json", MultipartError::NotFormData),
        ("multipart/mixed; boundary=abc", MultipartError::NotFormData),
        ("multipart/form-data", MultipartError::MissingBoundary),
        (
            "multipart/form-data; boundary=abc; boundary=abc",
            MultipartError::MalformedContentType,
        ),
        (
            "multipart/form-data; boundary=\"unterminated",
            MultipartError::MalformedContentType,
        ),
        (
            "multipart/form-data; boundary=\"\"",
            MultipartError::InvalidBoundary,
        ),
        ("", MultipartError::MalformedContentType),
        ("multipart", MultipartError::MalformedContentType),
    ];
    for (value, error) in errors {
        assert_eq!(boundary_from_content_type(value), Err(error), "{value}");
    }
}

#[test]
fn limit_header_bytes() {
    let limits = MultipartLimits {
        max_header_bytes: 100,
        ..Default::default()
    };
    let fits = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nX: {}\r\n\r\n1\r\n{}",
        "y".repeat(40),
        close()
    );
    assert_eq!(parse(limits.clone(), fits.as_bytes()).1, None);
    let long = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nX: {}\r\n\r\n1\r\n{}",
        "y".repeat(60),
        close()
    );
    assert_eq!(
        err(limits.clone(), long.as_bytes()),
        MultipartError::HeadersTooLarge
    );
    // Endless padding after the boundary counts towards the head.
    let padded = format!("--{B}{}", " ".repeat(200));
    assert_eq!(
        err(limits.clone(), padded.as_bytes()),
        MultipartError::HeadersTooLarge
    );
    // A header section that never ends.
    let endless = format!("--{B}\r\nX: {}", "y".repeat(500));
    assert_eq!(
        err(limits, endless.as_bytes()),
        MultipartError::HeadersTooLarge
    );
}

#[test]
fn limit_headers_per_part() {
    let limits = MultipartLimits {
        max_headers: 3,
        ..Default::default()
    };
    let section = |n: usize| {
        let mut s = "Content-Disposition: form-data; name=a\r\n".to_owned();
        for i in 1..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        format!("--{B}\r\n{s}\r\n1\r\n{}", close())
    };
    assert_eq!(parse(limits.clone(), section(3).as_bytes()).1, None);
    assert_eq!(
        err(limits, section(4).as_bytes()),
        MultipartError::TooManyHeaders
    );
}

#[test]
fn limit_parts() {
    let limits = MultipartLimits {
        max_parts: 3,
        ..Default::default()
    };
    let body = |n: usize| format!("{}{}", field("a", "1").repeat(n), close());
    assert_eq!(datas(&parse(limits.clone(), body(3).as_bytes()).0).len(), 3);
    let (seen, error) = parse(limits, body(4).as_bytes());
    assert_eq!(error, Some(MultipartError::TooManyParts));
    assert_eq!(datas(&seen).len(), 3);
}

#[test]
fn limit_field_bytes() {
    let limits = MultipartLimits {
        max_field_bytes: 10,
        ..Default::default()
    };
    let fits = format!("{}{}", field("a", "0123456789"), close());
    assert_eq!(parse(limits.clone(), fits.as_bytes()).1, None);
    let long = format!("{}{}", field("a", "0123456789A"), close());
    let (seen, error) = parse(limits.clone(), long.as_bytes());
    assert_eq!(error, Some(MultipartError::FieldTooLarge));
    // Exactly the allowed bytes came out, whatever the split.
    assert_eq!(datas(&seen), [b"0123456789".to_vec()]);
    // Files are not fields.
    let file = format!(
        "--{B}\r\nContent-Disposition: form-data; name=a; filename=f\r\n\r\n0123456789A\r\n{}",
        close()
    );
    assert_eq!(parse(limits, file.as_bytes()).1, None);
}

#[test]
fn limit_file_bytes() {
    let limits = MultipartLimits {
        max_file_bytes: 10,
        ..Default::default()
    };
    let file = |body: &str| {
        format!(
            "--{B}\r\nContent-Disposition: form-data; name=a; filename=\"\"\r\n\r\n{body}\r\n{}",
            close()
        )
    };
    assert_eq!(parse(limits.clone(), file("0123456789").as_bytes()).1, None);
    let (seen, error) = parse(limits.clone(), file(&"x".repeat(1000)).as_bytes());
    assert_eq!(error, Some(MultipartError::FileTooLarge));
    assert_eq!(datas(&seen), [b"xxxxxxxxxx".to_vec()]);
    // Fields are not files.
    assert_eq!(
        parse(
            limits,
            format!("{}{}", field("a", "0123456789A"), close()).as_bytes()
        )
        .1,
        None
    );
}

#[test]
fn limit_total_bytes() {
    let body = format!("{}{}{}", field("a", "12345"), field("b", "67890"), close());
    let exact = MultipartLimits {
        max_total_bytes: body.len() as u64,
        ..Default::default()
    };
    assert_eq!(parse(exact, body.as_bytes()).1, None);
    // The epilogue is not read, so it does not count.
    let exact = MultipartLimits {
        max_total_bytes: body.len() as u64,
        ..Default::default()
    };
    assert_eq!(parse(exact, format!("{body}epilogue").as_bytes()).1, None);
    let short = MultipartLimits {
        max_total_bytes: body.len() as u64 - 3,
        ..Default::default()
    };
    let (seen, error) = parse(short, body.as_bytes());
    assert_eq!(error, Some(MultipartError::BodyTooLarge));
    assert_eq!(datas(&seen), [b"12345".to_vec(), b"67890".to_vec()]);
    // Over the limit with a buffer smaller than the limit: every byte within the limit is
    // parsed first, so a malformed byte there wins, whatever the split (found by fuzzing).
    let small = MultipartLimits {
        max_total_bytes: 300,
        max_buffered_input: 8,
        max_header_bytes: 64,
        ..Default::default()
    };
    let malformed = format!("{}--{B}x{}", field("a", &"y".repeat(100)), "z".repeat(400));
    assert_eq!(
        err(small.clone(), malformed.as_bytes()),
        MultipartError::MalformedDelimiter
    );
    let long = field("a", &"y".repeat(400));
    assert_eq!(err(small, long.as_bytes()), MultipartError::BodyTooLarge);
    // An endless preamble is bounded too.
    let limits = MultipartLimits {
        max_total_bytes: 1000,
        ..Default::default()
    };
    assert_eq!(err(limits, &[b'p'; 5000]), MultipartError::BodyTooLarge);
}

#[test]
fn limit_buffered_input() {
    let limits = MultipartLimits {
        max_buffered_input: 100,
        max_header_bytes: 50,
        ..Default::default()
    };
    let mut parser = Parser::new(B, limits.clone()).unwrap();
    let body = format!("{}{}", field("a", &"x".repeat(1000)), close());
    assert_eq!(parser.receive(body.as_bytes()), 100);
    assert_eq!(
        parser.receive(body.as_bytes()),
        0,
        "full until events are drained"
    );
    while parser.poll_event().is_some() {}
    assert!(parser.receive(&body.as_bytes()[100..]) > 0);
    // Whatever the split, the whole body parses within that buffer.
    assert_eq!(
        datas(&parse(limits, body.as_bytes()).0),
        ["x".repeat(1000).into_bytes()]
    );
}

#[test]
fn errors_map_to_status_codes() {
    assert_eq!(
        MultipartError::MissingName.status(),
        http::StatusCode::BAD_REQUEST
    );
    assert_eq!(
        MultipartError::UnexpectedEof.status(),
        http::StatusCode::BAD_REQUEST
    );
    assert_eq!(
        MultipartError::NotFormData.status(),
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    for limit in [
        MultipartError::HeadersTooLarge,
        MultipartError::TooManyHeaders,
        MultipartError::TooManyParts,
        MultipartError::FieldTooLarge,
        MultipartError::FileTooLarge,
        MultipartError::BodyTooLarge,
    ] {
        assert_eq!(limit.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(limit.to_string().contains("413"));
    }
}

#[test]
fn finished_parser_ignores_further_input() {
    let mut parser = Parser::new(B, MultipartLimits::default()).unwrap();
    let body = format!("{}{}", field("a", "1"), close());
    assert_eq!(parser.receive(body.as_bytes()), body.len());
    while let Some(event) = parser.poll_event() {
        event.unwrap();
    }
    assert!(parser.is_finished());
    assert_eq!(parser.receive(b"more"), 4);
    assert_eq!(parser.poll_event(), None);
}
