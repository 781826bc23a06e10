#!/usr/bin/env python3
"""Rooms and broadcast with many clients, one of them slow, with the Python `websockets` client.

    python3 rooms.py URL N [--policy disconnect|drop] [--cafile FILE] [--message-size BYTES]
                           [--max-volume MIB]

URL is the room route without the room's name, `ws://HOST:PORT/room`: a client joins room
NAME at URL/NAME. The route broadcasts every message a member sends to the room's other
members, except the text `?stats`, which it answers to the sender alone with
`members=M dropped=D` (members of the room now, messages dropped for slow members so far).

Cases (each in a room of its own):

  fanout          N clients join; once `?stats` counts N members, one of them sends 100
                  messages (text and binary, 0 to 4 KiB) and each of the N-1 others receives
                  exactly those 100, in order; everyone closes with 1000 and gets 1000 back.
  slow-consumer   A slow client (a 4 KiB receive buffer, and it stops reading after the
                  handshake), up to 4 fast ones and a broadcaster join. The broadcaster sends
                  numbered binary messages (--message-size bytes each), never more than 192 KiB
                  ahead of the slowest fast client, until `?stats` shows the server acted on the
                  slow one (it left the room under `--policy disconnect`; a message was dropped
                  under `--policy drop`), or --max-volume MiB went out (a failure), then 16 more,
                  and once the fast clients have them all, an `end`. Every fast client must have
                  received every message, in order.
                  Then the slow client reads what it was sent: under `disconnect`, a prefix of
                  the messages (0, 1, 2, ... with no gap) then a Close 1013; under `drop`, an
                  increasing sequence missing at least one message, then an `end`, and the
                  socket still works (it closes with 1000).
  responsive      Afterwards the server still serves: a new client joins, `?stats` answers, and a
                  message broadcast in the room reaches it.

Every case prints `ok NAME` or `FAIL NAME: why`; the exit status is 0 only if all passed.
"""

import argparse
import asyncio
import os
import socket
import struct

import websockets

import runner
from runner import Failure, bounded, describe

FANOUT_MESSAGES = 100
# A fast client may be this far behind the broadcaster. Messages a client's library holds
# but the script has not read yet count as behind, so this bounds what waits in the server for a
# fast client: less than a member's send queue (256 KiB in the test service), which a fast client
# must never fill, whatever the scheduling of this process.
PACING_WINDOW = 192 * 1024
# Messages sent after the server acted on the slow client.
EXTRA_MESSAGES = 16
# The slow client's receive buffer.
SLOW_RCVBUF = 4096
STATS_EVERY = 16
END = "end"


def numbered(seq, size):
    """Binary message `seq`: its number (8 bytes, big-endian), then `size - 8` bytes that
    depend on it."""
    return struct.pack(">Q", seq) + runner.payload(max(size - 8, 0), seq)


def number_of(message, size):
    """The number of a message made by `numbered`, or a Failure when it is not one."""
    if not isinstance(message, bytes) or len(message) < 8:
        raise Failure("expected a numbered binary message, got %s" % describe(message))
    seq = struct.unpack(">Q", message[:8])[0]
    if message != numbered(seq, size):
        raise Failure("message %d arrived with a wrong payload (%s)" % (seq, describe(message)))
    return seq


