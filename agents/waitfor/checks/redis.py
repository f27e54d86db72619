"""redis://[[user]:password@]host[:port][/db] — ready when PING answers PONG (AUTH first
if given); with `#key=NAME`, when the key also exists (in database `db`, default 0), and
with `#value=REGEX` too, when its string value matches.

`rediss://` speaks TLS (options ca, cert, key, insecure). A server still loading its
dataset answers `-LOADING`: not ready.
"""

from __future__ import annotations

import re

from agents._options import user_regex
from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import close_stream, open_stream, tls_from_options
from agents.waitfor.targets import Target


def command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# The first byte of every RESP2/RESP3 reply; anything else is another protocol or noise.
RESP_TYPES = frozenset(b"+-:$*_,#!=(%~>|")
LINE_LIMIT = 65536
VALUE_LIMIT = 1 << 20  # a value to match: a readiness marker, not a dataset


async def reply(reader, command: str) -> bytes:  # type: ignore[no-untyped-def]
    """The first line of the server's reply to `command`, without its CRLF."""
    return (await reply_and_rest(reader, command))[0]


async def reply_and_rest(reader, command: str) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """The first line of the server's reply to `command`, without its CRLF, and the bytes
    read after it (a bulk string's start).

    Read in chunks rather than up to the CRLF, so that noise with no line end is refused
    as soon as it arrives instead of being waited on until the attempt times out. We
    send one command at a time, so nothing after the first line belongs to a later reply.
    """
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = await reader.read(4096)
        except ConnectionResetError:
            raise NotReady(f"connection reset while reading the reply to {command}") from None
        if not chunk:
            raise NotReady(
                f"connection closed after {len(data)} bytes, before a complete reply to {command}"
            )
        data += chunk
        if data[0] not in RESP_TYPES:
            line = data.partition(b"\r\n")[0]
            raise NotReady(f"not a Redis server ({command} answered {_text(line)})")
        if len(data) > LINE_LIMIT:
            raise NotReady(f"not a Redis server (no line end in {len(data)} bytes)")
    line, _, rest = data.partition(b"\r\n")
    return line, rest


async def bulk_string(reader, line: bytes, rest: bytes, command: str) -> bytes | None:  # type: ignore[no-untyped-def]
    """A bulk string reply (`$N` then N bytes), None for nil (`$-1`)."""
    try:
        size = int(line[1:])
    except ValueError:
        raise NotReady(f"not a Redis server ({command} answered {_text(line)})") from None
    if size < 0:
        return None
    if size > VALUE_LIMIT:
        raise NotReady(f"{command}: the value is {size} bytes, more than waitfor matches")
    while len(rest) < size + 2:
        chunk = await reader.read(size + 2 - len(rest))
        if not chunk:
            raise NotReady(f"connection closed in the middle of the reply to {command}")
        rest += chunk
    return rest[:size]


class RedisCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext, key: str | None = None,
                 value: re.Pattern[str] | None = None, db: int = 0) -> None:  # fmt: skip
        self.host, self.port = target.host, target.port or 6379
        self.target = target  # its password is read at each attempt
        self.key, self.value, self.db = key, value, db
        # redis:// takes no TLS options: they are reported as unknown, pointing at rediss://.
        self.tls = tls_from_options(target, ctx, always=True) if target.scheme == "rediss" else None

    @property
    def auth(self) -> tuple[str, ...]:
        password, user = self.target.current_password(), self.target.username
        if password is None:
            return ()
        return (user, password) if user else (password,)

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port, tls=self.tls)
        try:
            if self.auth:
                writer.write(command("AUTH", *self.auth))
                answer = await reply(reader, "AUTH")
                if not answer.startswith((b"+", b"-")):
                    raise NotReady(f"not a Redis server (AUTH answered {_text(answer)})")
                if answer != b"+OK":
                    raise NotReady(f"AUTH refused: {_text(answer)}")
            writer.write(command("PING"))
            answer = await reply(reader, "PING")
            if answer.startswith(b"-"):
                raise NotReady(f"PING answered {_text(answer)}")
            if answer != b"+PONG":
                raise NotReady(f"not a Redis server (PING answered {_text(answer)})")
            if self.key is None:
                return "PONG"
            return await self._key(reader, writer, self.key)
        finally:
            await close_stream(writer)

    async def _key(self, reader, writer, key: str) -> str:  # type: ignore[no-untyped-def]
        if self.db:
            writer.write(command("SELECT", str(self.db)))
            answer = await reply(reader, "SELECT")
            if answer != b"+OK":
                raise NotReady(f"SELECT {self.db} refused: {_text(answer)}")
        if self.value is None:
            writer.write(command("EXISTS", key))
            answer = await reply(reader, "EXISTS")
            if answer == b":1":
                return f"key {key} exists"
            if answer == b":0":
                raise NotReady(f"key {key} does not exist")
            raise NotReady(f"EXISTS answered {_text(answer)}")
        writer.write(command("GET", key))
        line, rest = await reply_and_rest(reader, "GET")
        if line.startswith(b"-"):  # WRONGTYPE: a list, a hash...
            raise NotReady(f"GET {key} answered {_text(line)}")
        if not line.startswith(b"$"):
            raise NotReady(f"not a Redis server (GET answered {_text(line)})")
        data = await bulk_string(reader, line, rest, "GET")
        if data is None:
            raise NotReady(f"key {key} does not exist")
        text = data.decode("utf-8", "replace")
        if not self.value.search(text):
            # not the value itself: a key may hold a token
            raise NotReady(f"key {key} does not match {self.value.pattern!r} ({len(data)} bytes)")
        return f"key {key} matches {self.value.pattern!r}"


def _text(answer: bytes) -> str:
    text = answer[:200].decode("utf-8", "replace").lstrip("-+")
    return text if text.isprintable() else repr(answer[:32])


def build(target: Target, ctx: BuildContext) -> RedisCheck:
    key = target.options.str("key")
    pattern = target.options.str("value")
    if key is not None and not key:
        raise target.error("option key: empty")
    if pattern is not None and key is None:
        raise target.error("option value: matches the value of #key=NAME: give the key")
    value = None
    if pattern is not None:
        try:
            value = user_regex(pattern)
        except re.error as exc:
            raise target.error(f"option value: not a regular expression: {exc}") from None
    db = target.path.strip("/")
    if db and not db.isdigit():
        raise target.error(f"the database is a number (redis://host:6379/2), not {db!r}")
    return RedisCheck(target, ctx, key, value, int(db or 0))
