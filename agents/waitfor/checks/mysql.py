"""mysql://[user[:password]@]host[:port][/db] — ready when the server completes its
handshake; with `#query=SQL` or `#table=NAME`, when the login succeeds and the query
returns a row (the table exists): "the migrations have run".

The server's greeting proves it accepts connections. We then answer the greeting (as
`mysqladmin ping` does) instead of hanging up: MySQL and MariaDB count handshakes a client
abandons as connection errors and block the host after `max_connect_errors` of them —
a waiter polling for minutes would lock its own app out. Without a query a refused login
still means "up"; with one it is "not ready", as are an unknown database, a failing query
and no row, each with the server's message and error code.
"""

from __future__ import annotations

import hashlib
import re
import struct

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import close_stream, open_stream, read_exactly
from agents.waitfor.targets import Target

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
ER_ACCESS_DENIED = 1045
ER_DBACCESS_DENIED = 1044
GREETING_MAX = 65536  # a real greeting is ~100 bytes; a text banner reads as megabytes
# Auth plugins we cannot answer properly get a wrong answer of the size they expect: the
# server then ends the login with "access denied", which it does not hold against the
# host, instead of a handshake abandoned midway, which it does.
DUMMY_AUTH_ANSWER = {b"client_ed25519": 64}


async def read_packet(reader, max_length: int = 1 << 24) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    header = await read_exactly(reader, 4, "a MySQL packet")
    length = int.from_bytes(header[:3], "little")
    if length > max_length:
        raise NotReady(f"not a MySQL server (packet length {length})")
    return header[3], await read_exactly(reader, length, "a MySQL packet")


def parse_greeting(payload: bytes) -> tuple[str, bytes, str]:
    """→ (server version, 20-byte scramble, auth plugin name)."""
    if payload[:1] == b"\xff":
        code = int.from_bytes(payload[1:3], "little")
        message = payload[3:].lstrip(b"#").decode("utf-8", "replace")
        if message[:5].isalnum() and len(message) > 5 and payload[3:4] == b"#":
            message = message[5:]
        raise NotReady(f"server refused the connection: {code} {message.strip()}")
    if payload[:1] != b"\x0a":
        raise NotReady(f"not a MySQL server (protocol byte {payload[:1]!r})")
    end = payload.find(b"\0", 1)
    if end < 0:
        raise NotReady("not a MySQL server (no version in the greeting)")
    version = payload[1:end].decode("ascii", "replace")
    pos = end + 1 + 4  # connection id
    scramble = payload[pos : pos + 8]
    pos += 8 + 1 + 2 + 1 + 2 + 2  # filler, caps low, charset, status, caps high
    auth_len = payload[pos] if pos < len(payload) else 0
    pos += 1 + 10
    rest = max(13, auth_len - 8)
    scramble += payload[pos : pos + rest].rstrip(b"\0")[:12]
    pos += rest
    plugin = payload[pos:].split(b"\0", 1)[0].decode("ascii", "replace")
    return version, scramble, plugin or "mysql_native_password"


def native_password(password: str, scramble: bytes) -> bytes:
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()  # noqa: S324 - the protocol's hash
    stage2 = hashlib.sha1(stage1).digest()  # noqa: S324
    mix = hashlib.sha1(scramble[:20] + stage2).digest()  # noqa: S324
    return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))


def sha2_password(password: str, scramble: bytes) -> bytes:
    """caching_sha2_password's fast answer: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    if not password:
        return b""
    first = hashlib.sha256(password.encode()).digest()
    second = hashlib.sha256(first).digest()
    third = hashlib.sha256(second + scramble[:20]).digest()
    return bytes(a ^ b for a, b in zip(first, third, strict=True))


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """One DER element at `pos` → (tag, start of its content, end of it)."""
    tag, size = data[pos], data[pos + 1]
    pos += 2
    if size & 0x80:
        count = size & 0x7F
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + size


def rsa_public_key(pem: bytes) -> tuple[int, int]:
    """A PEM public key (SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey) → (n, e)."""
    import base64

    body = b"".join(line for line in pem.strip().splitlines() if not line.startswith(b"-----"))
    der = base64.b64decode(body)
    _, start, _ = _der(der, 0)  # the outer SEQUENCE
    tag, inner, end = _der(der, start)
    if tag == 0x30:  # SubjectPublicKeyInfo: the algorithm, then a BIT STRING of RSAPublicKey
        tag, bits, _ = _der(der, end)
        _, start, _ = _der(der, bits + 1)  # past the unused-bits byte: RSAPublicKey
        tag, inner, end = _der(der, start)
    n = int.from_bytes(der[inner:end], "big")
    _, inner, end2 = _der(der, end)
    return n, int.from_bytes(der[inner:end2], "big")


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()  # noqa: S324 - OAEP's
        counter += 1
    return out[:length]


def oaep_encrypt(message: bytes, n: int, e: int) -> bytes:
    """RSA with OAEP padding (SHA-1, MGF1-SHA-1): what MySQL's RSA_PKCS1_OAEP_PADDING is."""
    import secrets

    k = (n.bit_length() + 7) // 8
    if len(message) > k - 42:
        raise NotReady("the password is too long for the server's RSA key")
    label = hashlib.sha1(b"").digest()  # noqa: S324
    block = label + bytes(k - len(message) - 42) + b"\x01" + message
    seed = secrets.token_bytes(20)
    masked_block = bytes(a ^ b for a, b in zip(block, _mgf1(seed, k - 21), strict=True))
    masked_seed = bytes(a ^ b for a, b in zip(seed, _mgf1(masked_block, 20), strict=True))
    encoded = int.from_bytes(b"\0" + masked_seed + masked_block, "big")
    return pow(encoded, e, n).to_bytes(k, "big")