class Rooms:
    def __init__(self, args):
        self.args = args
        self.tag = "%d" % os.getpid()
        self.slow_room = None
        self.opened = []

    def url(self, room):
        return "%s/%s" % (self.args.url.rstrip("/"), room)

    async def join(self, room, **options):
        ws = await bounded(runner.connect(self.url(room), self.args.cafile,
                                          compression=None, **options),
                           "opening handshake into room %s" % room)
        self.opened.append(ws)
        return ws

    async def stats(self, ws):
        """The room's `members=M dropped=D`, as (M, D)."""
        await bounded(ws.send("?stats"), "send of ?stats")
        reply = await bounded(ws.recv(), "answer to ?stats")
        try:
            fields = dict(part.split("=") for part in reply.split())
            return int(fields["members"]), int(fields["dropped"])
        except (AttributeError, ValueError, KeyError):
            raise Failure("?stats was answered %s" % describe(reply)) from None

    async def stats_or_why(self, ws):
        """`?stats` as text for a failure report, or why it could not be had."""
        try:
            members, dropped = await self.stats(ws)
            return "members=%d dropped=%d" % (members, dropped)
        except (Failure, websockets.exceptions.ConnectionClosed) as error:
            return "no answer to ?stats: %s" % error

    async def wait_members(self, ws, count, what):
        """Waits (bounded) until `?stats` counts `count` members: every handler has joined."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + runner.TIMEOUT
        while True:
            members, _ = await self.stats(ws)
            if members == count:
                return
            if loop.time() > deadline:
                raise Failure("%s: the room has %d members, not %d, after %.0f s"
                              % (what, members, count, runner.TIMEOUT))
            await asyncio.sleep(0.05)

    async def close_all(self, sockets, what):
        for ws in sockets:
            await bounded(ws.close(1000, "done"), "close handshake (%s)" % what)
            if ws.close_code != 1000:
                raise Failure("%s: closed with 1000, the server answered %s %r"
                              % (what, ws.close_code, ws.close_reason))

    # --- fanout ---------------------------------------------------------------------------

    async def fanout(self):
        room = "fanout-%s" % self.tag
        count = self.args.clients
        clients = await bounded(
            asyncio.gather(*(self.join(room) for _ in range(count))),
            "%d clients joining" % count, runner.TIMEOUT * 3)
        sender, receivers = clients[0], clients[1:]
        await self.wait_members(sender, count, "fanout")
        messages = []
        for index in range(FANOUT_MESSAGES):
            size = (index * 41) % 4097
            if index % 3 == 0:
                messages.append("%d:%s" % (index, runner.text(size, index)))
            else:
                messages.append(runner.payload(size, index))
        for message in messages:
            await bounded(sender.send(message), "send of a broadcast")

        async def receive_all(number, ws):
            for index, message in enumerate(messages):
                got = await bounded(ws.recv(), "broadcast message %d at client %d"
                                    % (index, number))
                if got != message:
                    raise Failure("client %d: message %d should be %s, got %s"
                                  % (number, index, describe(message), describe(got)))

        await asyncio.gather(*(receive_all(n + 1, ws) for n, ws in enumerate(receivers)))
        await self.close_all(clients, "fanout")

    # --- slow consumer ------------------------------------------------------------------------

    async def join_slow(self, room):
        """A client that reads as little as possible: a tiny receive buffer, a queue of one
        message, and nobody calling recv()."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        sock.settimeout(runner.TIMEOUT)
        sock.connect(runner.address(self.args.url))
        return await self.join(room, sock=sock, max_queue=1, read_limit=SLOW_RCVBUF)

    async def slow_consumer(self):
        room = "slow-%s" % self.tag
        self.slow_room = room
        size = self.args.message_size
        fast_count = max(1, min(4, self.args.clients - 2))
        slow = await self.join_slow(room)
        fast = [await self.join(room) for _ in range(fast_count)]
        sender = await self.join(room)
        await self.wait_members(sender, fast_count + 2, "slow-consumer")

        received = [0] * fast_count
        ended = [asyncio.Event() for _ in range(fast_count)]
        failures = []

        async def read_fast(number, ws):
            """Checks every message up to the first `end`, then drains (and ignores) what
            follows, so that the close handshake later is not stuck behind unread messages."""
            try:
                while not ended[number].is_set():
                    message = await ws.recv()
                    if message == END:
                        ended[number].set()
                        continue
                    seq = number_of(message, size)
                    if seq != received[number]:
                        raise Failure("fast client %d: expected message %d, got %d"
                                      % (number, received[number], seq))
                    received[number] += 1
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed as closed:
                if not ended[number].is_set():
                    failures.append("fast client %d was closed after %d messages: %s %r"
                                    % (number, received[number], closed.code, closed.reason))
            except Failure as failure:
                failures.append(str(failure))
            finally:
                ended[number].set()

        readers = [asyncio.get_running_loop().create_task(read_fast(n, ws))
                   for n, ws in enumerate(fast)]
        try:
            sent = await self.broadcast_until_acted_on(sender, fast_count, received, failures)
            # The `end` goes once the fast clients have everything: their queues are empty then,
            # so not even a dropping hub can skip it for them.
            await self.wait_received(received, sent, failures)
            await bounded(sender.send(END), "send of end")
            try:
                await bounded(asyncio.gather(*(event.wait() for event in ended)),
                              "end of the broadcast at every fast client", runner.TIMEOUT * 3)
            except Failure as failure:
                raise Failure("%s: they received %r of %d messages (then the room: %s)"
                              % (failure, received, sent, await self.stats_or_why(sender)))
            if failures:
                raise Failure("; ".join(failures))
            if received != [sent] * fast_count:
                raise Failure("sent %d messages, the fast clients received %r"
                              % (sent, received))
            if self.args.policy == "disconnect":
                await self.check_disconnected(slow, size)
            else:
                await self.check_dropped(slow, sender, size, sent)
            await self.close_all(fast + [sender], "slow-consumer")
        finally:
            for reader in readers:
                reader.cancel()

    async def broadcast_until_acted_on(self, sender, fast_count, received, failures):
        """Sends numbered messages, paced by the fast clients, until the server acted on the
        slow client, then EXTRA_MESSAGES more; the number sent."""
        size = self.args.message_size
        window = max(1, PACING_WINDOW // size)
        limit = self.args.max_volume * 1024 * 1024 // size
        acted_at = None
        seq = 0
        while acted_at is None or seq < acted_at + EXTRA_MESSAGES:
            if failures:
                raise Failure("; ".join(failures))
            if seq >= limit:
                members, dropped = await self.stats(sender)
                raise Failure("sent %d MiB to a client that reads nothing, yet the server did "
                              "not act on it (members=%d dropped=%d)"
                              % (self.args.max_volume, members, dropped))
            await self.wait_received(received, seq - window, failures)
            await bounded(sender.send(numbered(seq, size)), "send of message %d" % seq)
            seq += 1
            if acted_at is None and seq % STATS_EVERY == 0:
                members, dropped = await self.stats(sender)
                if members < fast_count + 1:
                    raise Failure("after %d messages the room has %d members: a fast client "
                                  "was removed" % (seq, members))
                if self.args.policy == "disconnect" and members == fast_count + 1:
                    acted_at = seq
                if self.args.policy == "drop" and dropped > 0:
                    acted_at = seq
        print("slow-consumer: the server acted after %d messages of %d bytes (%.1f MiB)"
              % (acted_at, size, acted_at * size / 1048576.0), flush=True)
        return seq

    async def wait_received(self, received, count, failures):
        """Waits (bounded) until every fast client received `count` messages, or one failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + runner.TIMEOUT
        while min(received) < count and not failures:
            if loop.time() > deadline:
                raise Failure("the fast clients stalled at %r messages, short of %d"
                              % (received, count))
            await asyncio.sleep(0.002)

    async def check_disconnected(self, slow, size):
        expected = 0
        try:
            while True:
                message = await bounded(slow.recv(), "message %d or a Close at the slow client"
                                        % expected)
                if message == END:
                    raise Failure("the slow client, disconnected, still got the `end` sent "
                                  "after its disconnection")
                seq = number_of(message, size)
                if seq != expected:
                    raise Failure("the slow client got message %d after %d: messages queued "
                                  "before the disconnection must come in order, none missing"
                                  % (seq, expected - 1))
                expected += 1
        except websockets.exceptions.ConnectionClosed:
            pass
        if slow.close_code != 1013:
            raise Failure("the slow client read %d messages then was closed with %s %r, "
                          "not 1013" % (expected, slow.close_code, slow.close_reason))
        print("slow-consumer: the slow client got messages 0..%d then Close 1013 %r"
              % (expected - 1, slow.close_reason), flush=True)

    async def check_dropped(self, slow, sender, size, sent):
        """Under `drop`: the slow client reads an increasing sequence of fewer than `sent`
        messages, then an `end`. The `end` may be dropped too while its queue is still full,
        so one is sent every 200 ms until it comes through."""
        got_end = asyncio.Event()
        seqs = []

        async def resend_end():
            while not got_end.is_set():
                await sender.send(END)
                try:
                    await asyncio.wait_for(got_end.wait(), 0.2)
                except asyncio.TimeoutError:
                    pass

        resender = asyncio.get_running_loop().create_task(resend_end())
        try:
            while True:
                message = await bounded(slow.recv(), "the slow client's next message")
                if message == END:
                    got_end.set()
                    break
                seq = number_of(message, size)
                if seqs and seq <= seqs[-1]:
                    raise Failure("the slow client got message %d after %d" % (seq, seqs[-1]))
                seqs.append(seq)
        finally:
            got_end.set()
            await resender
        missing = sent - len(seqs)
        if missing == 0:
            raise Failure("the slow client received all %d messages: nothing was dropped"
                          % sent)
        print("slow-consumer: the slow client got %d messages, %d dropped"
              % (len(seqs), missing), flush=True)
        await self.close_all([slow], "slow client after drops")

    # --- responsive ---------------------------------------------------------------------------

    async def responsive(self):
        room = "after-%s" % self.tag
        first = await self.join(room)
        second = await self.join(room)
        await self.wait_members(first, 2, "responsive")
        await bounded(first.send("still here"), "send")
        got = await bounded(second.recv(), "a broadcast in a new room")
        if got != "still here":
            raise Failure("broadcast 'still here', got %s" % describe(got))
        await self.close_all([first, second], "responsive")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the room route without the room's name, ws://HOST:PORT/room")
    parser.add_argument("clients", type=int, help="clients in the fanout case (at least 2)")
    parser.add_argument("--policy", choices=["disconnect", "drop"], default="disconnect",
                        help="the server's slow-consumer policy on this route")
    parser.add_argument("--cafile", help="verify the server's certificate against this file")
    parser.add_argument("--message-size", type=int, default=16 * 1024,
                        help="bytes per message in the slow-consumer case (at least 8)")
    parser.add_argument("--max-volume", type=int, default=64,
                        help="MiB the broadcaster sends at most before failing")
    args = parser.parse_args()
    if args.clients < 2 or args.message_size < 8:
        parser.error("at least 2 clients, and messages of at least 8 bytes")
    rooms = Rooms(args)
    try:
        return await runner.run_cases([
            ("fanout", rooms.fanout),
            ("slow-consumer", rooms.slow_consumer),
            ("responsive", rooms.responsive),
        ])
    finally:
        for ws in rooms.opened:
            ws.transport.abort()


if __name__ == "__main__":
    runner.main(main())
