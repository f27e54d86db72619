"""postgres://[user[:password]@]host[:port][/db] — ready when the server accepts a
connection attempt; with `#query=SQL` or `#table=NAME`, when waitfor can log in and the
query returns a row (the table exists): "the migrations have run".

Without a query: the same rule as pg_isready (libpq's PQping): the server answering the
startup message with an authentication request, or with any error except SQLSTATE 57P03
(cannot_connect_now: starting up, shutting down, recovering), means it accepts
connections; no password is needed.

With a query, waitfor logs in as the URI's user (password from the URI or
`#password-file=`, read at each attempt) by whichever method the server asks for:
trust, password (cleartext), MD5 or SCRAM-SHA-256 (the server's signature is verified),
runs the query with the simple query protocol, and leaves with Terminate. A refused
login, a database that does not exist yet, a failing query or no row: not ready, with
the server's message and SQLSTATE.
"""

from __future__ import annotations

import struct

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import close_stream, open_stream, read_exactly
from agents.waitfor.targets import Target

PROTOCOL_3_0 = 196608
CANNOT_CONNECT_NOW = "57P03"
# What `classify` accepts as a first answer: authentication request, error, negotiation.
FIRST_MESSAGES = (b"R", b"E", b"v")
MESSAGE_MAX = 1 << 20  # a row of a readiness query; a stranger's bytes read as gigabytes
AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5 = 0, 3, 5
AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 10, 11, 12
AUTH_NAMES = {2: "Kerberos V5", 6: "SCM credentials", 7: "GSSAPI", 9: "SSPI"}


def startup_message(user: str, database: str) -> bytes:
    params = b"".join(
        k.encode() + b"\0" + v.encode() + b"\0"
        for k, v in (("user", user), ("database", database), ("application_name", "waitfor"))
    )
    body = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def parse_error_fields(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def server_error(payload: bytes) -> str:
    fields = parse_error_fields(payload)
    return f"{fields.get('M', 'error')} ({fields.get('C', '?')})"


def classify(kind: bytes, payload: bytes) -> str:
    """The server's first message → a success description, or NotReady."""
    if kind == b"R":
        return "server accepts connections"
    if kind == b"E":
        fields = parse_error_fields(payload)
        code, text = fields.get("C", "?"), fields.get("M", "")
        if code == CANNOT_CONNECT_NOW:
            raise NotReady(f"server not accepting connections yet: {text} ({code})")
        return f"server accepts connections (it answered {code}: {text})"
    if kind == b"v":  # NegotiateProtocolVersion: a server that talks to us
        return "server accepts connections"
    raise NotReady(f"not a PostgreSQL server (first message type {kind!r})")


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    import hashlib

    inner = hashlib.md5((password + user).encode()).hexdigest()  # noqa: S324 - the protocol's
    return b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode() + b"\0"  # noqa: S324


class Scram:
    """SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802/7677, no channel binding; the
    user name goes in the startup message, so the SCRAM one is empty)."""

    def __init__(self, password: str, nonce: str | None = None, user: str = "") -> None:
        import base64
        import secrets

        self.password = password
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        import base64
        import hashlib
        import hmac

        text = server_first.decode("utf-8", "replace")
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        nonce, salt, rounds = fields.get("r", ""), fields.get("s"), fields.get("i", "")
        if not nonce.startswith(self.nonce) or salt is None or not rounds.isdigit():
            raise NotReady("SCRAM: the server's first message is not one (bad nonce or salt)")
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(salt), int(rounds)
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.first_bare},{text},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        import base64
        import hmac

        text = server_final.decode("utf-8", "replace")
        if not text.startswith("v=") or not hmac.compare_digest(
            base64.b64decode(text[2:].split(",")[0]), self.server_signature
        ):
            raise NotReady("SCRAM: the server's signature does not match: not the server asked")


def table_query(name: str) -> str:
    """A query with a row when table (or view) `name`, `schema.name` allowed, exists."""
    quoted = name.replace("'", "''")
    return f"SELECT 1 WHERE to_regclass('{quoted}') IS NOT NULL"


