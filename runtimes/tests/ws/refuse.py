#!/usr/bin/env python3
"""Refused and malformed WebSocket handshakes (RFC 6455 §4.2.1, §4.2.2, §4.4), over HTTP/1.1.

    python3 refuse.py BASE_URL [--cafile FILE]

BASE_URL is `ws://HOST:PORT` or `wss://localhost:PORT`. The server has an echo route `/ws` and a
route `/private` that answers 401 without an `Authorization` header, 403 unless it is
`Bearer ok`, and accepts (then echoes) with it. Requests are written by hand on a raw socket.

  private-without-token  a valid handshake on /private without a token: 401, no 101
  private-wrong-token    with `Bearer wrong`: 403, no 101
  private-right-token    with `Bearer ok` (the websockets client): accepted, a message echoes
  bad-version            `Sec-WebSocket-Version: 8`: 426 with `Sec-WebSocket-Version: 13`
  missing-key            no `Sec-WebSocket-Key`: 400
  short-key              a key of 8 bytes (base64), not 16: 400
  post-method            the handshake as a POST: a 4xx, no 101
  still-serving          after all this, a normal handshake on /ws is accepted and echoes

Every case prints `ok NAME` or `FAIL NAME: why`; the exit status is 0 only if all passed.
"""

import argparse
import base64
import os
import socket
import urllib.parse

import runner
from runner import Failure, bounded, describe

VALID_KEY = base64.b64encode(os.urandom(16)).decode()


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> [values]
        self.body = body

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def describe(self):
        return "%d %r %r" % (self.status, self.headers, self.body[:80])


class Refuse:
    def __init__(self, args):
        self.args = args
        self.parsed = urllib.parse.urlsplit(args.url)
        self.tls = self.parsed.scheme == "wss"

    def authority(self):
        return self.parsed.netloc

    def open_socket(self):
        sock = socket.create_connection(runner.address(self.args.url), timeout=runner.TIMEOUT)
        if self.tls:
            context = runner.tls_context(self.args.cafile)
            sock = context.wrap_socket(sock, server_hostname=self.parsed.hostname)
        return sock

    def exchange(self, method, path, headers):
        """Sends one request head (no body) and reads the response head and its
        Content-Length body."""
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % self.authority()]
        lines += ["%s: %s" % pair for pair in headers]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        sock = self.open_socket()
        try:
            sock.sendall(request)
            return read_reply(sock)
        finally:
            sock.close()

    def handshake_headers(self, version="13", key=VALID_KEY, extra=()):
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        if key is not None:
            headers.append(("Sec-WebSocket-Key", key))
        if version is not None:
            headers.append(("Sec-WebSocket-Version", version))
        return headers + list(extra)

    def expect_status(self, reply, status, what):
        if reply.status == 101:
            raise Failure("%s: the server switched protocols (101): %s" % (what, reply.describe()))
        if reply.status != status:
            raise Failure("%s: expected %d, got %s" % (what, status, reply.describe()))

    async def private_without_token(self):
        reply = self.exchange("GET", "/private", self.handshake_headers())
        self.expect_status(reply, 401, "no Authorization")

    async def private_wrong_token(self):
        reply = self.exchange("GET", "/private", self.handshake_headers(
            extra=[("Authorization", "Bearer wrong")]))
        self.expect_status(reply, 403, "Authorization: Bearer wrong")

    async def private_right_token(self):
        url = self.args.url.rstrip("/") + "/private"
        ws = await bounded(runner.connect(url, self.args.cafile,
                                          extra_headers={"Authorization": "Bearer ok"}),
                           "opening handshake with Bearer ok")
        await self.echo_once(ws, "let me in")

    async def echo_once(self, ws, message):
        await bounded(ws.send(message), "send")
        got = await bounded(ws.recv(), "echo")
        if got != message:
            raise Failure("sent %r, got %s" % (message, describe(got)))
        await bounded(ws.close(1000), "close handshake")
        if ws.close_code != 1000:
            raise Failure("closed with 1000, got %s %r" % (ws.close_code, ws.close_reason))

    async def bad_version(self):
        reply = self.exchange("GET", "/ws", self.handshake_headers(version="8"))
        self.expect_status(reply, 426, "Sec-WebSocket-Version: 8")
        if reply.header("sec-websocket-version") != "13":
            raise Failure("426 without `Sec-WebSocket-Version: 13`: %s" % reply.describe())

    async def missing_key(self):
        reply = self.exchange("GET", "/ws", self.handshake_headers(key=None))
        self.expect_status(reply, 400, "no Sec-WebSocket-Key")

    async def short_key(self):
        short = base64.b64encode(os.urandom(8)).decode()
        reply = self.exchange("GET", "/ws", self.handshake_headers(key=short))
        self.expect_status(reply, 400, "an 8-byte Sec-WebSocket-Key")

    async def post_method(self):
        reply = self.exchange("POST", "/ws", self.handshake_headers(
            extra=[("Content-Length", "0")]))
        if reply.status == 101 or not 400 <= reply.status < 500:
            raise Failure("a POST handshake: expected a 4xx, got %s" % reply.describe())

    async def still_serving(self):
        url = self.args.url.rstrip("/") + "/ws"
        ws = await bounded(runner.connect(url, self.args.cafile), "opening handshake on /ws")
        await self.echo_once(ws, "still serving")

    def cases(self):
        return [
            ("private-without-token", self.private_without_token),
            ("private-wrong-token", self.private_wrong_token),
            ("private-right-token", self.private_right_token),
            ("bad-version", self.bad_version),
            ("missing-key", self.missing_key),
            ("short-key", self.short_key),
            ("post-method", self.post_method),
            ("still-serving", self.still_serving),
        ]


def read_reply(sock):
    """The response head and its body (Content-Length, or up to EOF when absent)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = recv(sock)
        if not chunk:
            raise Failure("the server closed the connection without a complete response "
                          "(got %r)" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Failure("not an HTTP/1.1 status line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    status = int(parts[1])
    if status == 101:
        return Reply(status, headers, body)
    length = headers.get("content-length")
    if length:
        want = int(length[0])
        while len(body) < want:
            chunk = recv(sock)
            if not chunk:
                raise Failure("the body ended after %d of %d bytes" % (len(body), want))
            body += chunk
    return Reply(status, headers, body)


def recv(sock):
    try:
        return sock.recv(65536)
    except socket.timeout:
        raise Failure("no response within %.0f s" % runner.TIMEOUT) from None
    except ConnectionResetError:
        return b""


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="ws://HOST:PORT or wss://localhost:PORT")
    parser.add_argument("--cafile", help="verify the server's certificate against this file")
    args = parser.parse_args()
    return await runner.run_cases(Refuse(args).cases())


if __name__ == "__main__":
    runner.main(main())
