"""tcp://host:port — ready when a TCP connection is accepted."""

from __future__ import annotations

import socket

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.targets import Target


def is_ip_literal(host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        return False
    return True


class TcpCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.host = target.host
        self.port = target.port or 0
        self.where = target.address

    async def probe(self) -> str:
        from agents.waitfor.checks._net import close_stream, open_stream

        _, writer = await open_stream(self.host, self.port)
        peer = writer.get_extra_info("peername")
        await close_stream(writer)
        return f"connected to {peer[0]}:{peer[1]}" if peer else "connected"

    def probe_now(self, limit: float) -> str:
        """Blocking, for the first look before any event loop exists (see cli).

        Only for IP literals and localhost: a name may need DNS, and a blocking
        getaddrinfo cannot be bounded or interrupted; the runner resolves in a thread.
        """
        if not (self.host == "localhost" or is_ip_literal(self.host)):
            raise NotReady("name needs resolving")
        try:
            # An ASCII host as bytes spares getaddrinfo the IDNA codec's import.
            host = self.host.encode() if self.host.isascii() else self.host
            with socket.create_connection((host, self.port), timeout=limit) as conn:
                peer, own = conn.getpeername(), conn.getsockname()
        except OSError as exc:
            raise NotReady(str(exc)) from None
        if own == peer:  # see _net.SELF_CONNECT (imported only in this rare case)
            from agents.waitfor.checks._net import SELF_CONNECT

            raise NotReady(SELF_CONNECT.format(where=self.where))
        return f"connected to {peer[0]}:{peer[1]}"


def build(target: Target, ctx: BuildContext) -> TcpCheck:
    return TcpCheck(target)
