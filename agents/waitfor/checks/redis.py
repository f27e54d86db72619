"""redis://[[user]:password@]host[:port] — ready when PING answers PONG (AUTH first if given).

`rediss://` speaks TLS (options ca, cert, key, insecure). A server still loading its
dataset answers `-LOADING`: not ready.
"""

from __future__ import annotations

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


async def reply(reader, command: str) -> bytes:  # type: ignore[no-untyped-def]
    """The first line of the server's reply to `command`, without its CRLF.

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
    return data.partition(b"\r\n")[0]


class RedisCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext) -> None:
        self.host, self.port = target.host, target.port or 6379
        self.target = target  # its password is read at each attempt
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
            if answer == b"+PONG":
                return "PONG"
            if answer.startswith(b"-"):
                raise NotReady(f"PING answered {_text(answer)}")
            raise NotReady(f"not a Redis server (PING answered {_text(answer)})")
        finally:
            await close_stream(writer)


def _text(answer: bytes) -> str:
    text = answer[:200].decode("utf-8", "replace").lstrip("-+")
    return text if text.isprintable() else repr(answer[:32])


def build(target: Target, ctx: BuildContext) -> RedisCheck:
    return RedisCheck(target, ctx)
