"""tcp://host:port — ready when a TCP connection is accepted."""

from __future__ import annotations

from agents.waitfor.checks import BaseCheck, BuildContext
from agents.waitfor.checks._net import close_stream, open_stream
from agents.waitfor.targets import Target


class TcpCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.host = target.host
        self.port = target.port or 0

    async def probe(self) -> str:
        _, writer = await open_stream(self.host, self.port)
        peer = writer.get_extra_info("peername")
        await close_stream(writer)
        return f"connected to {peer[0]}:{peer[1]}" if peer else "connected"


def build(target: Target, ctx: BuildContext) -> TcpCheck:
    return TcpCheck(target)
