#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT) against an echo route, with python3-h2 and
WebSocket frames encoded here by hand (masked, RFC 6455 §5), carried in DATA frames.

    python3 h2_echo.py URL [--compression deflate|none] [--cafile FILE]

URL is `ws://HOST:PORT/ws` (cleartext HTTP/2 with prior knowledge) or `wss://localhost:PORT/ws`
(TLS; ALPN must pick `h2`). The HTTP/2 connection is the one of `../h2/client.py`.

  settings             the server's SETTINGS carry SETTINGS_ENABLE_CONNECT_PROTOCOL = 1
  connect              CONNECT with `:protocol: websocket` is answered 200 and the stream stays
                       open; permessage-deflate is agreed exactly when offered
  text-N, binary-N     messages of N bytes (0, 1, 125, 126, 65535, 65536, 256 KiB) echo exactly
  fragmented-with-ping a text in 3 fragments with a ping between them: the pong carries the
                       ping's payload and the text comes back whole
  two-sockets          a second WebSocket on another stream of the same connection, used
                       alternately with the first, echoes independently
  close                our Close 1000 is answered with a Close 1000, and the stream ends with
                       END_STREAM both ways, not RST_STREAM; a new WebSocket then works

Every case prints `ok NAME` or `FAIL NAME: why`; the exit status is 0 only if all passed.
"""

import argparse
import os
import struct
import sys
import traceback
import urllib.parse
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))

import client as h2client  # noqa: E402  (the HTTP/2 client of ../h2)
import h2.exceptions  # noqa: E402
from client import Failure, SettingCodes  # noqa: E402

import runner  # noqa: E402

SIZES = [0, 1, 125, 126, 65535, 65536, 256 * 1024]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DEFLATE_TAIL = b"\x00\x00\xff\xff"


def encode_frame(opcode, payload, fin=True, rsv1=False):
    """One client frame: masked with a fresh key (RFC 6455 §5.3)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", length)
    key = os.urandom(4)
    return head + key + mask(payload, key)


def mask(payload, key):
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


