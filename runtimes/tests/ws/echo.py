#!/usr/bin/env python3
"""A WebSocket echo route, checked with the Python `websockets` client (RFC 6455, RFC 7692).

    python3 echo.py URL [--compression deflate|none] [--cafile FILE]

URL is the echo route, `ws://HOST:PORT/ws` or `wss://localhost:PORT/ws`. On one connection:

  handshake            the server agreed permessage-deflate exactly when it was offered
                       (`--compression deflate`, the default) and not otherwise
  text-N, binary-N     a message of N bytes (0, 1, 125, 126, 65535, 65536, 1 MiB: every
                       payload-length encoding and its edges) comes back exactly, same type
  utf8-text            a text of 1-, 2-, 3- and 4-byte characters comes back exactly
  fragmented-text      a text sent in 5 fragments comes back whole
  fragmented-binary-with-ping
                       a binary message in 4 fragments with a ping between two of them: the
                       pong comes, and the message comes back whole
  pipelined            200 messages sent without waiting come back in order (with deflate:
                       the compression context carried from message to message)
  ping                 a ping is answered by a pong with its payload
  close                our Close 1000 is answered with a Close 1000

Every case prints `ok NAME` or `FAIL NAME: why`; the exit status is 0 only if all passed.
"""

import argparse
import asyncio

import websockets

import runner
from runner import Failure, bounded, describe

SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]
UTF8_TEXT = "a é € 𝄞 ✓ — naïve façade, 日本語, emoji 🎉🚀" * 50
PIPELINED = 200


class Echo:
    """The cases, on one connection."""

    def __init__(self, args):
        self.args = args
        self.ws = None

    def cases(self):
        cases = [("handshake", self.handshake)]
        for size in SIZES:
            cases.append(("text-%d" % size, lambda size=size: self.round_trip(
                runner.text(size, size))))
            cases.append(("binary-%d" % size, lambda size=size: self.round_trip(
                runner.payload(size, size))))
        cases += [
            ("utf8-text", lambda: self.round_trip(UTF8_TEXT)),
            ("fragmented-text", self.fragmented_text),
            ("fragmented-binary-with-ping", self.fragmented_binary_with_ping),
            ("pipelined", self.pipelined),
            ("ping", self.ping),
            ("close", self.close),
        ]
        return cases

    async def open(self):
        deflate = self.args.compression == "deflate"
        self.ws = await bounded(
            runner.connect(self.args.url, self.args.cafile,
                           compression="deflate" if deflate else None),
            "opening handshake")

    async def connection(self):
        """The connection; a new one when a failed case closed the last, so that one failure
        does not hide the outcome of the cases after it."""
        if self.ws is None:
            raise Failure("no connection (the handshake failed)")
        if self.ws.closed:
            print("(a new connection: the last one closed with %s %r)"
                  % (self.ws.close_code, self.ws.close_reason), flush=True)
            await self.open()
        return self.ws

    async def handshake(self):
        deflate = self.args.compression == "deflate"
        await self.open()
        agreed = [extension.name for extension in self.ws.extensions]
        header = self.ws.response_headers.get("Sec-WebSocket-Extensions")
        if deflate and agreed != ["permessage-deflate"]:
            raise Failure("offered permessage-deflate; the server agreed %r (header %r)"
                          % (agreed, header))
        if not deflate and (agreed or header):
            raise Failure("offered no extension; the server answered %r" % header)

    async def expect_echo(self, sent, what):
        ws = await self.connection()
        got = await bounded(ws.recv(), "echo of %s" % what)
        if type(got) is not type(sent):
            raise Failure("sent %s, got %s back" % (describe(sent), describe(got)))
        if got != sent:
            raise Failure("sent %s, got %s back (differs from byte %d)"
                          % (describe(sent), describe(got), first_difference(sent, got)))

    async def round_trip(self, message):
        ws = await self.connection()
        await bounded(ws.send(message), "send of %s" % describe(message))
        await self.expect_echo(message, describe(message))

    async def fragmented_text(self):
        pieces = [runner.text(size, 100 + size) for size in (1, 126, 0, 70000, 5)]

        async def fragments():
            for piece in pieces:
                yield piece

        ws = await self.connection()
        await bounded(ws.send(fragments()), "send of a fragmented text")
        await self.expect_echo("".join(pieces), "a text in %d fragments" % len(pieces))

    async def fragmented_binary_with_ping(self):
        ws = await self.connection()
        pieces = [runner.payload(size, 200 + size) for size in (10, 65536, 3, 1000)]
        pongs = []

        async def fragments():
            for index, piece in enumerate(pieces):
                if index == 2:
                    # A control frame between two fragments (RFC 6455 §5.4).
                    pongs.append(await ws.ping(b"between fragments"))
                yield piece

        await bounded(ws.send(fragments()), "send of a fragmented binary message")
        await self.expect_echo(b"".join(pieces), "a binary message in 4 fragments")
        if not pongs:
            raise Failure("the ping was never sent")
        await bounded(pongs[0], "pong to the ping sent between fragments")

    async def pipelined(self):
        ws = await self.connection()
        messages = []
        for index in range(PIPELINED):
            if index % 2:
                messages.append(runner.payload(index * 7, index))
            else:
                messages.append("message %d: %s" % (index, runner.text(index * 5, index)))
        for message in messages:
            await bounded(ws.send(message), "send of pipelined message")
        for index, message in enumerate(messages):
            await self.expect_echo(message, "pipelined message %d" % index)

    async def ping(self):
        ws = await self.connection()
        pong = await bounded(ws.ping(b"weft ping payload"), "ping sent")
        await bounded(pong, "pong with the ping's payload")

    async def close(self):
        ws = await self.connection()
        await bounded(ws.close(1000, "done"), "close handshake")
        if ws.close_code != 1000:
            raise Failure("closed with 1000; the server answered %s %r"
                          % (ws.close_code, ws.close_reason))


def first_difference(a, b):
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return min(len(a), len(b))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="ws:// or wss:// URL of the echo route")
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate",
                        help="offer permessage-deflate (default) or no extension")
    parser.add_argument("--cafile", help="verify the server's certificate against this file")
    args = parser.parse_args()
    echo = Echo(args)
    try:
        return await runner.run_cases(echo.cases())
    finally:
        if echo.ws is not None:
            try:
                await asyncio.wait_for(echo.ws.close(), runner.TIMEOUT)
            except (asyncio.TimeoutError, websockets.exceptions.WebSocketException, OSError):
                pass


if __name__ == "__main__":
    runner.main(main())
