"""grpc://host:port (grpcs:// for TLS) — ready when the standard health service,
`grpc.health.v1.Health/Check`, answers SERVING for `#service=NAME` (default: the whole
server, the empty name).

One unary call over HTTP/2 needs no gRPC stack: the request and the answer are one small
protobuf message each, written and read here, over one HTTP/2 request (checks/_h2.py,
~0.2 MiB where h2 cost 1.6 and grpcio ~11). NOT_SERVING,
UNKNOWN and SERVICE_UNKNOWN are not ready; a server without the health service answers
UNIMPLEMENTED, a name the health service does not know NOT_FOUND, and each is said.
"""

from __future__ import annotations

from agents import __version__
from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._h2 import request
from agents.waitfor.checks._net import close_stream, open_stream, tls_from_options
from agents.waitfor.targets import Target

PATH = "/grpc.health.v1.Health/Check"
# grpc.health.v1.HealthCheckResponse.ServingStatus
STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
# google.rpc.Code, as grpc-status carries it
CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
         5: "NOT_FOUND", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
         9: "FAILED_PRECONDITION", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
         16: "UNAUTHENTICATED"}  # fmt: skip
ANSWER_LIMIT = 16384  # a health answer is a few bytes; the limit stays below HTTP/2's window


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def request_message(service: str) -> bytes:
    """HealthCheckRequest{service} as a gRPC length-prefixed message (not compressed)."""
    name = service.encode()
    body = b"\x0a" + varint(len(name)) + name if name else b""
    return b"\0" + len(body).to_bytes(4, "big") + body


def serving_status(data: bytes) -> int:
    """The status of a length-prefixed HealthCheckResponse (field 1, an enum varint;
    absent means 0, UNKNOWN, as proto3 has it)."""
    if len(data) < 5:
        raise NotReady(f"not a gRPC answer ({len(data)} bytes of message)")
    if data[0] != 0:
        raise NotReady("the answer is compressed, which waitfor did not ask for")
    body = data[5 : 5 + int.from_bytes(data[1:5], "big")]
    status, pos = 0, 0
    while pos < len(body):
        tag, pos = _read_varint(body, pos)
        kind = tag & 7
        if kind == 0:
            value, pos = _read_varint(body, pos)
            if tag >> 3 == 1:
                status = value
        elif kind == 2:
            size, pos = _read_varint(body, pos)
            pos += size
        elif kind in (1, 5):
            pos += 8 if kind == 1 else 4
        else:
            raise NotReady(f"not a HealthCheckResponse (wire type {kind})")
    return status


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise NotReady("not a HealthCheckResponse (a cut varint)")


class GrpcHealthCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext, service: str) -> None:
        self.host, self.port, self.service = target.host, target.port, service
        self.tls = None
        if target.scheme == "grpcs":
            self.tls = tls_from_options(target, ctx, always=True)
            self.tls.set_alpn_protocols(["h2"])  # type: ignore[union-attr]
        self.authority = target.address

    async def probe(self) -> str:
        reader, writer = await open_stream(self.host, self.port, tls=self.tls)  # type: ignore[arg-type]
        try:
            if self.tls is not None:
                protocol = writer.get_extra_info("ssl_object").selected_alpn_protocol()
                if protocol != "h2":
                    raise NotReady(f"not a gRPC server (TLS without HTTP/2: ALPN {protocol})")
            headers = [
                (":method", "POST"), (":scheme", "https" if self.tls else "http"),
                (":path", PATH), (":authority", self.authority),
                ("content-type", "application/grpc"), ("te", "trailers"),
                ("user-agent", f"waitfor/{__version__}"),
            ]  # fmt: skip
            answer = await request(
                reader, writer, headers, request_message(self.service), limit=ANSWER_LIMIT
            )
            return self._verdict(answer.headers, answer.data)
        finally:
            await close_stream(writer)

    def _verdict(self, headers: dict[str, str], data: bytes) -> str:
        if headers.get(":status") != "200":
            raise NotReady(f"not a gRPC server (HTTP status {headers.get(':status')})")
        raw_code = headers.get("grpc-status")
        if raw_code is None:
            raise NotReady("not a gRPC server (no grpc-status in its answer)")
        code = int(raw_code) if raw_code.isdigit() else -1
        name = CODES.get(code, raw_code)
        message = headers.get("grpc-message", "")
        if code == 12:
            raise NotReady(
                "the server has no health service (grpc.health.v1.Health: UNIMPLEMENTED)"
            )
        if code == 5:
            raise NotReady(f"the health service does not know service {self.service!r} (NOT_FOUND)")
        if code != 0:
            raise NotReady(f"the health check failed: {name}" + (f": {message}" if message else ""))
        status = serving_status(data)
        label = STATUSES.get(status, str(status))
        if status != 1:
            raise NotReady(f"health status {label}")
        return label


def build(target: Target, ctx: BuildContext) -> GrpcHealthCheck:
    service = target.options.str("service", "") or ""
    if target.path not in ("", "/"):
        raise target.error("a gRPC target has no path: grpc://host:port#service=NAME")
    return GrpcHealthCheck(target, ctx, service)
