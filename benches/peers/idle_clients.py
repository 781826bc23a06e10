#!/usr/bin/env python3
"""Open N keep-alive connections to a server, one request each, hold them idle, and read the
server's memory (benches/idle.sh runs it; loopback only, bounded in time).

    idle_clients.py --pid PID --url http://127.0.0.1:PORT [--conns 10000] [--settle 1]
                    [--close-wait 12]

1. Reads the server's VmRSS before (the baseline).
2. Opens --conns TCP connections (the soft RLIMIT_NOFILE is raised to the hard limit), then
   sends `GET /plaintext HTTP/1.1` on each and reads each whole response (status 200, the
   Content-Length body): every connection is then an idle keep-alive connection.
3. After --settle seconds, reads VmRSS, VmHWM and the server's open descriptors, and checks that
   every connection is still open (none readable: no EOF, no stray bytes).
4. Holds them until the server closes them (its keep-alive timeout), at most --close-wait
   seconds, and reads VmRSS again: what the server keeps once they are gone.

Prints progress lines, then one line `RESULT key=value ...` for the calling script.
"""

import argparse
import os
import resource
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--close-wait", type=float, default=12.0)
    args = ap.parse_args()

    url = urlsplit(args.url)
    host, port = url.hostname, url.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("idle_clients.py: loopback only")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 64
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit(f"idle_clients.py: RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rss_base = status_kib(args.pid, "VmRSS")
    fds_base = open_fds(args.pid)

    t0 = time.monotonic()
    socks = []
    for i in range(args.conns):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((host, port))
        except OSError as e:
            sys.exit(f"idle_clients.py: connection {i} failed: {e}")
        socks.append(s)
    t_open = time.monotonic() - t0
    log(f"   {len(socks)} connections open in {t_open:.2f} s")

    request = f"GET /plaintext HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    for s in socks:
        s.sendall(request)

    # Read every response whole, all connections at once.
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    pending, bad, deadline = len(socks), 0, time.monotonic() + 20
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                bad += 1
                pending -= 1
                sel.unregister(s)
                continue
            buf = bufs[s] + data
            bufs[s] = buf
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = buf[:head_end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value)
            if len(buf) < head_end + 4 + length:
                continue
            if not head.startswith("http/1.1 200"):
                bad += 1
            pending -= 1
            sel.unregister(s)
    t_resp = time.monotonic() - t0
    log(f"   responses: {len(socks) - pending - bad} ok, {bad} bad, {pending} missing, "
        f"{t_resp:.2f} s after the first connect")

    time.sleep(args.settle)
    rss_open = status_kib(args.pid, "VmRSS")
    hwm = status_kib(args.pid, "VmHWM")
    fds_open = open_fds(args.pid)
    # Still open: nothing to read (a closed one reads EOF).
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    readable = len(sel.select(timeout=0))
    held = len(socks) - readable
    since = time.monotonic() - t0 - t_resp
    log(f"   {held} of {len(socks)} still open {since:.1f} s after the responses; server RSS "
        f"{rss_open / 1024:.1f} MiB (baseline {rss_base / 1024:.1f} MiB), "
        f"{fds_open} descriptors (baseline {fds_base})")

    # Hold until the server closes them (its keep-alive timeout), within close-wait.
    closed, deadline = set(), time.monotonic() + args.close_wait
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, ConnectionResetError):
                data = b""
            if not data:
                closed.add(s)
                sel.unregister(s)
    time.sleep(0.5)
    rss_after = status_kib(args.pid, "VmRSS")
    log(f"   the server closed {len(closed)} of {len(socks)} within {args.close_wait:.0f} s; "
        f"RSS then {rss_after / 1024:.1f} MiB")
    for s in socks:
        s.close()

    print(f"RESULT conns={len(socks)} ok={len(socks) - pending - bad} bad={bad} missing={pending} "
          f"held={held} rss_base_kib={rss_base} rss_open_kib={rss_open} hwm_kib={hwm} "
          f"rss_after_kib={rss_after} fds_open={fds_open} closed={len(closed)} "
          f"open_s={t_open:.2f}")


if __name__ == "__main__":
    main()
