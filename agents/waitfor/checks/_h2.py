"""One HTTP/2 request and its answer, for grpc://: frames (RFC 9113) and HPACK (RFC 7541).

A client connection that makes a single request on stream 1 and reads its answer: the
response headers, the data and the trailers. Only what that needs: the connection
preface and SETTINGS (acknowledged), PING (answered), WINDOW_UPDATE and PRIORITY
(nothing to do for a few bytes each way), HEADERS and CONTINUATION (padding and priority
fields skipped), DATA, RST_STREAM and GOAWAY; frames of unknown types are ignored, as the
RFC says. Headers are sent as HPACK literals that are never indexed, so the server's
table is never used; the server's are decoded in full: static and dynamic table, table
size updates, Huffman strings (the RFC's code is canonical, so its 257 code lengths are
the whole table).

Written for waitfor's memory goal: h2 (with hpack and hyperframe) cost a grpc:// run
1.6 MiB of imports for this one exchange, and grpcs:// went over 25 MiB. The tests check
this module against h2's own encoder and frames, and against a real grpcio server.

Every problem is `H2Error(reason)`, a `NotReady` whose reason names what the server did.
"""

from __future__ import annotations

import asyncio
import functools
import struct

from agents.waitfor.checks import NotReady

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE: we never raise it from its default
TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE: our decoder's, the default
HEADER_LIMIT = 65536  # the most header block (with CONTINUATIONs) we read
STREAM = 1
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
          5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
          9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM", 13: "HTTP_1_1_REQUIRED"}  # fmt: skip


class H2Error(NotReady):
    pass


# --- HPACK ---------------------------------------------------------------------------

STATIC = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]  # fmt: skip

# RFC 7541 Appendix B, the code length of each symbol 0..256 (256 is EOS). The code is
# canonical: codes are handed out in order of length, then of symbol.
HUFFMAN_LENGTHS = bytes.fromhex(
    "0d171c1c1c1c1c1c1c181e1c1c1e1c1c1c1c1c1c1c1c1e1c1c1c1c1c1c1c1c1c060a0a0c0d06080b0a0a"
    "080b080606060505050606060606060607080f060c0a0d06070707070707070707070707070707070707"
    "070707070807080d130d0e060f05060506050606060507070606060506070605050607070707070f0b0e"
    "0d1c14161414161616171617171717171817181816171817171717151617161717181615141616171715"
    "1716161815161717151516151716171714161616171616171a1a1413161716191a1a1a1b1b1a18191315"
    "1a1b1b1a1b1815151a1a1c1b1b1b14181415161515171616191918181a171a1b1a1a1b1b1b1b1b1c1b1b"
    "1b1b1b1a1e"
)
EOS = 256


@functools.cache
def huffman_codes() -> dict[tuple[int, int], int]:
    """{(length, code): symbol}, made from the canonical code lengths."""
    table: dict[tuple[int, int], int] = {}
    code, length = -1, 0
    for symbol in sorted(range(257), key=lambda s: (HUFFMAN_LENGTHS[s], s)):
        code = (code + 1) << (HUFFMAN_LENGTHS[symbol] - length)
        length = HUFFMAN_LENGTHS[symbol]
        table[(length, code)] = symbol
    return table


def huffman_decode(data: bytes) -> bytes:
    codes = huffman_codes()
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code, length = (code << 1) | ((byte >> shift) & 1), length + 1
            symbol = codes.get((length, code)) if length >= 5 else None
            if symbol is None:
                if length > 30:
                    raise H2Error("HPACK: a Huffman code no symbol has")
                continue
            if symbol == EOS:
                raise H2Error("HPACK: EOS inside a Huffman string")
            out.append(symbol)
            code = length = 0
    if length > 7 or code != (1 << length) - 1:
        raise H2Error("HPACK: bad padding at the end of a Huffman string")
    return bytes(out)


def encode_int(value: int, prefix: int, flags: int) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """Literals never indexed, new names, no Huffman: nothing for the server to remember."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        out += b"\x10" + encode_int(len(raw_name), 7, 0) + raw_name
        out += encode_int(len(raw_value), 7, 0) + raw_value
    return bytes(out)


class Decoder:
    """HPACK's decoding side: the dynamic table lives as long as the connection."""

    def __init__(self) -> None:
        self.table: list[tuple[str, str]] = []  # newest first
        self.size = 0
        self.max_size = TABLE_SIZE

    def decode(self, block: bytes) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        pos = 0
        while pos < len(block):
            first = block[pos]
            if first & 0x80:  # indexed
                index, pos = self._int(block, pos, 7)
                headers.append(self._entry(index))
            elif first & 0xC0 == 0x40:  # literal, added to the table
                name, value, pos = self._literal(block, pos, 6)
                headers.append((name, value))
                self._add(name, value)
            elif first & 0xE0 == 0x20:  # a table size update
                size, pos = self._int(block, pos, 5)
                if size > TABLE_SIZE:
                    raise H2Error(f"HPACK: a table of {size} bytes, over the {TABLE_SIZE} allowed")
                self.max_size = size
                self._evict()
            else:  # literal, not added (0000) or never indexed (0001)
                name, value, pos = self._literal(block, pos, 4)
                headers.append((name, value))
        return headers

    def _int(self, data: bytes, pos: int, prefix: int) -> tuple[int, int]:
        limit = (1 << prefix) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(data) or shift > 28:
                raise H2Error("HPACK: a cut or oversized integer")
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def _string(self, data: bytes, pos: int) -> tuple[str, int]:
        if pos >= len(data):
            raise H2Error("HPACK: a cut string")
        huffman = data[pos] & 0x80
        length, pos = self._int(data, pos, 7)
        if pos + length > len(data):
            raise H2Error("HPACK: a string runs past the header block")
        raw = data[pos : pos + length]
        text = huffman_decode(raw) if huffman else raw
        return text.decode("utf-8", "replace"), pos + length

    def _literal(self, data: bytes, pos: int, prefix: int) -> tuple[str, str, int]:
        index, pos = self._int(data, pos, prefix)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = self._string(data, pos)
        value, pos = self._string(data, pos)
        return name, value, pos

    def _entry(self, index: int) -> tuple[str, str]:
        if 1 <= index <= len(STATIC):
            return STATIC[index - 1]
        if 0 <= index - len(STATIC) - 1 < len(self.table):
            return self.table[index - len(STATIC) - 1]
        raise H2Error(f"HPACK: index {index} is in no table")

    def _add(self, name: str, value: str) -> None:
        self.table.insert(0, (name, value))
        self.size += len(name.encode()) + len(value.encode()) + 32
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name.encode()) + len(value.encode()) + 32


