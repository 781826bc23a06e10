#!/usr/bin/env python3
"""A CONNECT tunnel over one HTTP/2 stream (RFC 9113 §8.5), against `weft echo`, whose tunnels
echo every byte back.

    python3 tunnel.py HOST PORT [--tls] [--case NAME]...

Cases:
  connect-echo   CONNECT example.com:443 (only :method and :authority) is answered 200 with the
                 stream left open; 4 bytes, then 50 000 (past the initial window), sent through
                 it come back; the client ending its side ends the server's; the same
                 connection then serves GET /plaintext.
"""

import client
from client import Failure


def connect_echo(args):
    # h2 insists on :path, which a CONNECT must not send (RFC 9113 §8.5): no outbound checks.
    c = client.client(args, validate_headers=False)
    c.handshake()
    sid = c.conn.get_next_available_stream_id()
    c.request_head(sid, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")],
                   end_stream=False)
    stream = c.stream(sid)
    c.wait(lambda: stream.headers is not None or stream.done(), "the answer to CONNECT")
    if stream.status() != 200 or stream.done():
        raise Failure("CONNECT was not answered 200 with the stream open: " + stream.describe())
    for message in (b"ping", bytes(client.pattern(0, 50000))):
        before = len(stream.data)
        c.send_body(sid, message, end_stream=False)
        c.wait(lambda: len(stream.data) >= before + len(message) or stream.done(),
               "the tunnel's echo of %d bytes" % len(message))
        if bytes(stream.data[before:]) != message:
            raise Failure("the tunnel echoed %d bytes that differ from the %d sent: %s"
                          % (len(stream.data) - before, len(message), stream.describe()))
    c.conn.end_stream(sid)
    c.flush()
    c.response(sid, "the end of the tunnel after the client ended its side")
    if stream.reset is not None:
        raise Failure("the tunnel was reset rather than ended: " + stream.describe())
    c.expect_served("after the tunnel")
    c.close()


if __name__ == "__main__":
    client.run(__doc__.splitlines()[0], {
        "connect-echo": connect_echo,
    })
