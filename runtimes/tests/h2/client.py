"""The HTTP/2 client connection the scripts in this folder share, on python3-h2.

Each script is a standalone client:

    python3 SCRIPT HOST PORT [--tls] [--case NAME]...

It runs its cases (each on a fresh connection; all the default ones when no --case is given),
prints `ok NAME` per case that passed and `FAIL NAME: reason` per case that failed, and exits 0
when every case passed, 1 when one failed, 2 on bad arguments. With --tls it speaks TLS and
requires ALPN to pick `h2` (the certificate is not verified unless --cafile is given: the tests
use a fresh self-signed one); without it, cleartext HTTP/2 with prior knowledge (h2c).

Every socket read and write is bounded by a timeout and every wait by a deadline, so a server
that stops answering fails a case instead of hanging it.

The server's routes are those of `weft echo` (and of the hyper peer's --h2 mode):
`/plaintext` answers `Hello, World!`; `/stream?chunks=N&size=S` streams N*S bytes where byte k
is `b'a' + k % 26`; any other path echoes the request body.

Incoming bytes are split into frames here and handed to h2's state machine one frame at a time,
so that after a GOAWAY (which closes h2's state machine for good) the rest of the connection
can still be read: frames are then decoded here (`raw mode`), which the graceful-close cases
need to see a stream finish after the GOAWAY.
"""

import argparse
import select
import socket
import ssl
import struct
import sys
import time
import traceback

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

# The longest one socket operation, or one wait for the server, may take.
TIMEOUT = 10.0

PATTERN_PERIOD = 26

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
FRAME_NAMES = {
    DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION",
}

# Flags.
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

ErrorCodes = h2.errors.ErrorCodes
SettingCodes = h2.settings.SettingCodes


class Failure(Exception):
    """A check failed: the message says what was expected and what came instead."""


def code_name(code):
    """`PROTOCOL_ERROR (0x1)` for an error code, known or not."""
    try:
        return "%s (0x%x)" % (ErrorCodes(code).name, code)
    except ValueError:
        return "unknown (0x%x)" % code


def pattern(offset, length):
    """Bytes `offset..offset+length` of a `/stream` body (and of the uploads here)."""
    return bytes(ord("a") + (k % PATTERN_PERIOD) for k in range(offset, offset + length))


def frame(kind, flags, stream_id, payload=b""):
    """One frame's bytes: a 9-byte header (RFC 9113 §4.1), then `payload` as is."""
    header = struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id)
    return header + payload


class Stream:
    """What the server sent on one stream."""

    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.headers = None  # the final response head: [(name, value)] as bytes
        self.data = bytearray()
        self.flow_controlled = 0  # DATA bytes counted against flow control (with padding)
        self.ended = False  # END_STREAM seen
        self.reset = None  # the server's RST_STREAM error code

    def status(self):
        for name, value in self.headers or []:
            if name == b":status":
                return int(value)
        return None

    def header(self, wanted):
        for name, value in self.headers or []:
            if name == wanted:
                return value
        return None

    def done(self):
        return self.ended or self.reset is not None

    def describe(self):
        return "stream %d: status %s, %d body bytes, %s" % (
            self.stream_id, self.status(), len(self.data),
            "reset %s" % code_name(self.reset) if self.reset is not None
            else ("ended" if self.ended else "open"))