# --- frames --------------------------------------------------------------------------


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack("!IBBI", len(payload), kind, flags, stream)[1:] + payload


def _unpad(flags: int, payload: bytes, priority: bool = False) -> bytes:
    pad = 0
    if flags & PADDED:
        if not payload:
            raise H2Error("HTTP/2: a padded frame without its pad length")
        pad, payload = payload[0], payload[1:]
    if priority:
        payload = payload[5:]
    if pad > len(payload):
        raise H2Error("HTTP/2: more padding than frame")
    return payload[: len(payload) - pad]


class Answer:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}  # the response headers, then the trailers
        self.data = b""


async def request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    limit: int,
) -> Answer:
    """Send one request on stream 1 and read its answer to the end of the stream.

    `limit`: the most data accepted (below the 65,535-byte window, so no WINDOW_UPDATE is
    ever owed)."""
    settings = struct.pack("!HI", 0x2, 0)  # SETTINGS_ENABLE_PUSH = 0
    writer.write(
        PREFACE
        + frame(SETTINGS, 0, 0, settings)
        + frame(HEADERS, END_HEADERS, STREAM, encode_headers(headers))
        + frame(DATA, END_STREAM, STREAM, body)
    )
    await writer.drain()
    return await _Reader(reader, writer, limit).answer()


class _Reader:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int):
        self.reader, self.writer, self.limit = reader, writer, limit
        self.buffer = bytearray()
        self.frames = 0
        self.decoder = Decoder()

    async def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            try:
                chunk = await self.reader.read(65536)
            except ConnectionResetError:
                raise H2Error("connection reset before the health answer") from None
            if not chunk:
                if self.frames == 0 and self.buffer:
                    raise self._not_http2()
                raise H2Error("connection closed before the health answer")
            self.buffer += chunk
            if self.frames == 0 and self.buffer[:5] == b"HTTP/":
                line = bytes(self.buffer).split(b"\r\n", 1)[0].decode("ascii", "replace")
                raise H2Error(f"not a gRPC server (it answers HTTP/1: {line!r})")

    def _not_http2(self) -> H2Error:
        return H2Error(f"not a gRPC server (no HTTP/2 in its answer: {bytes(self.buffer[:40])!r})")

    async def next_frame(self) -> tuple[int, int, int, bytes]:
        await self._fill(9)
        length = int.from_bytes(self.buffer[:3], "big")
        kind, flags = self.buffer[3], self.buffer[4]
        stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
        if self.frames == 0 and (kind != SETTINGS or stream or length % 6 or length > 1024):
            # A server's first frame is its SETTINGS (RFC 9113 §3.4).
            raise H2Error(
                f"not a gRPC server (no HTTP/2 in its answer: {bytes(self.buffer[:40])!r})"
            )
        if length > MAX_FRAME:
            raise H2Error(f"HTTP/2: a frame of {length} bytes, over the {MAX_FRAME} allowed")
        await self._fill(9 + length)
        payload = bytes(self.buffer[9 : 9 + length])
        del self.buffer[: 9 + length]
        self.frames += 1
        return kind, flags, stream, payload

    async def answer(self) -> Answer:
        out = Answer()
        while True:
            kind, flags, stream, payload = await self.next_frame()
            if kind == SETTINGS and not flags & ACK:
                self.writer.write(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self.writer.write(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
                raise H2Error(f"the server ended the connection (GOAWAY {ERRORS.get(code, code)})")
            elif kind == PUSH_PROMISE:
                raise H2Error("HTTP/2: a PUSH_PROMISE though push was turned off")
            elif stream != STREAM:
                continue  # WINDOW_UPDATE, PRIORITY, the connection's own, unknown types
            elif kind == RST_STREAM:
                code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else -1
                raise H2Error(f"the server reset the call (HTTP/2 error {ERRORS.get(code, code)})")
            elif kind == HEADERS:
                block = _unpad(flags, payload, priority=bool(flags & PRIORITY_FLAG))
                ends = flags & END_STREAM
                while not flags & END_HEADERS:
                    kind, flags, stream, payload = await self.next_frame()
                    if kind != CONTINUATION or stream != STREAM:
                        raise H2Error("HTTP/2: a header block without its CONTINUATION")
                    block += payload
                    if len(block) > HEADER_LIMIT:
                        raise H2Error(f"HTTP/2: a header block over {HEADER_LIMIT} bytes")
                out.headers.update(self.decoder.decode(block))
                if ends:
                    return out
            elif kind == DATA:
                out.data += _unpad(flags, payload)
                if len(out.data) > self.limit:
                    raise H2Error(f"not a health answer ({len(out.data)} bytes)")
                if flags & END_STREAM:
                    return out
            await self.writer.drain()
