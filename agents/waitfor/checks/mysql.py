"""mysql://[user[:password]@]host[:port] — ready when the server completes its handshake.

The server's greeting proves it accepts connections. We then answer the greeting (as
`mysqladmin ping` does) instead of hanging up: MySQL and MariaDB count handshakes a client
abandons as connection errors and block the host after `max_connect_errors` of them —
a waiter polling for minutes would lock its own app out.
"""

from __future__ import annotations

import hashlib
import struct

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import close_stream, open_stream, read_exactly
from agents.waitfor.targets import Target

CLIENT_LONG_PASSWORD = 0x1
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


def handshake_response(user: str, password: str, scramble: bytes) -> bytes:
    caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION
    caps |= CLIENT_PLUGIN_AUTH
    auth = native_password(password, scramble)
    return (
        struct.pack("<IIB23x", caps, 1 << 24, 33)
        + user.encode()
        + b"\0"
        + bytes([len(auth)])
        + auth
        + b"mysql_native_password\0"
    )


class MysqlCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.host, self.port = target.host, target.port or 3306
        self.user = target.username or "waitfor"
        self.target = target  # its password is read at each attempt

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port)
        try:
            seq, payload = await read_packet(reader, GREETING_MAX)
            version, scramble, _plugin = parse_greeting(payload)
            password = self.target.current_password() or ""
            response = handshake_response(self.user, password, scramble)
            writer.write(len(response).to_bytes(3, "little") + bytes([seq + 1]) + response)
            await writer.drain()
            seq, answer = await read_packet(reader)
            if answer[:1] == b"\xfe" and len(answer) > 1:
                # AuthSwitchRequest: answer it when we can, so the login completes.
                plugin, _, data = answer[1:].partition(b"\0")
                reply = None
                if plugin == b"mysql_native_password":
                    reply = native_password(password, data.rstrip(b"\0"))
                elif plugin in DUMMY_AUTH_ANSWER:
                    reply = bytes(DUMMY_AUTH_ANSWER[plugin])
                if reply is not None:
                    writer.write(len(reply).to_bytes(3, "little") + bytes([seq + 1]) + reply)
                    await writer.drain()
                    seq, answer = await read_packet(reader)
            if answer[:1] == b"\x00":
                writer.write(b"\x01\x00\x00\x00\x01")  # COM_QUIT
                return f"server {version} accepts connections (logged in)"
            if answer[:1] == b"\xff":
                code = int.from_bytes(answer[1:3], "little")
                if code in (ER_ACCESS_DENIED, ER_DBACCESS_DENIED):
                    return f"server {version} accepts connections (login refused: {code})"
                parse_greeting(answer)  # raises NotReady with the server's message
            # An auth-switch or more-data request: the server is up and talking.
            return f"server {version} accepts connections"
        finally:
            await close_stream(writer)


def build(target: Target, ctx: BuildContext) -> MysqlCheck:
    return MysqlCheck(target)
