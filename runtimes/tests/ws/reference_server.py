#!/usr/bin/env python3
"""A reference WebSocket server on the Python `websockets` library, with the routes the clients
of this folder expect, so that the clients can be checked against a known-good server (this is
how they were validated before weft's own server existed). Not used by the Rust tests.

    python3 reference_server.py [--port P] [--cert FILE --key FILE]

It prints `listening on PORT` once ready. Routes (those of the test service of
`runtimes/tests/every_runtime_ws.rs`):

  /ws                 echo every message (permessage-deflate when the client offers it)
  /room/NAME          join room NAME; every message is broadcast to the other members, except
                      the text `?stats`, answered to the sender alone with
                      `members=M dropped=D` (members of the room now; messages dropped for
                      slow members so far). A member whose send queue is full is closed with
                      1013 and leaves the room.
  /room-drop/NAME     the same, but a slow member misses the message instead (counted)
  /private            401 without `Authorization`, 403 unless it is `Bearer ok`, else echo

One known difference: `websockets` answers an unsupported `Sec-WebSocket-Version` with 400,
not the 426 of RFC 6455 §4.4 that weft sends, so `refuse.py`'s `bad-version` case fails here.
"""

import argparse
import asyncio
import http
import ssl

import websockets

# Bytes queued for one member before it counts as slow.
SEND_QUEUE = 256 * 1024


class Member:
    """One socket in a room, with a bounded queue drained by a writer task."""

    def __init__(self, ws):
        self.ws = ws
        self.queue = asyncio.Queue()
        self.queued = 0
        self.disconnect = None  # the close code once disconnected as slow
        self.writer = asyncio.get_running_loop().create_task(self.write())

    def try_send(self, message):
        """Queues `message` unless the queue is full (a message larger than the queue still
        goes into an empty one); whether it was queued."""
        if self.disconnect is not None:
            return False
        if self.queued and self.queued + len(message) > SEND_QUEUE:
            return False
        self.queued += len(message)
        self.queue.put_nowait(message)
        return True

    def close_now(self, code):
        """Drops what is queued and closes with `code` after the message being written."""
        self.disconnect = code
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def write(self):
        while True:
            message = await self.queue.get()
            if message is None:
                await self.ws.close(self.disconnect, "slow consumer")
                return
            self.queued -= len(message)
            try:
                await self.ws.send(message)
            except websockets.exceptions.ConnectionClosed:
                return


class Room:
    def __init__(self, policy):
        self.policy = policy  # "disconnect" or "drop"
        self.members = {}
        self.dropped = 0

    def broadcast(self, message, sender):
        for key, member in list(self.members.items()):
            if key == sender:
                continue
            if member.try_send(message):
                continue
            if self.policy == "drop":
                self.dropped += 1
            else:
                del self.members[key]
                member.close_now(1013)


ROOMS = {}


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def room(ws, policy, name):
    room = ROOMS.setdefault((policy, name), Room(policy))
    key = id(ws)
    member = Member(ws)
    room.members[key] = member
    try:
        async for message in ws:
            if message == "?stats":
                member.try_send("members=%d dropped=%d" % (len(room.members), room.dropped))
            else:
                room.broadcast(message, key)
    except websockets.exceptions.ConnectionClosed:
        pass
    finally:
        room.members.pop(key, None)
        if member.disconnect is None:
            member.writer.cancel()
        else:
            try:
                await member.writer
            except (asyncio.CancelledError, websockets.exceptions.ConnectionClosed):
                pass


async def route(ws, path):
    if path.startswith("/room/"):
        await room(ws, "disconnect", path[len("/room/"):])
    elif path.startswith("/room-drop/"):
        await room(ws, "drop", path[len("/room-drop/"):])
    else:
        await echo(ws)


async def refuse(path, headers):
    if path != "/private":
        return None
    token = headers.get("Authorization")
    if token is None:
        return http.HTTPStatus.UNAUTHORIZED, [("WWW-Authenticate", "Bearer")], b"log in\n"
    if token != "Bearer ok":
        return http.HTTPStatus.FORBIDDEN, [], b"forbidden\n"
    return None


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    server = await websockets.serve(route, "127.0.0.1", args.port, process_request=refuse,
                                    ssl=context, max_size=16 * 1024 * 1024, ping_interval=None)
    port = server.sockets[0].getsockname()[1]
    print("listening on %d" % port, flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
