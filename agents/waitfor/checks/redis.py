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


async def reply(reader) -> bytes:  # type: ignore[no-untyped-def]
    try:
        line = await reader.readuntil(b"\r\n")
    except Exception as exc:  # IncompleteReadError, LimitOverrunError, reset
        raise NotReady(f"no complete reply from the server ({type(exc).__name__})") from None
    return line[:-2]


class RedisCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext) -> None:
        self.host, self.port = target.host, target.port or 6379
        self.auth: tuple[str, ...] = ()
        if target.password is not None:
            self.auth = (
                (target.username, target.password) if target.username else (target.password,)
            )
        # redis:// takes no TLS options: they are reported as unknown, pointing at rediss://.
        self.tls = tls_from_options(target, ctx, always=True) if target.scheme == "rediss" else None

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port, tls=self.tls)
        try:
            if self.auth:
                writer.write(command("AUTH", *self.auth))
                answer = await reply(reader)
                if not answer.startswith((b"+", b"-")):
                    raise NotReady(f"not a Redis server (AUTH answered {_text(answer)})")
                if answer != b"+OK":
                    raise NotReady(f"AUTH refused: {_text(answer)}")
            writer.write(command("PING"))
            answer = await reply(reader)
            if answer == b"+PONG":
                return "PONG"
            if answer.startswith(b"-"):
                raise NotReady(f"PING answered {_text(answer)}")
            raise NotReady(f"not a Redis server (PING answered {_text(answer)})")
        finally:
            await close_stream(writer)


def _text(answer: bytes) -> str:
    return answer[:200].decode("utf-8", "replace").lstrip("-+")


def build(target: Target, ctx: BuildContext) -> RedisCheck:
    return RedisCheck(target, ctx)
