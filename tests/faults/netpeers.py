"""Peers that misbehave at the TCP level, run on a test host (tests/netns.py) as
`python netpeers.py KIND ...`; each prints "ready" once it listens, and runs until killed.

- `silent HOST PORT`: accepts every connection and reads what comes, forever, never
  answering: an Elasticsearch that hangs (a stuck JVM, a half-dead proxy). It says how
  long each connection stayed open: no client's request may outlive its timeout.
- `cutter HOST PORT UPSTREAM_PORT PROBABILITY SEED`: a TCP proxy to 127.0.0.1:UPSTREAM_PORT
  that, while on (SIGUSR1 turns it on, SIGUSR2 off), passes on only the first half of
  the first bytes of a bulk request's answer, then resets the connection (RST): the
  request was applied, its answer cut midway. Each bulk answer is cut with PROBABILITY.
- `answer HOST PORT STATUS`: an HTTP/1.1 server answering every request with STATUS
  (`200`, `503` ...) and a short body, then closing: a service that is up, or not ready.
- `dns HOST PORT NAME IP`: a nameserver (tests/integration/dns_server.py) answering NAME
  with the A record IP, over UDP and TCP.
"""

from __future__ import annotations

import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

CUTTING = threading.Event()


def _listen(host: str, port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(128)
    return server


def _forever(target: object, *args: object) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()  # type: ignore[arg-type]


def silent(host: str, port: int) -> None:
    """Also says, one line each, how long each connection stayed open (`closed SECONDS`)
    and, at SIGTERM, how long those still open have been (`open SECONDS`)."""
    server = _listen(host, port)
    opened: dict[socket.socket, float] = {}
    lock = threading.Lock()

    def report(*_: object) -> None:
        now = time.monotonic()  # no lock: the main thread may hold it as the signal comes
        print("".join(f"open {now - t:.3f}\n" for t in list(opened.values())), end="", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    print("ready", flush=True)

    def swallow(conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            with lock:
                print(f"closed {time.monotonic() - opened.pop(conn):.3f}", flush=True)

    while True:
        conn, _ = server.accept()
        with lock:
            opened[conn] = time.monotonic()
        _forever(swallow, conn)


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def cutter(host: str, port: int, upstream: int, probability: float, seed: int) -> None:
    rng = random.Random(seed)
    signal.signal(signal.SIGUSR1, lambda *_: CUTTING.set())
    signal.signal(signal.SIGUSR2, lambda *_: CUTTING.clear())
    server = _listen(host, port)
    print("ready", flush=True)

    def relay(client: socket.socket) -> None:
        # One thread per connection, both ways: a socket closed under another thread's
        # recv() would only be released, and its RST sent, once that recv() returns.
        up = socket.create_connection(("127.0.0.1", upstream))
        bulk = False  # the request in progress is a bulk request
        try:
            while True:
                readable, _, _ = select.select([client, up], [], [])
                if client in readable:
                    data = client.recv(65536)
                    if not data:
                        return
                    if data.startswith(b"POST ") and b"/_bulk" in data.split(b"\r\n", 1)[0]:
                        bulk = True
                    up.sendall(data)
                if up in readable:
                    data = up.recv(65536)
                    if not data:
                        return
                    if bulk and CUTTING.is_set() and rng.random() < probability:
                        client.sendall(data[: max(1, len(data) // 2)])
                        _reset(client)
                        return
                    bulk = False
                    client.sendall(data)
        except OSError:
            pass
        finally:
            up.close()
            client.close()

    while True:
        conn, _ = server.accept()
        _forever(relay, conn)


def answer(host: str, port: int, status: int) -> None:
    server = _listen(host, port)
    print("ready", flush=True)
    body = b"ready\n" if status < 400 else b"not ready\n"
    reply = (
        f"HTTP/1.1 {status} Whatever\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                conn.sendall(reply)
            except OSError:
                pass

    while True:
        conn, _ = server.accept()
        _forever(serve, conn)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "silent":
        silent(args[0], int(args[1]))
    elif kind == "answer":
        answer(args[0], int(args[1]), int(args[2]))
    elif kind == "cutter":
        cutter(args[0], int(args[1]), int(args[2]), float(args[3]), int(args[4]))
    elif kind == "dns":
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.integration.dns_server import DnsServer

        server = DnsServer(args[0], int(args[1])).start()
        server.add(args[2], "A", args[3])
        print("ready", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    else:
        raise SystemExit(f"unknown peer {kind!r}")
