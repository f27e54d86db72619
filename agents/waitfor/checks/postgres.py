"""postgres://[user@]host[:port][/db] — ready when the server accepts a connection attempt.

Same rule as pg_isready (libpq's PQping): the server answering the startup message with an
authentication request, or with any error except SQLSTATE 57P03 (cannot_connect_now:
starting up, shutting down, recovering), means it accepts connections.
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


def startup_message(user: str, database: str) -> bytes:
    params = b"".join(
        k.encode() + b"\0" + v.encode() + b"\0"
        for k, v in (("user", user), ("database", database), ("application_name", "waitfor"))
    )
    body = struct.pack("!I", PROTOCOL_3_0) + params + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def parse_error_fields(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def classify(kind: bytes, payload: bytes) -> str:
    """The server's first message → a success description, or NotReady."""
    if kind == b"R":
        return "server accepts connections"
    if kind == b"E":
        fields = parse_error_fields(payload)
        code, message = fields.get("C", "?"), fields.get("M", "")
        if code == CANNOT_CONNECT_NOW:
            raise NotReady(f"server not accepting connections yet: {message} ({code})")
        return f"server accepts connections (it answered {code}: {message})"
    if kind == b"v":  # NegotiateProtocolVersion: a server that talks to us
        return "server accepts connections"
    raise NotReady(f"not a PostgreSQL server (first message type {kind!r})")


class PostgresCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.host, self.port = target.host, target.port or 5432
        self.user = target.username or "postgres"
        self.database = target.path.lstrip("/") or self.user

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port)
        try:
            writer.write(startup_message(self.user, self.database))
            await writer.drain()
            # Refuse a stranger at its first byte rather than wait for bytes it never sends.
            kind = await read_exactly(reader, 1, "the server's answer")
            if kind not in FIRST_MESSAGES:
                raise NotReady(f"not a PostgreSQL server (first message type {kind!r})")
            header = kind + await read_exactly(reader, 4, "the server's answer")
            length = struct.unpack("!I", header[1:])[0]
            if not 4 <= length <= 65536:
                raise NotReady(f"not a PostgreSQL server (message length {length})")
            payload = await read_exactly(reader, length - 4, "the server's answer")
            return classify(kind, payload)
        finally:
            if not writer.is_closing():
                writer.write(b"X\0\0\0\4")  # Terminate: leave without a log line
            await close_stream(writer)


def build(target: Target, ctx: BuildContext) -> PostgresCheck:
    return PostgresCheck(target)