class PostgresCheck(BaseCheck):
    def __init__(self, target: Target, query: str | None, what: str) -> None:
        self.host, self.port = target.host, target.port or 5432
        self.user = target.username or "postgres"
        self.database = target.path.lstrip("/") or self.user
        self.target = target  # its password is read at each attempt
        self.query, self.what = query, what

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port)
        try:
            writer.write(startup_message(self.user, self.database))
            await writer.drain()
            # Refuse a stranger at its first byte rather than wait for bytes it never sends.
            kind = await read_exactly(reader, 1, "the server's answer")
            if kind not in FIRST_MESSAGES:
                raise NotReady(f"not a PostgreSQL server (first message type {kind!r})")
            payload = await self._rest(reader)
            if self.query is None:
                return classify(kind, payload)
            classify(kind, payload)  # 57P03: not ready yet
            if kind == b"E":
                raise NotReady(f"cannot log in: {server_error(payload)}")
            if kind != b"R":
                raise NotReady("the server negotiated a protocol version waitfor does not speak")
            await self._authenticate(reader, writer, payload)
            return await self._run(reader, writer)
        finally:
            if not writer.is_closing():
                writer.write(b"X\0\0\0\4")  # Terminate: leave without a log line
            await close_stream(writer)

    async def _rest(self, reader) -> bytes:  # type: ignore[no-untyped-def]
        """A message's length and payload, after its type byte."""
        header = await read_exactly(reader, 4, "the server's answer")
        length = struct.unpack("!I", header)[0]
        if not 4 <= length <= MESSAGE_MAX:
            raise NotReady(f"not a PostgreSQL server (message length {length})")
        return await read_exactly(reader, length - 4, "the server's answer")

    async def _next(self, reader) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
        kind = await read_exactly(reader, 1, "the server's answer")
        return kind, await self._rest(reader)

    def _password(self) -> str:
        password = self.target.current_password()
        if password is None:
            raise NotReady(
                f"the server asks user {self.user!r} for a password: give it in the URI or "
                "as #password-file="
            )
        return password

    async def _authenticate(self, reader, writer, payload: bytes) -> None:  # type: ignore[no-untyped-def]
        """Answer the server's authentication requests until AuthenticationOk."""
        scram: Scram | None = None
        kind = b"R"
        while True:
            if kind == b"E":
                raise NotReady(f"login refused: {server_error(payload)}")
            if kind != b"R" or len(payload) < 4:
                raise NotReady(f"not a PostgreSQL server (message type {kind!r} in the login)")
            code = struct.unpack("!I", payload[:4])[0]
            if code == AUTH_OK:
                return
            if code == AUTH_CLEARTEXT:
                writer.write(message(b"p", self._password().encode() + b"\0"))
            elif code == AUTH_MD5:
                writer.write(message(b"p", md5_password(self.user, self._password(), payload[4:8])))
            elif code == AUTH_SASL:
                mechanisms = [m.decode() for m in payload[4:].split(b"\0") if m]
                if "SCRAM-SHA-256" not in mechanisms:
                    raise NotReady(f"the server offers SASL {mechanisms}, not SCRAM-SHA-256")
                scram = Scram(self._password())
                first = scram.first()
                body = b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
                writer.write(message(b"p", body))
            elif code == AUTH_SASL_CONTINUE and scram is not None:
                writer.write(message(b"p", scram.final(payload[4:])))
            elif code == AUTH_SASL_FINAL and scram is not None:
                scram.verify(payload[4:])
            else:
                method = AUTH_NAMES.get(code, f"method {code}")
                raise NotReady(f"the server asks for {method} authentication, which waitfor lacks")
            await writer.drain()
            kind, payload = await self._next(reader)

    async def _run(self, reader, writer) -> str:  # type: ignore[no-untyped-def]
        """After the login: wait for ReadyForQuery, run the query, count its rows."""
        while True:
            kind, payload = await self._next(reader)
            if kind == b"E":
                raise NotReady(f"cannot log in: {server_error(payload)}")
            if kind == b"Z":
                break  # ParameterStatus, BackendKeyData and notices come before it
        writer.write(message(b"Q", self.query.encode() + b"\0"))  # type: ignore[union-attr]
        await writer.drain()
        rows, error = 0, None
        while True:
            kind, payload = await self._next(reader)
            if kind == b"D":
                rows += 1
            elif kind == b"E":
                error = server_error(payload)
            elif kind == b"Z":
                break
        if error is not None:
            raise NotReady(f"{self.what} failed: {error}")
        if rows == 0:
            raise NotReady(f"{self.what} returned no rows")
        return f"{self.what}: {rows} row{'s' if rows > 1 else ''}"


def build(target: Target, ctx: BuildContext) -> PostgresCheck:
    query = target.options.str("query")
    table = target.options.str("table")
    if query is not None and table is not None:
        raise target.error("give #query= or #table=, not both")
    if query is not None and (not query.strip() or "\0" in query):
        raise target.error("option query: empty or with a NUL byte")
    if table is not None:
        if not table.strip() or "\0" in table:
            raise target.error("option table: empty or with a NUL byte")
        return PostgresCheck(target, table_query(table), f"table {table}")
    return PostgresCheck(target, query, "query")
