"""The two protobuf messages of a gRPC health check, written and read by hand: checked
against the official generated classes (grpcio-health-checking's health_pb2)."""

from __future__ import annotations

import pytest

from agents.waitfor.checks import NotReady
from agents.waitfor.checks.grpc_health import request_message, serving_status

health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2", reason="grpcio-health-checking")


@pytest.mark.parametrize("service", ["", "shop.Orders", "x" * 300])
def test_the_request_is_what_protobuf_writes(service: str) -> None:
    body = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    assert request_message(service) == b"\0" + len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_the_status_is_what_protobuf_reads(status: int) -> None:
    body = health_pb2.HealthCheckResponse(status=status).SerializeToString()
    assert serving_status(b"\0" + len(body).to_bytes(4, "big") + body) == status


def test_unknown_fields_are_skipped_and_a_cut_message_refused() -> None:
    body = b"\x12\x03abc" + b"\x08\x01"  # field 2 (a string), then status SERVING
    assert serving_status(b"\0" + len(body).to_bytes(4, "big") + body) == 1
    with pytest.raises(NotReady, match="a cut varint"):
        serving_status(b"\0\0\0\0\x02\x08\x81")
    with pytest.raises(NotReady, match="compressed"):
        serving_status(b"\x01\0\0\0\0")
