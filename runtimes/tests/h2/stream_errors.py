#!/usr/bin/env python3
"""HTTP/2 stream errors (RFC 9113 §5.4.2, §8.2): one bad stream is reset, the connection lives on.

    python3 stream_errors.py HOST PORT [--tls] [--case NAME]...

Cases (each checks, after the error, that the same connection serves GET /plaintext):
  uppercase-header    A request with an uppercase field name is malformed (§8.2):
                      RST_STREAM PROTOCOL_ERROR.
  connection-header   A request with `connection: keep-alive`, a connection-specific field
                      (§8.2.2): RST_STREAM PROTOCOL_ERROR.
  te-header           A request with `te: gzip` (only `trailers` is allowed, §8.2.2):
                      RST_STREAM PROTOCOL_ERROR.
  missing-path        A GET without `:path` (§8.3.1): RST_STREAM PROTOCOL_ERROR.
  client-reset        The client resets a stream mid-response (RST_STREAM CANCEL): no GOAWAY,
                      and a PING and the next stream are answered.
  refused-stream      One stream past the server's SETTINGS_MAX_CONCURRENT_STREAMS is refused
                      with RST_STREAM REFUSED_STREAM (§5.1.2); the streams already open are
                      served, and a new one is once they are done.
"""

import client
from client import ErrorCodes, Failure, SettingCodes


def request_head(c, sid, path, extra=(), drop=()):
    head = [(b":method", b"GET"), (b":scheme", b"https" if c.tls else b"http"),
            (b":authority", c.authority.encode()), (b":path", path.encode())]
    head = [(n, v) for n, v in head if n not in drop]
    return head + [(n.encode(), v.encode()) for n, v in extra]


def malformed(args, extra=(), drop=(), what=""):
    """Sends one malformed GET and expects RST_STREAM PROTOCOL_ERROR, then a served stream."""
    c = client.client(args, validate_headers=False)
    c.handshake()
    sid = c.conn.get_next_available_stream_id()
    c.request_head(sid, request_head(c, sid, "/plaintext", extra, drop))
    c.expect_reset(sid, ErrorCodes.PROTOCOL_ERROR, what)
    c.expect_served("after RST_STREAM for " + what)
    c.close()


def uppercase_header(args):
    malformed(args, extra=[("X-Upper-Case", "1")], what="an uppercase field name")


def connection_header(args):
    malformed(args, extra=[("connection", "keep-alive")], what="a connection: field")


def te_header(args):
    malformed(args, extra=[("te", "gzip")], what="te: gzip")


def missing_path(args):
    malformed(args, drop=(b":path",), what="a request without :path")


def client_reset(args):
    # A small window keeps the response in progress while the client resets it.
    c = client.client(args, settings={SettingCodes.INITIAL_WINDOW_SIZE: 16384})
    c.handshake()
    sid = c.request("GET", "/stream?chunks=64&size=16384")
    c.wait(lambda: c.stream(sid).data or c.stream(sid).done(), "the first DATA of stream %d" % sid)
    if c.stream(sid).done():
        raise Failure("the 1 MiB response ended before the client could reset it: %s"
                      % c.stream(sid).describe())
    c.conn.reset_stream(sid, ErrorCodes.CANCEL)
    c.flush()
    c.ping()
    c.expect_served("after the client reset stream %d" % sid)
    if c.goaways:
        raise Failure("the server sent GOAWAY %s after one client reset"
                      % client.code_name(c.goaways[0][0]))
    c.close()


def refused_stream(args):
    c = client.client(args)
    c.handshake()
    limit = c.server_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
    if limit is None or limit > 1000:
        print("SKIP refused-stream: the server advertises %s concurrent streams"
              % ("no limit on" if limit is None else limit), flush=True)
        return
    # Each stream stays open: its request body is never finished.
    open_ids = [c.request("POST", "/echo", end_stream=False) for _ in range(limit)]
    extra = c.conn.get_next_available_stream_id()
    head = request_head(c, extra, "/echo")
    head[0] = (b":method", b"POST")
    c.request_head(extra, head, end_stream=False, over_limit=True)
    c.expect_reset(extra, ErrorCodes.REFUSED_STREAM,
                   "stream %d, one past SETTINGS_MAX_CONCURRENT_STREAMS %d" % (extra, limit))
    for sid in open_ids:
        if c.stream(sid).reset is not None:
            raise Failure("stream %d, within the limit, was reset: %s"
                          % (sid, c.stream(sid).describe()))
    # Finish every open stream: each echoes its one byte.
    for sid in open_ids:
        c.conn.send_data(sid, b"x", end_stream=True)
    c.flush()
    for sid in open_ids:
        stream = c.response(sid)
        if stream.reset is not None or stream.status() != 200 or bytes(stream.data) != b"x":
            raise Failure("open stream %d was not served once finished: %s"
                          % (sid, stream.describe()))
    c.expect_served("after REFUSED_STREAM")
    c.close()


if __name__ == "__main__":
    client.run(__doc__.splitlines()[0], {
        "uppercase-header": uppercase_header,
        "connection-header": connection_header,
        "te-header": te_header,
        "missing-path": missing_path,
        "client-reset": client_reset,
        "refused-stream": refused_stream,
    })