def take_frame(buffer):
    """The first whole frame in `buffer` (a bytearray, consumed) as (fin, rsv1, opcode,
    payload), or None when incomplete. A masked server frame is a failure (§5.1)."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    length, offset = second & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, offset = struct.unpack(">H", bytes(buffer[2:4]))[0], 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, offset = struct.unpack(">Q", bytes(buffer[2:10]))[0], 10
    if second & 0x80:
        raise Failure("the server masked a frame (RFC 6455 §5.1 forbids it)")
    if len(buffer) < offset + length:
        return None
    payload = bytes(buffer[offset:offset + length])
    del buffer[:offset + length]
    return bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload


class Deflate:
    """permessage-deflate (RFC 7692) as the server agreed it."""

    def __init__(self, response):
        params = [p.strip() for p in response.split(";")[1:]]
        self.reset_ours = "client_no_context_takeover" in params
        self.reset_theirs = "server_no_context_takeover" in params
        self.compressor = zlib.compressobj(wbits=-15)
        self.decompressor = zlib.decompressobj(wbits=-15)

    def compress(self, data):
        if self.reset_ours:
            self.compressor = zlib.compressobj(wbits=-15)
        out = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if not out.endswith(DEFLATE_TAIL):
            raise Failure("zlib's sync flush did not end with 00 00 ff ff")
        return out[:-4]

    def decompress(self, data):
        if self.reset_theirs:
            self.decompressor = zlib.decompressobj(wbits=-15)
        return self.decompressor.decompress(data + DEFLATE_TAIL)


class Socket:
    """One WebSocket on one stream of the HTTP/2 connection."""

    def __init__(self, conn, path, authority, deflate_offer):
        self.conn = conn
        headers = [(":protocol", "websocket"), ("sec-websocket-version", "13"),
                   ("origin", "http://%s" % authority)]
        if deflate_offer:
            headers.append(("sec-websocket-extensions", "permessage-deflate"))
        self.stream_id = conn.request("CONNECT", path, headers=headers, end_stream=False)
        self.deflate = None
        self.frames_seen = []

    def stream(self):
        return self.conn.stream(self.stream_id)

    def accepted(self, deflate_offer):
        stream = self.stream()
        self.conn.wait(lambda: stream.headers is not None or stream.done(),
                       "the answer to the extended CONNECT on stream %d" % self.stream_id)
        if stream.status() != 200 or stream.done():
            raise Failure("extended CONNECT: expected 200 with the stream open, got %s"
                          % stream.describe())
        agreed = stream.header(b"sec-websocket-extensions")
        if deflate_offer:
            if agreed is None or not agreed.decode().startswith("permessage-deflate"):
                raise Failure("offered permessage-deflate; the server answered %r" % agreed)
            self.deflate = Deflate(agreed.decode())
        elif agreed is not None:
            raise Failure("offered no extension; the server answered %r" % agreed)

    def send_frames(self, frames):
        self.conn.send_body(self.stream_id, b"".join(frames), end_stream=False)

    def send_message(self, message, fragments=1, ping_between=None):
        """Sends `message` (str: text, bytes: binary) in `fragments` frames, compressed when
        deflate was agreed, with a ping after the first fragment when `ping_between`."""
        opcode = TEXT if isinstance(message, str) else BINARY
        data = message.encode() if isinstance(message, str) else message
        compressed = self.deflate is not None
        if compressed:
            data = self.deflate.compress(data)
        step = max(1, -(-len(data) // fragments))
        pieces = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        frames = []
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            frames.append(encode_frame(opcode if index == 0 else CONTINUATION, piece,
                                       fin=last, rsv1=compressed and index == 0))
            if index == 0 and ping_between is not None:
                frames.append(encode_frame(PING, ping_between))
        self.send_frames(frames)

    def next_frame(self, what):
        buffer = self.stream().data
        frame = []

        def complete():
            if not frame:
                taken = take_frame(buffer)
                if taken is not None:
                    frame.append(taken)
            return bool(frame) or self.stream().done()

        self.conn.wait(complete, what)
        if not frame:
            raise Failure("the stream ended while waiting for %s: %s"
                          % (what, self.stream().describe()))
        fin, rsv1, opcode, payload = frame[0]
        self.frames_seen.append(opcode)
        return fin, rsv1, opcode, payload

    def recv(self, what, pongs=None):
        """The next message as str or bytes, or ("close", code, reason). Pongs are appended to
        `pongs`; a ping is answered."""
        parts, opcode, compressed = [], None, False
        while True:
            fin, rsv1, frame_opcode, payload = self.next_frame(what)
            if frame_opcode == PING:
                self.send_frames([encode_frame(PONG, payload)])
                continue
            if frame_opcode == PONG:
                if pongs is None:
                    raise Failure("an unexpected pong while waiting for %s" % what)
                pongs.append(payload)
                continue
            if frame_opcode == CLOSE:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                return ("close", code, payload[2:].decode("utf-8", "replace"))
            if opcode is None:
                if frame_opcode not in (TEXT, BINARY):
                    raise Failure("a message began with opcode 0x%x" % frame_opcode)
                opcode, compressed = frame_opcode, rsv1
            elif frame_opcode != CONTINUATION:
                raise Failure("opcode 0x%x inside a fragmented message" % frame_opcode)
            parts.append(payload)
            if fin:
                break
        data = b"".join(parts)
        if compressed:
            if self.deflate is None:
                raise Failure("RSV1 set without permessage-deflate agreed")
            data = self.deflate.decompress(data)
        if opcode == TEXT:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise Failure("a text message that is not UTF-8") from None
        return data

    def expect_echo(self, sent, what, pongs=None):
        got = self.recv("the echo of %s" % what, pongs)
        if got != sent:
            raise Failure("sent %s, got %s back" % (runner.describe(sent), show(got)))

    def close(self):
        """Closes with 1000 and checks the answer; then both ends end the stream (the stream's
        END_STREAM is the TCP FIN of RFC 6455 §7.1.1), without a reset."""
        self.send_frames([encode_frame(CLOSE, struct.pack(">H", 1000) + b"bye")])
        while True:
            got = self.recv("the server's Close")
            if isinstance(got, tuple):
                break
        _, code, reason = got
        if code != 1000:
            raise Failure("closed with 1000; the server answered Close %s %r" % (code, reason))
        stream = self.stream()
        if stream.reset is None:
            self.conn.conn.end_stream(self.stream_id)
            self.conn.flush()
        self.conn.wait(stream.done, "END_STREAM after the close handshake on stream %d"
                       % self.stream_id)
        if stream.reset is not None:
            raise Failure("the server reset the stream after the close handshake: %s"
                          % stream.describe())


def show(got):
    if isinstance(got, tuple):
        return "Close %s %r" % (got[1], got[2])
    return runner.describe(got)


class H2Echo:
    def __init__(self, args):
        self.args = args
        parsed = urllib.parse.urlsplit(args.url)
        self.tls = parsed.scheme == "wss"
        self.path = parsed.path or "/"
        host, port = runner.address(args.url)
        self.conn = None
        self.host, self.port = host, port
        self.deflate = args.compression == "deflate"
        self.socket = None

    def connection(self):
        if self.conn is None:
            raise Failure("no connection")
        return self.conn

    def socket_open(self):
        if self.socket is None:
            raise Failure("no WebSocket (the CONNECT failed)")
        return self.socket

    def settings(self):
        self.conn = h2client.Client(self.host, self.port, tls=self.tls, cafile=self.args.cafile)
        self.conn.handshake()
        value = self.conn.server_settings.get(int(SettingCodes.ENABLE_CONNECT_PROTOCOL))
        if value != 1:
            raise Failure("SETTINGS_ENABLE_CONNECT_PROTOCOL is %r, not 1 (RFC 8441 §3); the "
                          "server's settings: %r" % (value, self.conn.server_settings))

    def open_socket(self):
        conn = self.connection()
        socket = Socket(conn, self.path, conn.authority, self.deflate)
        socket.accepted(self.deflate)
        return socket

    def connect(self):
        self.socket = self.open_socket()

    def round_trip(self, message):
        socket = self.socket_open()
        socket.send_message(message)
        socket.expect_echo(message, runner.describe(message))

    def fragmented_with_ping(self):
        socket = self.socket_open()
        message = runner.text(3000, 7)
        socket.send_message(message, fragments=3, ping_between=b"mid-message")
        pongs = []
        socket.expect_echo(message, "a text in 3 fragments", pongs)
        if not pongs:
            # The pong may come after the echo.
            _, _, opcode, payload = socket.next_frame("the pong")
            if opcode == PONG:
                pongs.append(payload)
        if pongs != [b"mid-message"]:
            raise Failure("expected one pong with b'mid-message', got %r" % pongs)

    def two_sockets(self):
        first = self.socket_open()
        second = self.open_socket()
        for index in range(4):
            for name, socket in (("first", first), ("second", second)):
                message = runner.payload(1000 + index, 2 * index + (name == "second"))
                socket.send_message(message)
                socket.expect_echo(message, "message %d on the %s socket" % (index, name))
        second.close()
        # The first socket is unaffected by the second's close.
        first.send_message("after the other closed")
        first.expect_echo("after the other closed", "a text after the other socket closed")

    def close(self):
        self.socket_open().close()
        self.socket = None
        # The connection still serves a new WebSocket.
        again = self.open_socket()
        again.send_message("again")
        again.expect_echo("again", "a text on a new WebSocket after a close")
        again.close()

    def cases(self):
        cases = [("settings", self.settings), ("connect", self.connect)]
        for size in SIZES:
            cases.append(("text-%d" % size,
                          lambda size=size: self.round_trip(runner.text(size, size))))
            cases.append(("binary-%d" % size,
                          lambda size=size: self.round_trip(runner.payload(size, size))))
        cases += [
            ("fragmented-with-ping", self.fragmented_with_ping),
            ("two-sockets", self.two_sockets),
            ("close", self.close),
        ]
        return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="ws://HOST:PORT/PATH (h2c) or wss://localhost:PORT/PATH")
    parser.add_argument("--compression", choices=["deflate", "none"], default="none",
                        help="offer permessage-deflate, or no extension (default)")
    parser.add_argument("--cafile", help="verify the server's certificate against this file")
    args = parser.parse_args()
    echo = H2Echo(args)
    failed = []
    cases = echo.cases()
    for name, case in cases:
        try:
            case()
        except Failure as failure:
            failed.append(name)
            print("FAIL %s: %s" % (name, failure), flush=True)
        except (OSError, h2.exceptions.H2Error, zlib.error) as error:
            failed.append(name)
            print("FAIL %s: %r\n%s" % (name, error, traceback.format_exc()), flush=True)
        else:
            print("ok %s" % name, flush=True)
    if echo.conn is not None:
        echo.conn.close()
    if failed:
        print("%d of %d cases failed: %s" % (len(failed), len(cases), ", ".join(failed)),
              flush=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
