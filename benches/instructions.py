#!/usr/bin/env python3
"""User-space instructions per keep-conn request, counted by callgrind.

Instruction counts are stable on a noisy shared machine where timings are
not, and need no hardware counters. The script runs examples/hello (one
worker) under `valgrind --tool=callgrind` twice, serving N and then 6N
requests with about 25 nginx-like params on one kept-open connection, and
reports the difference divided by 5N: the cost of one request, without
start-up and shutdown.

    cargo build --release --examples
    python3 benches/instructions.py [N]          (default N = 1000)

Add `--annotate` to print the functions that cost the most in the longer run.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

APP = os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "hello")

NAMES = [
    "SCRIPT_FILENAME", "QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SCRIPT_NAME", "REQUEST_URI", "DOCUMENT_URI", "DOCUMENT_ROOT", "SERVER_PROTOCOL",
    "REQUEST_SCHEME", "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "REMOTE_ADDR", "REMOTE_PORT",
    "SERVER_ADDR", "SERVER_PORT", "SERVER_NAME", "REDIRECT_STATUS", "HTTP_HOST",
    "HTTP_USER_AGENT", "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING",
    "HTTP_CONNECTION",
]


def record(rtype, content):
    pad = -len(content) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), pad, 0) + content + b"\0" * pad


def pair(name, value):
    assert len(name) < 128 and len(value) < 128
    return bytes([len(name), len(value)]) + name + value


def request():
    params = b"".join(
        pair(n.encode(), b"GET" if n == "REQUEST_METHOD" else b"/a/value/" + n.lower().encode())
        for n in NAMES
    )
    begin = struct.pack(">HB5x", 1, 1)  # responder, keep the connection
    return record(1, begin) + record(4, params) + record(4, b"") + record(5, b"")


def count(requests, out):
    """Total instructions of a run of hello serving `requests` requests."""
    d = tempfile.mkdtemp()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(d + "/s")
    listener.listen(16)
    env = dict(os.environ, FCGI_WORKERS="1")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, APP],
        stdin=listener.fileno(), stderr=subprocess.DEVNULL, env=env,
    )
    time.sleep(1.5)
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(d + "/s")
    req = request()
    end = struct.pack(">BBHHBB", 1, 3, 1, 8, 0, 0)
    for _ in range(requests):
        conn.sendall(req)
        got = b""
        while end not in got:
            chunk = conn.recv(65536)
            assert chunk, "the server closed the connection"
            got += chunk
        assert got.startswith(b"\x01\x06"), "not a STDOUT record"
    conn.close()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    totals = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    line = next(l for l in totals.splitlines() if "PROGRAM TOTALS" in l)
    return int(line.split()[0].replace(",", "")), totals


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1000
    d = tempfile.mkdtemp()
    short, _ = count(n, d + "/short.out")
    long, annotated = count(6 * n, d + "/long.out")
    print(f"user-space instructions per keep-conn hello request: {(long - short) / (5 * n):.0f}")
    if "--annotate" in sys.argv:
        print(annotated)


if __name__ == "__main__":
    main()
