"""Peers that misbehave on purpose, on loopback sockets, for waitfor's hostile-peer tests.

`HostileServer` accepts TCP connections (optionally completing a TLS handshake first) and
hands each one to a *behaviour*: a function of the connection and a stop event. The
behaviours below cover what a broken or malicious service does: never answer, answer
garbage, reset mid-handshake, close at once, drip one byte at a time, send forever,
serve HTTP redirects. `tls_certs` makes expired, wrong-host and self-signed certificates.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import trustme

HOST = "127.0.0.1"
POLL = 0.1  # how often a behaviour looks at the stop event while it waits

Behaviour = Callable[[socket.socket, threading.Event], None]


class HostileServer:
    """Listens on HOST:port; every connection runs `behaviour` in its own thread."""

    def __init__(self, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(POLL)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0  # TCP connections accepted
        self.handshake_errors: list[str] = []  # TLS handshakes the client refused
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    def __enter__(self) -> HostileServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self.listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)
        for conn in conns:
            conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(POLL)
            if self.tls is not None:
                conn = self._handshake(conn)
                if conn is None:
                    return
            self.behaviour(conn, self._stop)

    def _handshake(self, conn: socket.socket) -> ssl.SSLSocket | None:
        conn.settimeout(5)
        try:
            wrapped = self.tls.wrap_socket(conn, server_side=True)  # type: ignore[union-attr]
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(exc))
            return None
        wrapped.settimeout(POLL)
        with self._lock:
            self._conns.append(wrapped)
        return wrapped


# --- reading and waiting, stop-aware -----------------------------------------------------


def read_some(conn: socket.socket, stop: threading.Event, wait: float = 0.5) -> bytes:
    """The client's first bytes, or b"" when it says nothing within `wait` (MySQL waits)."""
    until = time.monotonic() + wait
    while not stop.is_set() and time.monotonic() < until:
        try:
            return conn.recv(65536)
        except TimeoutError:
            continue
    return b""


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open, reading and ignoring, until the client hangs up."""
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


def reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock = conn.unwrap() if isinstance(conn, ssl.SSLSocket) else conn
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# --- behaviours --------------------------------------------------------------------------


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept and never answer (a wedged process, a SYN-proxy, TLS not started)."""
    hold(conn, stop)


def close_at_once(conn: socket.socket, stop: threading.Event) -> None:
    conn.close()


def garbage(data: bytes) -> Behaviour:
    """Answer the client's first bytes (or its silence) with `data`, then keep listening."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_some(conn, stop)
        conn.sendall(data)
        hold(conn, stop)

    return behave


def reset_mid_handshake(prefix: bytes = b"") -> Behaviour:
    """Send `prefix` (the start of a greeting), read the client's first bytes, then RST."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        if prefix:
            conn.sendall(prefix)
        read_some(conn, stop, wait=0.3)
        reset(conn)

    return behave


def drip(data: bytes, every: float = 1.0) -> Behaviour:
    """Answer with `data` one byte per `every` seconds (a slowloris in reverse)."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_some(conn, stop)
        for byte in data:
            conn.sendall(bytes([byte]))
            if stop.wait(every):
                return

    return behave


def endless(head: bytes, chunk: bytes) -> Behaviour:
    """Send `head`, then `chunk` over and over until the client hangs up."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_some(conn, stop)
        conn.settimeout(5)
        conn.sendall(head)
        while not stop.is_set():
            conn.sendall(chunk)  # OSError (reset, broken pipe) once the client is gone

    return behave


def http_response(status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_routes(routes: dict[str, bytes]) -> Behaviour:
    """A one-request HTTP server: the request path's raw response, or a 404."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        request = b""
        while b"\r\n\r\n" not in request and not stop.is_set():
            chunk = read_some(conn, stop, wait=5)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
        conn.sendall(routes.get(path, http_response("404 Not Found")))
        hold(conn, stop)

    return behave


def redirect(location: str) -> bytes:
    return http_response("302 Found", {"Location": location})


# --- protocol-shaped garbage ---------------------------------------------------------------

RANDOM = bytes(range(256))[::-1] * 4  # binary noise, the same on every run
HTTP_400 = http_response("400 Bad Request")
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1\r\n"


# --- certificates --------------------------------------------------------------------------


class Certs:
    """A CA, and server contexts whose certificates are broken in one way each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def _context(self, cert: trustme.LeafCert) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    def valid(self) -> ssl.SSLContext:
        return self._context(self.ca.issue_cert("localhost", "127.0.0.1"))

    def expired(self) -> ssl.SSLContext:
        now = datetime.datetime.now(datetime.UTC)
        cert = self.ca.issue_cert(
            "localhost",
            "127.0.0.1",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
        return self._context(cert)

    def wrong_host(self) -> ssl.SSLContext:
        return self._context(self.ca.issue_cert("db.other.example"))

    def self_signed(self) -> ssl.SSLContext:
        """A certificate that signs itself, for the right name: no CA vouches for it."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256())
        )
        cert_file = self.directory / "self-signed.pem"
        key_file = self.directory / "self-signed.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        return ctx
