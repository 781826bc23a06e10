#!/usr/bin/env python3
"""HTTP/2 flow control (RFC 9113 §5.2, §6.9), as a client sees it from outside the server.

    python3 flow_control.py HOST PORT [--tls] [--case NAME]...

Cases:
  stream-window      With SETTINGS_INITIAL_WINDOW_SIZE 4096 and no WINDOW_UPDATE, a 256 KiB
                     `/stream` stops at exactly 4096 bytes; each WINDOW_UPDATE (odd sizes, so
                     frames must be split) lets exactly that much more through, until every
                     byte has arrived, in order.
  connection-window  Streams with large windows share the connection's 65 535-byte window:
                     two `/stream`s stop at 65 535 bytes between them, then finish once the
                     connection window alone is opened.
  echo-upload        A 4 MiB POST /echo sent within the server's windows (so the server must
                     keep granting WINDOW_UPDATEs) comes back whole.

A server that sends past a window fails the case: h2 reports the flow-control error.
"""

import client
from client import Failure, SettingCodes

SMALL_WINDOW = 4096
STREAM_BYTES = 16 * 16384  # /stream?chunks=16&size=16384
# Odd grant sizes: the server has to split its DATA frames to fill each window exactly.
GRANTS = [10007, 1, 4099, 65536, 30011]
DEFAULT_CONNECTION_WINDOW = 65535
UPLOAD_BYTES = 4 * 1024 * 1024


def filled(c, stream_ids, credit, what):
    """Waits until the streams' received bytes reach `credit` (or they end)."""
    def reached():
        got = sum(c.stream(s).flow_controlled for s in stream_ids)
        return got >= credit or all(c.stream(s).done() for s in stream_ids)
    c.wait(reached, what)
    return sum(c.stream(s).flow_controlled for s in stream_ids)


def stream_window(args):
    c = client.client(args, settings={SettingCodes.INITIAL_WINDOW_SIZE: SMALL_WINDOW},
                      auto_ack=False)
    c.handshake()
    sid = c.request("GET", "/stream?chunks=16&size=16384")
    credit, stops, grant = SMALL_WINDOW, 0, 0
    while True:
        got = filled(c, [sid], credit,
                     "%d bytes of the response (the window granted so far)" % credit)
        stream = c.stream(sid)
        if stream.reset is not None:
            raise Failure("the server reset the stream: %s" % stream.describe())
        if stream.ended:
            break
        if got != credit:
            raise Failure("received %d bytes with a window of %d" % (got, credit))
        # The window is used up: nothing more may come until the next WINDOW_UPDATE (h2
        # fails the case if the server sends past it while we look).
        c.poll_input(0.2)
        if c.stream(sid).flow_controlled != credit:
            raise Failure("the server sent %d bytes past the stream window of %d"
                          % (c.stream(sid).flow_controlled - credit, credit))
        stops += 1
        step = GRANTS[grant % len(GRANTS)]
        grant += 1
        c.conn.increment_flow_control_window(step, stream_id=sid)
        c.conn.increment_flow_control_window(step)
        c.flush()
        credit += step
    body = bytes(c.stream(sid).data)
    if c.stream(sid).status() != 200:
        raise Failure("status %s" % c.stream(sid).status())
    if len(body) != STREAM_BYTES or body != client.pattern(0, STREAM_BYTES):
        raise Failure("the body is %d bytes (expected %d) or not the /stream pattern"
                      % (len(body), STREAM_BYTES))
    if stops < 5:
        raise Failure("the response stopped at the window only %d times" % stops)
    c.close()


def connection_window(args):
    c = client.client(args, settings={SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}, auto_ack=False)
    c.handshake()
    size = 8 * 16384
    sids = [c.request("GET", "/stream?chunks=8&size=16384") for _ in range(2)]
    credit = DEFAULT_CONNECTION_WINDOW
    got = filled(c, sids, credit, "%d bytes over both streams (the connection window)" % credit)
    if got != credit or any(c.stream(s).done() for s in sids):
        raise Failure("expected both streams to stop at the connection window of %d bytes, "
                      "got %d; %s"
                      % (credit, got, c.summary()))
    c.poll_input(0.2)
    got = sum(c.stream(s).flow_controlled for s in sids)
    if got != credit:
        raise Failure("the server sent %d bytes past the connection window" % (got - credit))
    # Only the connection window is opened: the streams' own windows are large enough.
    c.conn.increment_flow_control_window(2 * size)
    c.flush()
    for sid in sids:
        stream = c.response(sid)
        body = bytes(stream.data)
        if stream.reset is not None or body != client.pattern(0, size):
            raise Failure("stream %d: %s, body %s the /stream pattern"
                          % (sid, stream.describe(),
                             "is" if body == client.pattern(0, size) else "is not"))
    c.close()


def echo_upload(args):
    c = client.client(args)
    c.handshake()
    initial = c.server_settings.get(SettingCodes.INITIAL_WINDOW_SIZE, 65535)
    body = client.pattern(0, UPLOAD_BYTES)
    sid = c.request("POST", "/echo", [("content-type", "application/octet-stream")],
                    end_stream=False)
    c.send_body(sid, body)
    stream = c.response(sid)
    echoed = bytes(stream.data)
    if stream.reset is not None or stream.status() != 200:
        raise Failure("the echo failed: %s" % stream.describe())
    if echoed != body:
        if len(echoed) == len(body):
            raise Failure("the echo has the upload's length (%d bytes) but not its bytes"
                          % len(echoed))
        raise Failure("the echo is %d bytes, the upload %d" % (len(echoed), len(body)))
    if UPLOAD_BYTES > initial and c.window_updates == 0:
        raise Failure("a %d-byte upload went through a %d-byte window without a WINDOW_UPDATE"
                      % (UPLOAD_BYTES, initial))
    c.close()


if __name__ == "__main__":
    client.run(__doc__.splitlines()[0], {
        "stream-window": stream_window,
        "connection-window": connection_window,
        "echo-upload": echo_upload,
    })
