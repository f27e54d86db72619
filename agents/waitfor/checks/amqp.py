"""amqp://host[:port] — ready when the broker answers the AMQP 0-9-1 protocol header.

The broker's reply to the header is Connection.Start; `amqps://` does the same over TLS.
"""

from __future__ import annotations

import struct

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import close_stream, open_stream, read_exactly, tls_from_options
from agents.waitfor.targets import Target

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
CONNECTION_START = (10, 10)
NOT_AMQP = "not an AMQP broker (unexpected answer to the protocol header)"


def classify(head: bytes, rest: bytes) -> str:
    """`head` is the first 7 bytes of the answer, `rest` what follows it (up to 4 bytes)."""
    if head[:4] == b"AMQP":
        version = ".".join(str(b) for b in (head[5:7] + rest[:1]))
        raise NotReady(f"broker does not speak AMQP 0-9-1 (it offers {version})")
    kind, channel, _size = struct.unpack("!BHI", head)
    if (
        kind == FRAME_METHOD
        and channel == 0
        and struct.unpack("!HH", rest[:4]) == (CONNECTION_START)
    ):
        return "broker answered Connection.Start"
    raise NotReady(NOT_AMQP)


class AmqpCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext) -> None:
        self.host, self.port = target.host, target.port or 5672
        # amqp:// takes no TLS options: they are reported as unknown, pointing at amqps://.
        self.tls = tls_from_options(target, ctx, always=True) if target.scheme == "amqps" else None

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port, tls=self.tls)
        try:
            writer.write(PROTOCOL_HEADER)
            await writer.drain()
            # A broker's answer starts with "AMQP" or a method frame: refuse anything else
            # at its first byte, not after waiting for bytes a stranger will never send.
            head = await read_exactly(reader, 1, "the broker's answer")
            if head not in (b"A", bytes([FRAME_METHOD])):
                raise NotReady(NOT_AMQP)
            head += await read_exactly(reader, 6, "the broker's answer")
            if head[:4] == b"AMQP":
                rest = await read_exactly(reader, 1, "the broker's answer")
            else:
                rest = await read_exactly(reader, 4, "the broker's answer")
            return classify(head, rest)
        finally:
            await close_stream(writer)


def build(target: Target, ctx: BuildContext) -> AmqpCheck:
    return AmqpCheck(target, ctx)