class Client:
    """One HTTP/2 connection to the server under test, driven by the calling case."""

    def __init__(self, host, port, tls=False, cafile=None, settings=None, auto_ack=True,
                 validate_headers=True):
        self.host, self.port, self.tls = host, port, tls
        self.authority = "%s:%d" % (host, port)
        self.sock = connect(host, port, tls, cafile)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=validate_headers,
            normalize_outbound_headers=validate_headers,
        )
        self.conn = h2.connection.H2Connection(config=config)
        # Acknowledge each DATA frame as it comes (WINDOW_UPDATE), unless the case does it.
        self.auto_ack = auto_ack
        self.streams = {}
        self.server_settings = {}
        self.settings_acked = False
        self.goaways = []  # (error code, last stream id, debug data)
        self.window_updates = 0
        self.pings_acked = 0
        self.closed = False  # the server closed the connection (EOF or reset)
        self.raw_mode = False  # a GOAWAY came: frames are decoded here from now on
        self.trace = []  # every frame received: "TYPE stream=N flags=0x.. len=N"
        self._unparsed = bytearray()
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    # --- output ---------------------------------------------------------------------------

    def flush(self):
        """Sends what h2 has queued."""
        data = self.conn.data_to_send()
        if data:
            self.write(data)

    def write(self, data):
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Failure("the server took no bytes for %.0f s (a write timed out)" % TIMEOUT)

    def send_raw(self, data):
        """Sends bytes h2 does not know about (after what h2 has queued)."""
        self.flush()
        self.write(data)

    def request(self, method, path, headers=(), end_stream=True):
        """Opens a stream with a request head; its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https" if self.tls else b"http"),
            (b":authority", self.authority.encode()),
            (b":path", path.encode()),
        ]
        head += [(n.encode() if isinstance(n, str) else n, v.encode() if isinstance(v, str) else v)
                 for n, v in headers]
        self.conn.send_headers(stream_id, head, end_stream=end_stream)
        self.streams[stream_id] = Stream(stream_id)
        self.flush()
        return stream_id

    def request_head(self, stream_id, head, end_stream=True, over_limit=False):
        """Sends exactly `head` (a list of (name, value) bytes) on `stream_id`. With
        `over_limit`, even past the server's SETTINGS_MAX_CONCURRENT_STREAMS, which h2 would
        otherwise refuse to do."""
        if over_limit:
            real = self.conn.remote_settings
            self.conn.remote_settings = _UnlimitedStreams(real)
            try:
                self.conn.send_headers(stream_id, head, end_stream=end_stream)
            finally:
                self.conn.remote_settings = real
        else:
            self.conn.send_headers(stream_id, head, end_stream=end_stream)
        self.streams[stream_id] = Stream(stream_id)
        self.flush()

    def send_body(self, stream_id, body, end_stream=True):
        """Sends `body` on `stream_id` within the server's flow-control windows, reading (and
        acknowledging) what the server sends meanwhile, so an echo cannot deadlock us."""
        sent = 0
        while sent < len(body):
            self.poll_input()
            self.check_alive("sending the body of stream %d (%d of %d bytes sent)"
                             % (stream_id, sent, len(body)))
            room = min(self.conn.local_flow_control_window(stream_id),
                       self.conn.max_outbound_frame_size, len(body) - sent)
            if room <= 0:
                self.wait(lambda: self.conn.local_flow_control_window(stream_id) > 0,
                          "a WINDOW_UPDATE for stream %d (its window is 0 after %d of %d body "
                          "bytes)" % (stream_id, sent, len(body)))
                continue
            self.conn.send_data(stream_id, body[sent:sent + room])
            sent += room
            self.flush()
        if end_stream:
            self.conn.end_stream(stream_id)
            self.flush()

    def ping(self):
        """Sends a PING and waits for its ACK: proof the connection still works."""
        before = self.pings_acked
        self.conn.ping(b"weftping")
        self.flush()
        self.wait(lambda: self.pings_acked > before, "the ACK of a PING")

    # --- input ------------------------------------------------------------------------------

    def handshake(self):
        """Waits for the server's SETTINGS and its ACK of ours."""
        self.wait(lambda: self.server_settings and self.settings_acked,
                  "the server's SETTINGS and its ACK of the client's")
        first = self.trace[0] if self.trace else ""
        if not first.startswith("SETTINGS "):
            raise Failure("the server's first frame is %s, not SETTINGS (RFC 9113 §3.4)" % first)

    def stream(self, stream_id):
        return self.streams.setdefault(stream_id, Stream(stream_id))

    def response(self, stream_id, what=None):
        """Waits for the stream to end (or be reset); its Stream."""
        stream = self.stream(stream_id)
        self.wait(stream.done, what or "the end of stream %d" % stream_id)
        return stream

    def get(self, path):
        """A GET on a new stream, waited for; its Stream."""
        return self.response(self.request("GET", path))

    def expect_served(self, what):
        """Checks the connection still serves a new stream: GET /plaintext answers 200."""
        stream = self.get("/plaintext")
        served = stream.status() == 200 and bytes(stream.data) == b"Hello, World!"
        if stream.reset is not None or not served:
            raise Failure("%s: the next stream (GET /plaintext) was not served: %s"
                          % (what, stream.describe()))

    def expect_reset(self, stream_id, code, what):
        """Waits for RST_STREAM on `stream_id` and checks its code and that the connection
        lives on."""
        stream = self.stream(stream_id)
        self.wait(stream.done,
                  "RST_STREAM %s on stream %d (%s)" % (code_name(code), stream_id, what))
        if stream.reset is None:
            raise Failure("%s: expected RST_STREAM %s, the stream ended normally: %s"
                          % (what, code_name(code), stream.describe()))
        if stream.reset != code:
            raise Failure("%s: expected RST_STREAM %s, got %s"
                          % (what, code_name(code), code_name(stream.reset)))
        if self.goaways:
            raise Failure("%s: a stream error, yet the server sent GOAWAY %s"
                          % (what, code_name(self.goaways[0][0])))

    def expect_goaway(self, code, what):
        """Waits for GOAWAY with `code`, then for the server to close the connection."""
        self.wait(lambda: self.goaways, "GOAWAY %s (%s)" % (code_name(code), what),
                  allow_close=True)
        if not self.goaways:
            raise Failure("%s: the server closed the connection without a GOAWAY (expected %s)"
                          % (what, code_name(code)))
        got = self.goaways[0][0]
        if got != code:
            raise Failure("%s: expected GOAWAY %s, got %s (debug data %r)"
                          % (what, code_name(code), code_name(got), self.goaways[0][2]))
        self.expect_closed("after GOAWAY %s (%s)" % (code_name(code), what))

    def expect_closed(self, what):
        """Waits for the server to close the connection."""
        self.wait(lambda: self.closed, "the server to close the connection %s" % what,
                  allow_close=True)

    def check_alive(self, what):
        """Fails when the server sent GOAWAY or closed the connection."""
        if self.goaways:
            raise Failure("GOAWAY %s while %s; %s"
                          % (code_name(self.goaways[0][0]), what, self.summary()))
        if self.closed:
            raise Failure("the server closed the connection while %s; %s" % (what, self.summary()))

    def wait(self, until, what, timeout=TIMEOUT * 3, allow_close=False):
        """Reads from the server until `until()` holds; fails after `timeout` seconds, or when
        the connection closes first (unless `allow_close`)."""
        deadline = time.monotonic() + timeout
        while not until():
            if self.closed:
                if allow_close:
                    return
                raise Failure("the server closed the connection while the client waited for %s; "
                              "%s" % (what, self.summary()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("no %s within %.0f s; %s" % (what, timeout, self.summary()))
            self.read_once(min(left, TIMEOUT), what)

    def poll_input(self, wait=0.0):
        """Reads whatever the server has sent, waiting at most `wait` seconds for the first
        byte; True when something came."""
        got = False
        while not self.closed:
            pending = self.tls and self.sock.pending() > 0
            if not pending:
                readable, _, _ = select.select([self.sock], [], [], wait)
                if not readable:
                    return got
            self.read_once(TIMEOUT, "input")
            got = True
            wait = 0.0
        return got

    def read_once(self, timeout, what):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            data = None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            data = b""
        finally:
            self.sock.settimeout(TIMEOUT)
        if data is None:
            return  # silence: the caller's deadline decides
        if not data:
            self.closed = True
            return
        self._unparsed += data
        self._take_frames()

    def _take_frames(self):
        while len(self._unparsed) >= 9:
            length = int.from_bytes(self._unparsed[0:3], "big")
            if len(self._unparsed) < 9 + length:
                return
            raw = bytes(self._unparsed[:9 + length])
            del self._unparsed[:9 + length]
            kind, flags = raw[3], raw[4]
            stream_id = int.from_bytes(raw[5:9], "big") & 0x7FFFFFFF
            self.trace.append("%s stream=%d flags=0x%x len=%d"
                              % (FRAME_NAMES.get(kind, "type-0x%x" % kind), stream_id, flags,
                                 length))
            if self.raw_mode:
                self._raw_frame(kind, flags, stream_id, raw[9:])
            else:
                self._h2_frame(raw)

    def _h2_frame(self, raw):
        try:
            events = self.conn.receive_data(raw)
        except h2.exceptions.ProtocolError as error:
            raise Failure("the server broke HTTP/2 (%r); frames so far: %s"
                          % (error, self.trace[-20:]))
        for event in events:
            self._record(event)
        if not self.raw_mode:
            try:
                self.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _record(self, event):
        if isinstance(event, (h2.events.ResponseReceived, h2.events.InformationalResponseReceived)):
            if isinstance(event, h2.events.ResponseReceived):
                self.stream(event.stream_id).headers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.stream(event.stream_id)
            stream.data += event.data
            stream.flow_controlled += event.flow_controlled_length
            if self.auto_ack and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.stream(event.stream_id).ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                self.stream(event.stream_id).reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways.append(
                (int(event.error_code), event.last_stream_id, event.additional_data))
            self.raw_mode = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.server_settings[int(code)] = change.new_value
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_updates += 1
        elif isinstance(event, h2.events.PingAckReceived):
            self.pings_acked += 1

    def _raw_frame(self, kind, flags, stream_id, payload):
        """A frame after GOAWAY, decoded here (h2's state machine is closed by then)."""
        if kind in (HEADERS, DATA) and flags & PADDED and payload:
            pad = payload[0]
            payload = payload[1:len(payload) - pad]
        if kind == HEADERS and flags & PRIORITY_FLAG:
            payload = payload[5:]
        if kind == DATA:
            self.stream(stream_id).data += payload
        elif kind == HEADERS:
            headers = self.conn.decoder.decode(payload, raw=True)
            stream = self.stream(stream_id)
            status = dict(headers).get(b":status", b"")
            if stream.headers is None and not status.startswith(b"1"):
                stream.headers = list(headers)
        elif kind == RST_STREAM and len(payload) == 4:
            self.stream(stream_id).reset = int.from_bytes(payload, "big")
        elif kind == GOAWAY and len(payload) >= 8:
            last = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            self.goaways.append((int.from_bytes(payload[4:8], "big"), last, payload[8:]))
        elif kind == PING and not flags & ACK:
            self.write(frame(PING, ACK, 0, payload))
        if kind in (HEADERS, DATA) and flags & END_STREAM:
            self.stream(stream_id).ended = True
        if kind == DATA and payload:
            # Keep the windows open: the server may still be sending what it promised.
            increment = struct.pack(">I", len(payload))
            self.write(frame(WINDOW_UPDATE, 0, 0, increment)
                       + frame(WINDOW_UPDATE, 0, stream_id, increment))

    def summary(self):
        parts = ["%s" % s.describe() for s in self.streams.values()]
        if self.goaways:
            code, last, _ = self.goaways[0]
            parts.append("GOAWAY %s last_stream_id=%d" % (code_name(code), last))
        parts.append("last frames received: %s" % (self.trace[-12:],))
        return "; ".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class _UnlimitedStreams:
    """The server's settings as h2 sees them, but with no limit on concurrent streams, so a
    case can open one stream too many on purpose."""

    def __init__(self, real):
        self._real = real

    max_concurrent_streams = 2 ** 31

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __getitem__(self, key):
        return self._real[key]


def connect(host, port, tls, cafile):
    """A TCP (or TLS, ALPN `h2` required) connection, every operation bounded by TIMEOUT."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not tls:
        return sock
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(sock, server_hostname="localhost")
    chosen = sock.selected_alpn_protocol()
    if chosen != "h2":
        raise Failure("TLS: the server chose ALPN %r, not 'h2'" % chosen)
    return sock


def run(description, cases, default_cases=None):
    """Parses the command line and runs the cases asked for; exits with the status above.

    `cases` maps a case name to a function of the parsed arguments; `default_cases` lists the
    ones run when no --case is given (all by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", action="store_true",
                        help="TLS with ALPN h2 (else h2c prior knowledge)")
    parser.add_argument("--cafile", help="verify the server's certificate against this CA file")
    parser.add_argument("--case", action="append", choices=sorted(cases),
                        help="run only this case (repeatable)")
    args = parser.parse_args()
    selected = args.case or list(default_cases or cases)
    failed = []
    for name in selected:
        try:
            cases[name](args)
        except Failure as failure:
            failed.append(name)
            print("FAIL %s: %s" % (name, failure), flush=True)
        except (OSError, h2.exceptions.H2Error) as error:
            failed.append(name)
            print("FAIL %s: %r\n%s" % (name, error, traceback.format_exc()), flush=True)
        else:
            print("ok %s" % name, flush=True)
    if failed:
        print("%d of %d cases failed: %s" % (len(failed), len(selected), ", ".join(failed)),
              flush=True)
        sys.exit(1)
    sys.exit(0)


def client(args, **options):
    """A Client for the command line's server."""
    return Client(args.host, args.port, tls=args.tls, cafile=args.cafile, **options)