def rsa_password(password: str, scramble: bytes, pem: bytes) -> bytes:
    """caching_sha2_password's full authentication without TLS: (password + NUL) XOR the
    nonce, encrypted with the server's public key."""
    plain = password.encode() + b"\0"
    nonce = scramble[:20]
    mixed = bytes(c ^ nonce[i % len(nonce)] for i, c in enumerate(plain))
    n, e = rsa_public_key(pem)
    return oaep_encrypt(mixed, n, e)


def auth_answer(plugin: str, password: str, scramble: bytes) -> bytes | None:
    if plugin == "mysql_native_password":
        return native_password(password, scramble)
    if plugin == "caching_sha2_password":
        return sha2_password(password, scramble)
    return None


def handshake_response(user: str, auth: bytes, plugin: str, database: str = "") -> bytes:
    caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION
    caps |= CLIENT_PLUGIN_AUTH | (CLIENT_CONNECT_WITH_DB if database else 0)
    return (
        struct.pack("<IIB23x", caps, 1 << 24, 33)
        + user.encode()
        + b"\0"
        + bytes([len(auth)])
        + auth
        + (database.encode() + b"\0" if database else b"")
        + plugin.encode()
        + b"\0"
    )


def server_error(payload: bytes) -> str:
    """An ERR packet → `message (code)`."""
    code = int.from_bytes(payload[1:3], "little")
    text = payload[3:]
    if text[:1] == b"#":  # the SQL state marker and its five characters
        text = text[6:]
    return f"{text.decode('utf-8', 'replace').strip()} ({code})"


def length_encoded(data: bytes) -> int:
    first = data[0]
    if first < 0xFB:
        return first
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None:
        raise NotReady("not a MySQL server (a bad column count)")
    return int.from_bytes(data[1 : 1 + size], "little")


def is_eof(payload: bytes) -> bool:
    return payload[:1] == b"\xfe" and len(payload) < 9


_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")


def table_query(table: str, database: str) -> str:
    """A query with a row when `table` (`DB.NAME`, or NAME in the URI's database) exists."""
    schema, _, name = table.rpartition(".")
    schema = schema or database
    # both names are [A-Za-z0-9_$] only: build checks them
    where = f"table_schema = '{schema}' AND table_name = '{name}'"
    return "SELECT 1 FROM information_schema.tables WHERE " + where  # noqa: S608


