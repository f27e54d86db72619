"""waitfor's one-request HTTP/2 client (agents/waitfor/checks/_h2.py) against servers built
on python-hyper's h2 and hyperframe, over real sockets: what real servers may send that
grpcio's own server did not (CONTINUATION, padding, priority fields, PING, unknown frame
types, the dynamic table across headers and trailers) and how they refuse (GOAWAY,
RST_STREAM, a close, no HTTP/2 at all)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
import pytest
import pytest_asyncio
from hyperframe.frame import DataFrame, HeadersFrame

from agents.waitfor.checks._h2 import H2Error, request

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ANSWER = [(":status", "200"), ("content-type", "application/grpc")]
TRAILERS = [("grpc-status", "0"), ("grpc-message", "fine")]
REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
           (":authority", "localhost"), ("content-type", "application/grpc"),
           ("te", "trailers")]  # fmt: skip
Respond = Callable[[h2.connection.H2Connection, int], bytes | None]


class Server:
    """Answers each request with `respond(conn, stream)`: bytes to send (h2's own and any
    raw frames), then the connection stays open until the client goes."""

    def __init__(self, respond: Respond, first: bytes | None = None) -> None:
        self.respond, self.first = respond, first
        self.requests: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.events: list[h2.events.Event] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.first is not None:  # no HTTP/2 at all: the request read, this, then close
            await reader.read(65536)
            writer.write(self.first)
            await writer.drain()
            writer.close()
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    self.events.append(event)
                    if isinstance(event, h2.events.RequestReceived):
                        self.requests.append(
                            {k.decode(): v.decode() for k, v in event.headers}  # type: ignore[union-attr]
                        )
                    elif isinstance(event, h2.events.DataReceived):
                        self.bodies.append(event.data)  # type: ignore[arg-type]
                    elif isinstance(event, h2.events.StreamEnded):
                        extra = self.respond(conn, event.stream_id)  # type: ignore[arg-type]
                        writer.write(conn.data_to_send() + (extra or b""))
                        if extra == b"":  # a goodbye: FIN, then read until the client goes
                            writer.write_eof()
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future]]:  # type: ignore[type-arg]
    servers: list[asyncio.Server] = []

    async def start(respond: Respond, first: bytes | None = None) -> tuple[Server, int]:
        server = Server(respond, first)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(listener)
        return server, listener.sockets[0].getsockname()[1]

    yield start  # type: ignore[misc]
    for listener in servers:
        listener.close()
        await listener.wait_closed()


async def call(port: int, body: bytes = b"\0\0\0\0\0", limit: int = 16384):  # type: ignore[no-untyped-def]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            return await request(reader, writer, REQUEST, body, limit=limit)
    finally:
        writer.transport.abort()


def raw_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """A frame as RFC 9113 §4.1 lays it out (hyperframe's ExtensionFrame writes length 0)."""
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def answer(data: bytes = b"\0\0\0\0\x02\x08\x01", trailers: list | None = None) -> Respond:  # type: ignore[type-arg]
    def respond(conn: h2.connection.H2Connection, stream: int) -> None:
        conn.send_headers(stream, ANSWER)
        for at in range(0, len(data), 16384):  # h2 leaves frame sizes to its caller
            conn.send_data(stream, data[at : at + 16384])
        conn.send_headers(stream, trailers or TRAILERS, end_stream=True)

    return respond


async def test_a_plain_answer_and_what_the_server_saw(serve) -> None:  # type: ignore[no-untyped-def]
    server, port = await serve(answer())
    got = await call(port, body=b"\0\0\0\0\x03\x0a\x01x")
    assert got.data == b"\0\0\0\0\x02\x08\x01"
    assert got.headers == dict(ANSWER + TRAILERS)
    assert server.requests == [dict(REQUEST)]
    assert server.bodies == [b"\0\0\0\0\x03\x0a\x01x"]
    assert any(isinstance(e, h2.events.RemoteSettingsChanged) for e in server.events)
    # our settings: no server push
    (settings,) = [e for e in server.events if isinstance(e, h2.events.RemoteSettingsChanged)]
    assert settings.changed_settings[h2.settings.SettingCodes.ENABLE_PUSH].new_value == 0  # type: ignore[attr-defined]


async def test_trailers_in_continuation_frames(serve) -> None:  # type: ignore[no-untyped-def]
    big = "x" * 40000  # over the 16 KiB frame size: h2 splits the block into CONTINUATIONs
    _, port = await serve(answer(trailers=[*TRAILERS, ("x-big", big)]))
    got = await call(port)
    assert got.headers["x-big"] == big and got.headers["grpc-status"] == "0"


async def test_a_header_block_without_end_is_bounded(serve) -> None:  # type: ignore[no-untyped-def]
    def respond(conn: h2.connection.H2Connection, stream: int) -> bytes:
        conn.send_headers(stream, ANSWER)
        conn.send_data(stream, b"\0\0\0\0\0")
        block = hpack.Encoder().encode([("x-big", "y" * 70000)], huffman=False)
        frames = HeadersFrame(stream, block[:16000]).serialize()
        rest = block[16000:]
        while rest:  # CONTINUATIONs, never END_HEADERS
            piece, rest = rest[:16000], rest[16000:]
            frames += raw_frame(9, 0, stream, piece)
        return frames

    _, port = await serve(respond)
    with pytest.raises(H2Error, match="a header block over 65536 bytes"):
        await call(port)


async def test_padding_priority_ping_window_updates_and_unknown_frames(serve) -> None:  # type: ignore[no-untyped-def]
    def respond(conn: h2.connection.H2Connection, stream: int) -> bytes:
        # h2 as a server sends no priority fields nor padded headers: the answer is
        # written frame by frame, its headers through h2's encoder (its dynamic table).
        conn.ping(b"12345678")
        conn.increment_flow_control_window(1000)
        head = HeadersFrame(stream, conn.encoder.encode(ANSWER), flags=["END_HEADERS", "PRIORITY"])
        head.depends_on, head.stream_weight = 0, 200
        data = DataFrame(stream, b"\0\0\0\0\x02\x08\x01", flags=["PADDED"])
        data.pad_length = 20
        unknown = raw_frame(0xFA, 0, stream, b"ignore me")  # a type of some extension
        tail = HeadersFrame(
            stream, conn.encoder.encode(TRAILERS), flags=["END_HEADERS", "END_STREAM", "PADDED"]
        )
        tail.pad_length = 7
        return head.serialize() + data.serialize() + unknown + tail.serialize()

    server, port = await serve(respond)
    got = await call(port)
    assert got.data == b"\0\0\0\0\x02\x08\x01"
    assert got.headers == dict(ANSWER + TRAILERS)  # trailers through the dynamic table
    await asyncio.sleep(0.1)
    assert any(isinstance(e, h2.events.PingAckReceived) for e in server.events), server.events


async def test_a_trailers_only_answer(serve) -> None:  # type: ignore[no-untyped-def]
    def respond(conn: h2.connection.H2Connection, stream: int) -> None:
        conn.send_headers(stream, [*ANSWER, ("grpc-status", "12")], end_stream=True)

    _, port = await serve(respond)
    got = await call(port)
    assert (got.headers["grpc-status"], got.data) == ("12", b"")


@pytest.mark.parametrize(
    ("action", "said"),
    [
        (lambda c, s: c.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM),
         "the server ended the connection (GOAWAY ENHANCE_YOUR_CALM)"),
        (lambda c, s: c.reset_stream(s, h2.errors.ErrorCodes.REFUSED_STREAM),
         "the server reset the call (HTTP/2 error REFUSED_STREAM)"),
        (lambda c, s: b"", "connection closed before the health answer"),
    ],
)  # fmt: skip
async def test_refusals_are_said(serve, action: Respond, said: str) -> None:  # type: ignore[no-untyped-def]
    _, port = await serve(action)
    with pytest.raises(H2Error) as caught:
        await call(port)
    assert caught.value.reason == said


