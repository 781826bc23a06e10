"""What the WebSocket clients in this folder share: the command line's cases, TLS, and
connecting with the Python `websockets` library (10.x, the asyncio API).

Each script is a standalone client of a server under test. It runs its cases in order, prints
`ok NAME` per case that passed and `FAIL NAME: reason` per case that failed, and exits 0 when
every case passed, 1 when one failed, 2 on bad arguments (argparse). Every network operation is
bounded by a timeout, so a server that stops answering fails a case instead of hanging it.

TLS (`wss://`) verifies the server's certificate against `--cafile` when given (the tests make a
fresh self-signed one for `localhost`), and offers ALPN `http/1.1` only, as a browser opening a
WebSocket over HTTP/1.1 does. A `localhost` URL is dialled on 127.0.0.1, where the test servers
listen (never on ::1, which `localhost` may resolve to first).
"""

import asyncio
import random
import ssl
import sys
import traceback
import urllib.parse

import websockets
import websockets.exceptions

# The longest one operation (a connect, a send, a receive, a close) may take.
TIMEOUT = 20.0

# The largest message a client accepts (the echo cases send up to 1 MiB).
MAX_MESSAGE = 4 * 1024 * 1024


class Failure(Exception):
    """A check failed: the message says what was expected and what came instead."""


def payload(size, seed):
    """`size` deterministic bytes that do not compress (a different stream per `seed`), so a
    piece lost, repeated or moved cannot go unnoticed."""
    return random.Random(seed).randbytes(size)


def text(size, seed):
    """A `size`-byte ASCII text, varied but compressible (letters, digits, punctuation)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?-"
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(size))


def tls_context(cafile, alpn=("http/1.1",)):
    """A client TLS context: verifying against `cafile` when given, else not verifying."""
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def connect(url, cafile=None, compression="deflate", sock=None, **options):
    """`websockets.connect(url)` with this folder's defaults: `compression` is `"deflate"` or
    None, no automatic keepalive pings (a case pings when it means to), bounded opening and
    closing, messages up to MAX_MESSAGE. `sock` is an already connected socket to use."""
    parsed = urllib.parse.urlsplit(url)
    kwargs = dict(
        compression=compression,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        ping_interval=None,
        max_size=MAX_MESSAGE,
    )
    if parsed.scheme == "wss":
        kwargs["ssl"] = tls_context(cafile)
        kwargs["server_hostname"] = parsed.hostname
    if sock is not None:
        kwargs["sock"] = sock
    elif parsed.hostname == "localhost":
        kwargs["host"] = "127.0.0.1"
    kwargs.update(options)
    return websockets.connect(url, **kwargs)


def address(url):
    """(host, port) to dial for `url`: 127.0.0.1 for `localhost`."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname
    if host == "localhost":
        host = "127.0.0.1"
    port = parsed.port or (443 if parsed.scheme in ("wss", "https") else 80)
    return host, port


async def bounded(awaitable, what, timeout=TIMEOUT):
    """Awaits `awaitable`, failing with `what` after `timeout` seconds."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise Failure("no %s within %.0f s" % (what, timeout)) from None


def describe(message):
    """A short description of a received message, for failure reports."""
    if isinstance(message, str):
        kind, size = "text", len(message.encode())
        head = message[:40]
    else:
        kind, size = "binary", len(message)
        head = bytes(message[:16]).hex()
    return "%s of %d bytes starting %r" % (kind, size, head)


async def run_cases(cases):
    """Runs `cases` ([(name, coroutine function)]) in order; the process's exit status."""
    failed = []
    for name, case in cases:
        try:
            await case()
        except Failure as failure:
            failed.append(name)
            print("FAIL %s: %s" % (name, failure), flush=True)
        except websockets.exceptions.ConnectionClosed as closed:
            failed.append(name)
            print("FAIL %s: the connection closed: code %s reason %r (%r)"
                  % (name, closed.code, closed.reason, closed), flush=True)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as error:
            failed.append(name)
            print("FAIL %s: %r\n%s" % (name, error, traceback.format_exc()), flush=True)
        else:
            print("ok %s" % name, flush=True)
    if failed:
        print("%d of %d cases failed: %s" % (len(failed), len(cases), ", ".join(failed)),
              flush=True)
        return 1
    return 0


def main(coroutine):
    """Runs the script's main coroutine and exits with its status."""
    sys.exit(asyncio.run(coroutine))
