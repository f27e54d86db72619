"""MySQL 8's default login, caching_sha2_password, against a server written from MySQL's
documentation of it ("Caching SHA-2 Pluggable Authentication", the client/server
protocol's AuthSwitchRequest and AuthMoreData), since no MySQL server can be installed
here (Debian ships MariaDB, which has no such plugin): the fast answer when the server
has the account cached, the full one without TLS (the client asks for the server's RSA
public key and sends the password encrypted with RSA-OAEP, decrypted here by
`cryptography`), a switch to it from mysql_native_password, and a wrong password. The
real mysql image, through testcontainers, runs where it can be pulled."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import json_events, run_waitfor

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
FAIL_FAST = ("--timeout", "2s", "--attempt-timeout", "1s", "--interval", "200ms", "--json")
PASSWORD = "sha2-Pw-7q"


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def read(conn: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 4:
        chunk = conn.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    size, seq = int.from_bytes(head[:3], "little"), head[3]
    body = b""
    while len(body) < size:
        body += conn.recv(size - len(body))
    return seq, body


class MySQL8:
    """Greets with caching_sha2_password (or mysql_native_password, then switches), checks
    the scramble against SHA256(SHA256(password)) when `cached`, else runs the full
    authentication; answers COM_QUERY with one row."""

    def __init__(self, *, cached: bool, greet_native: bool = False) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.cached, self.greet_native = cached, greet_native
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.stored = hashlib.sha256(hashlib.sha256(PASSWORD.encode()).digest()).digest()
        self.said: list[str] = []  # what each login went through
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                with conn, contextlib.suppress(OSError, ConnectionError):
                    conn.settimeout(5)
                    self._session(conn)

    def _greeting(self, nonce: bytes) -> bytes:
        plugin = b"mysql_native_password" if self.greet_native else b"caching_sha2_password"
        caps = 0xFFFFF7FF
        return (b"\x0a8.4.3\0" + struct.pack("<I", 7) + nonce[:8] + b"\0"
                + struct.pack("<HBHH", caps & 0xFFFF, 255, 2, caps >> 16) + bytes([21])
                + bytes(10) + nonce[8:] + b"\0" + plugin + b"\0")  # fmt: skip

    def _session(self, conn: socket.socket) -> None:
        nonce = os.urandom(20)
        conn.sendall(packet(0, self._greeting(nonce)))
        seq, response = read(conn)
        user_end = response.index(b"\0", 32)
        auth_len = response[user_end + 1]
        auth = response[user_end + 2 : user_end + 2 + auth_len]
        plugin = response[user_end + 2 + auth_len :].rstrip(b"\0").split(b"\0")[-1]
        if plugin != b"caching_sha2_password":  # switch, with a fresh nonce
            nonce = os.urandom(20)
            conn.sendall(packet(seq + 1, b"\xfecaching_sha2_password\0" + nonce + b"\0"))
            seq, auth = read(conn)
            self.said.append("switched")
        if self.cached:
            digest = hashlib.sha256(self.stored + nonce).digest()
            first = bytes(a ^ b for a, b in zip(auth, digest, strict=False))
            good = len(auth) == 32 and hashlib.sha256(first).digest() == self.stored
            self.said.append("fast")
            if good:
                conn.sendall(packet(seq + 1, b"\x01\x03"))
                seq += 1
        else:
            conn.sendall(packet(seq + 1, b"\x01\x04"))
            seq, request = read(conn)
            assert request == b"\x02", request
            conn.sendall(packet(seq + 1, b"\x01" + self.pem))
            seq, encrypted = read(conn)
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            sha1 = hashes.SHA1()  # noqa: S303 - what MySQL's RSA_PKCS1_OAEP_PADDING uses
            oaep = padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
            mixed = self.key.decrypt(encrypted, oaep)
            plain = bytes(c ^ nonce[i % 20] for i, c in enumerate(mixed))
            good = plain == PASSWORD.encode() + b"\0"
            self.said.append("full")
        if not good:
            conn.sendall(packet(seq + 1, b"\xff\x15\x04#28000Access denied for user 'app'"))
            return
        conn.sendall(packet(seq + 1, b"\x00\x00\x00\x02\x00\x00\x00"))  # OK
        while True:
            _, command = read(conn)
            if command[:1] == b"\x01":  # COM_QUIT
                return
            # COM_QUERY: one column, one row "1", as a 5.x/8.x server without DEPRECATE_EOF
            column = (
                b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81"
                b"\x00\x00\x00\x00"
            )  # catalog def, name "1", BIGINT: a column definition
            conn.sendall(packet(1, b"\x01") + packet(2, column) + packet(3, b"\xfe\0\0\x02\0")
                         + packet(4, b"\x011") + packet(5, b"\xfe\0\0\x02\0"))  # fmt: skip

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def mysql8(request: pytest.FixtureRequest) -> Iterator[MySQL8]:
    pytest.importorskip("cryptography", reason="the fake server decrypts with cryptography")
    server = MySQL8(**request.param)
    yield server
    server.close()


def target(server: MySQL8, password: str = PASSWORD, options: str = "#query=SELECT 1") -> str:
    return f"mysql://app:{password}@{HOST}:{server.port}/shop{options}"


@pytest.mark.parametrize(
    ("mysql8", "path"),
    [({"cached": True}, ["fast"]), ({"cached": False}, ["full"]),
     ({"cached": True, "greet_native": True}, ["switched", "fast"]),
     ({"cached": False, "greet_native": True}, ["switched", "full"])],
    indirect=["mysql8"], ids=["fast", "full-rsa", "switch-fast", "switch-full-rsa"],
)  # fmt: skip
def test_caching_sha2_password_logs_in(mysql8: MySQL8, path: list[str]) -> None:
    result = run_waitfor(*FAIL_FAST, target(mysql8))
    assert result.returncode == 0, result.stderr
    (ready,) = [e for e in json_events(result.stderr) if e["message"] == "ready"]
    assert ready["detail"] == "query: 1 row"
    assert mysql8.said[: len(path)] == path
    assert PASSWORD not in result.stderr


@pytest.mark.parametrize("mysql8", [{"cached": True}, {"cached": False}], indirect=True,
                         ids=["fast", "full-rsa"])  # fmt: skip
def test_caching_sha2_password_wrong_password_is_refused(mysql8: MySQL8) -> None:
    result = run_waitfor(*FAIL_FAST, target(mysql8, password="not-it"))
    assert result.returncode == 124, result.stderr
    (summary,) = [e for e in json_events(result.stderr) if e["message"] == "summary"]
    assert summary["last_error"] == "login refused: Access denied for user 'app' (1045)"


# --- the real image, where it can be pulled ----------------------------------------------

MYSQL_IMAGE = os.environ.get("WAITFOR_TEST_MYSQL_IMAGE", "mysql:8.4")


@pytest.mark.containers
def test_real_mysql_8_default_login(tmp_path: Path) -> None:
    from tests.containers.test_real_elasticsearch import image_available

    why = image_available(MYSQL_IMAGE)
    if why is not None:
        pytest.skip(why)
    from testcontainers.core.container import DockerContainer

    container = (DockerContainer(MYSQL_IMAGE).with_exposed_ports(3306)
                 .with_env("MYSQL_ROOT_PASSWORD", "root-" + PASSWORD)
                 .with_env("MYSQL_USER", "app").with_env("MYSQL_PASSWORD", PASSWORD)
                 .with_env("MYSQL_DATABASE", "shop"))  # fmt: skip
    with container:
        port = container.get_exposed_port(3306)
        # waitfor is what waits for it: the server restarts once while it initialises
        url = f"mysql://app:{PASSWORD}@{HOST}:{port}/shop#query=SELECT 1"
        result = run_waitfor("--timeout", "180s", "--json", url, timeout=240)
    assert result.returncode == 0, result.stderr
    (ready,) = [e for e in json_events(result.stderr) if e["message"] == "ready"]
    assert ready["detail"] == "query: 1 row"