class MysqlCheck(BaseCheck):
    def __init__(self, target: Target, query: str | None = None, what: str = "query") -> None:
        self.host, self.port = target.host, target.port or 3306
        self.user = target.username or "waitfor"
        self.database = target.path.lstrip("/")
        self.target = target  # its password is read at each attempt
        self.query, self.what = query, what

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port)
        try:
            seq, payload = await read_packet(reader, GREETING_MAX)
            version, scramble, plugin = parse_greeting(payload)
            password = self.target.current_password() or ""
            if plugin not in ("mysql_native_password", "caching_sha2_password"):
                plugin = "mysql_native_password"  # the server switches us if it must
            auth = auth_answer(plugin, password, scramble) or b""
            response = handshake_response(self.user, auth, plugin, self.database)
            seq = await self._send(writer, seq, response)
            seq, answer = await read_packet(reader)
            for _ in range(4):  # a switch, then a fast or a full sha2 authentication
                if answer[:1] == b"\xfe" and len(answer) > 1:
                    # AuthSwitchRequest: answer it when we can, so the login completes.
                    name, _, data = answer[1:].partition(b"\0")
                    plugin, scramble = name.decode("ascii", "replace"), data.rstrip(b"\0")
                    reply = auth_answer(plugin, password, scramble)
                    if reply is None and name in DUMMY_AUTH_ANSWER:
                        reply = bytes(DUMMY_AUTH_ANSWER[name])
                    if reply is None:
                        break
                elif answer[:2] == b"\x01\x03" and plugin == "caching_sha2_password":
                    seq, answer = await read_packet(reader)  # fast auth passed: OK follows
                    continue
                elif answer[:2] == b"\x01\x04" and plugin == "caching_sha2_password":
                    # Full authentication, without TLS: ask for the server's RSA key.
                    seq = await self._send(writer, seq, b"\x02")
                    seq, answer = await read_packet(reader)
                    if answer[:1] != b"\x01" or b"PUBLIC KEY" not in answer:
                        break
                    reply = rsa_password(password, scramble, answer[1:])
                else:
                    break
                seq = await self._send(writer, seq, reply)
                seq, answer = await read_packet(reader)
            if answer[:1] == b"\x00":
                if self.query is None:
                    writer.write(b"\x01\x00\x00\x00\x01")  # COM_QUIT
                    return f"server {version} accepts connections (logged in)"
                return await self._run(reader, writer)
            if answer[:1] == b"\xff" and self.query is not None:
                raise NotReady(f"login refused: {server_error(answer)}")
            if answer[:1] == b"\xff":
                code = int.from_bytes(answer[1:3], "little")
                if code in (ER_ACCESS_DENIED, ER_DBACCESS_DENIED):
                    return f"server {version} accepts connections (login refused: {code})"
                parse_greeting(answer)  # raises NotReady with the server's message
            if self.query is not None:
                raise NotReady(
                    "the login needs more than waitfor speaks "
                    "(mysql_native_password, caching_sha2_password)"
                )
            # An auth-switch or more-data request: the server is up and talking.
            return f"server {version} accepts connections"
        finally:
            await close_stream(writer)

    @staticmethod
    async def _send(writer, seq: int, payload: bytes) -> int:  # type: ignore[no-untyped-def]
        """One packet, numbered after the last one received."""
        writer.write(len(payload).to_bytes(3, "little") + bytes([(seq + 1) & 0xFF]) + payload)
        await writer.drain()
        return seq + 1

    async def _run(self, reader, writer) -> str:  # type: ignore[no-untyped-def]
        """COM_QUERY after the login; count the rows of its result set, then COM_QUIT."""
        query = self.query.encode()  # type: ignore[union-attr]
        writer.write((len(query) + 1).to_bytes(3, "little") + b"\x00\x03" + query)
        await writer.drain()
        _, first = await read_packet(reader)
        if first[:1] == b"\xff":
            raise NotReady(f"{self.what} failed: {server_error(first)}")
        rows = 0
        if first[:1] != b"\x00":  # a result set: its columns, EOF, its rows, EOF
            for _ in range(length_encoded(first)):
                await read_packet(reader)
            _, payload = await read_packet(reader)  # the EOF after the columns
            while True:
                _, payload = await read_packet(reader)
                if payload[:1] == b"\xff":
                    raise NotReady(f"{self.what} failed: {server_error(payload)}")
                if is_eof(payload):
                    break
                rows += 1
        writer.write(b"\x01\x00\x00\x00\x01")  # COM_QUIT
        if rows == 0:
            raise NotReady(f"{self.what} returned no rows")
        return f"{self.what}: {rows} row{'s' if rows > 1 else ''}"


def build(target: Target, ctx: BuildContext) -> MysqlCheck:
    query = target.options.str("query")
    table = target.options.str("table")
    if query is not None and table is not None:
        raise target.error("give #query= or #table=, not both")
    if query is not None and not query.strip():
        raise target.error("option query: empty")
    database = target.path.lstrip("/")
    if table is not None:
        schema, _, name = table.rpartition(".")
        if not all(_NAME.fullmatch(part) for part in (schema or database or "x", name)):
            raise target.error(
                f"option table: {table!r}: NAME or DB.NAME, of letters, digits, _ and $"
            )
        if not (schema or database):
            raise target.error(
                "option table: which database? mysql://host/DB#table=NAME or #table=DB.NAME"
            )
        return MysqlCheck(target, table_query(table, database), f"table {table}")
    return MysqlCheck(target, query)