async def test_too_much_data_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    _, port = await serve(answer(data=b"z" * 20000))
    with pytest.raises(H2Error, match=r"not a health answer \(\d+ bytes\)"):
        await call(port, limit=16384)


@pytest.mark.parametrize(
    ("first", "said"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
         "not a gRPC server (it answers HTTP/1: 'HTTP/1.1 400 Bad Request')"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
         "not a gRPC server (no HTTP/2 in its answer: b'SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n')"),
        (b"\x15\x03\x03\x00\x02\x02\x32",  # a TLS alert
         "not a gRPC server (no HTTP/2 in its answer: b'\\x15\\x03\\x03\\x00\\x02\\x022')"),
        # a frame header, but a PING: a server's first frame is its SETTINGS
        (b"\0\0\x08\x06\0\0\0\0\0" + b"12345678",
         "not a gRPC server (no HTTP/2 in its answer: b'\\x00\\x00\\x08\\x06\\x00\\x00"
         "\\x00\\x00\\x0012345678')"),
    ],
)  # fmt: skip
async def test_servers_that_do_not_speak_http2(serve, first: bytes, said: str) -> None:  # type: ignore[no-untyped-def]
    _, port = await serve(answer(), first=first)
    with pytest.raises(H2Error) as caught:
        await call(port)
    assert caught.value.reason == said
