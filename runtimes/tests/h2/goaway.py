#!/usr/bin/env python3
"""HTTP/2 connection errors and graceful close (RFC 9113 §5.4.1, §6.8).

    python3 goaway.py HOST PORT [--tls] [--case NAME]...

Connection errors: each case breaks a connection rule once the handshake is done, and expects
GOAWAY with the right error code, then the server closing the connection.
  data-on-stream-0             DATA on stream 0 (§6.1): PROTOCOL_ERROR.
  settings-bad-length          SETTINGS whose length is not a multiple of 6 (§6.5):
                               FRAME_SIZE_ERROR.
  ping-bad-length              PING of 7 bytes (§6.7): FRAME_SIZE_ERROR.
  window-update-zero           WINDOW_UPDATE of 0 on the connection (§6.9): PROTOCOL_ERROR.
  headers-on-even-stream       HEADERS on stream 2, which a client may not open (§5.1.1):
                               PROTOCOL_ERROR.
  continuation-without-headers CONTINUATION with no HEADERS before it (§6.10): PROTOCOL_ERROR.
  headers-over-max-frame-size  HEADERS longer than the server's SETTINGS_MAX_FRAME_SIZE (§4.2):
                               FRAME_SIZE_ERROR.

Graceful close:
  client-goaway                The client sends GOAWAY NO_ERROR while its request body is half
                               sent: the stream still completes (its echo comes back whole).
  server-shutdown              (not run by default: the caller shuts the server down) A POST is
                               in flight; the script prints `READY` and waits for the server's
                               GOAWAY NO_ERROR, whose last stream id must cover the stream; it
                               then finishes the body, gets the whole echo, and sees the server
                               close the connection.
"""

import struct

import hpack

import client
from client import (CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING,
                    SETTINGS, WINDOW_UPDATE, ErrorCodes, Failure, SettingCodes, frame)


def violation(args, data, code, what):
    c = client.client(args)
    c.handshake()
    c.send_raw(data)
    c.expect_goaway(code, what)
    c.close()


def header_block(c, path):
    """A valid request header block from a fresh HPACK encoder (the connection dies anyway)."""
    return hpack.Encoder().encode([
        (b":method", b"GET"), (b":scheme", b"https" if c.tls else b"http"),
        (b":authority", c.authority.encode()), (b":path", path.encode()),
    ])


def data_on_stream_0(args):
    violation(args, frame(DATA, 0, 0, b"x"), ErrorCodes.PROTOCOL_ERROR, "DATA on stream 0")


def settings_bad_length(args):
    violation(args, frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00"), ErrorCodes.FRAME_SIZE_ERROR,
              "a 5-byte SETTINGS frame")


def ping_bad_length(args):
    violation(args, frame(PING, 0, 0, b"1234567"), ErrorCodes.FRAME_SIZE_ERROR, "a 7-byte PING")


def window_update_zero(args):
    violation(args, frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)), ErrorCodes.PROTOCOL_ERROR,
              "WINDOW_UPDATE of 0 on stream 0")


def headers_on_even_stream(args):
    c = client.client(args)
    c.handshake()
    c.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, 2, header_block(c, "/plaintext")))
    c.expect_goaway(ErrorCodes.PROTOCOL_ERROR, "HEADERS on stream 2")
    c.close()


def continuation_without_headers(args):
    c = client.client(args)
    c.handshake()
    c.send_raw(frame(CONTINUATION, END_HEADERS, 1, header_block(c, "/plaintext")))
    c.expect_goaway(ErrorCodes.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
    c.close()


def headers_over_max_frame_size(args):
    c = client.client(args)
    c.handshake()
    limit = c.server_settings.get(SettingCodes.MAX_FRAME_SIZE, 16384)
    # A valid block, padded past the limit by a long field value.
    block = hpack.Encoder().encode([
        (b":method", b"GET"), (b":scheme", b"https" if c.tls else b"http"),
        (b":authority", c.authority.encode()), (b":path", b"/plaintext"),
        (b"x-filler", b"f" * (limit + 1)),
    ], huffman=False)
    c.send_raw(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    c.expect_goaway(ErrorCodes.FRAME_SIZE_ERROR,
                    "a %d-byte HEADERS frame over SETTINGS_MAX_FRAME_SIZE %d" % (len(block), limit))
    c.close()


def start_upload(c, first):
    """Opens POST /echo and sends `first`, leaving the body unfinished; its stream id."""
    sid = c.request("POST", "/echo", [("content-type", "text/plain")], end_stream=False)
    c.send_body(sid, first, end_stream=False)
    c.wait(lambda: bytes(c.stream(sid).data) == first or c.stream(sid).done(),
           "the echo of the first part of stream %d's body" % sid)
    return sid


def finish_upload(c, sid, first, last, what):
    """Sends the rest of the body as a raw DATA frame (h2 may be closed by a GOAWAY) and
    checks the whole echo comes back."""
    c.send_raw(frame(DATA, END_STREAM, sid, last))
    stream = c.response(sid, "the end of stream %d (%s)" % (sid, what))
    if stream.reset is not None or stream.status() != 200 or bytes(stream.data) != first + last:
        raise Failure("%s: the request in flight was not completed: %s, body %r"
                      % (what, stream.describe(), bytes(stream.data)))


def client_goaway(args):
    c = client.client(args)
    c.handshake()
    first, last = b"first part, ", b"last part"
    sid = start_upload(c, first)
    c.send_raw(frame(GOAWAY, 0, 0, struct.pack(">II", 0, ErrorCodes.NO_ERROR)))
    finish_upload(c, sid, first, last, "after the client's GOAWAY")
    if c.goaways and c.goaways[0][0] != ErrorCodes.NO_ERROR:
        raise Failure("the server answered the client's GOAWAY with GOAWAY %s"
                      % client.code_name(c.goaways[0][0]))
    c.close()


def server_shutdown(args):
    c = client.client(args)
    c.handshake()
    first, last = b"before the shutdown, ", b"after it"
    sid = start_upload(c, first)
    print("READY", flush=True)
    c.wait(lambda: c.goaways, "the server's GOAWAY (the caller shuts the server down)")
    code, last_id, _ = c.goaways[0]
    if code != ErrorCodes.NO_ERROR:
        raise Failure("a shutdown sent GOAWAY %s, not NO_ERROR" % client.code_name(code))
    if last_id < sid:
        raise Failure("the shutdown GOAWAY's last stream id %d leaves out stream %d, in flight"
                      % (last_id, sid))
    finish_upload(c, sid, first, last, "after the server's GOAWAY")
    c.expect_closed("once the last stream is done after a graceful GOAWAY")
    if any(g[0] != ErrorCodes.NO_ERROR for g in c.goaways):
        raise Failure("GOAWAYs during a graceful shutdown: %s"
                      % [client.code_name(g[0]) for g in c.goaways])
    c.close()


CASES = {
    "data-on-stream-0": data_on_stream_0,
    "settings-bad-length": settings_bad_length,
    "ping-bad-length": ping_bad_length,
    "window-update-zero": window_update_zero,
    "headers-on-even-stream": headers_on_even_stream,
    "continuation-without-headers": continuation_without_headers,
    "headers-over-max-frame-size": headers_over_max_frame_size,
    "client-goaway": client_goaway,
    "server-shutdown": server_shutdown,
}

if __name__ == "__main__":
    client.run(__doc__.splitlines()[0], CASES, [n for n in CASES if n != "server-shutdown"])
