"""grpc:// and grpcs:// against a real grpcio server with the standard health service
(grpcio-health-checking's HealthServicer), plain and with TLS: SERVING is ready, the other
statuses are not, a service that changes status while waitfor waits is seen, and a
server without the health service, an unknown service name, an HTTP/1.1 server and an
untrusted certificate are each said."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import json_events, run_waitfor, start_waitfor, usage_error

grpc = pytest.importorskip("grpc", reason="grpcio is a dev dependency (pyproject.toml)")
health = pytest.importorskip("grpc_health.v1.health", reason="grpcio-health-checking")
health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
FAIL_FAST = ("--timeout", "2s", "--attempt-timeout", "1s", "--interval", "200ms", "--json")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Server:
    def __init__(self, *, with_health: bool = True, tls: Any = None) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.health = health.HealthServicer()
        if with_health:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"{HOST}:0"
        self.port = (
            self.server.add_secure_port(address, tls)
            if tls
            else self.server.add_insecure_port(address)
        )
        self.server.start()

    def set(self, service: str, status: int) -> None:
        self.health.set(service, status)

    def stop(self) -> None:
        self.server.stop(grace=None)


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    yield made
    made.stop()


def summary_error(result: Any) -> str:
    assert result.returncode == 124, result.stderr
    (summary,) = [e for e in json_events(result.stderr) if e["message"] == "summary"]
    return str(summary["last_error"])


def test_serving_is_ready(server: Server) -> None:
    server.set("", SERVING)
    result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{server.port}")
    assert result.returncode == 0, result.stderr
    (ready,) = [e for e in json_events(result.stderr) if e["message"] == "ready"]
    assert ready["detail"] == "SERVING"


@pytest.mark.parametrize(
    ("status", "said"),
    [("NOT_SERVING", "health status NOT_SERVING"), ("UNKNOWN", "health status UNKNOWN"),
     ("SERVICE_UNKNOWN", "health status SERVICE_UNKNOWN")],
)  # fmt: skip
def test_the_other_statuses_are_not_ready(server: Server, status: str, said: str) -> None:
    server.set("shop.Orders", getattr(health_pb2.HealthCheckResponse, status))
    result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{server.port}#service=shop.Orders")
    assert summary_error(result) == said


def test_a_service_that_becomes_serving_while_waitfor_waits(server: Server) -> None:
    server.set("shop.Orders", NOT_SERVING)
    proc = start_waitfor("--timeout", "30s", "--interval", "200ms", "--json",
                         f"grpc://{HOST}:{server.port}#service=shop.Orders")  # fmt: skip
    try:
        seen = proc.stderr.readline() + proc.stderr.readline()  # type: ignore[union-attr]
        assert "health status NOT_SERVING" in seen, seen
        server.set("shop.Orders", SERVING)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, seen + rest
    # the state change is logged once, not once per retry
    assert (seen + rest).count('"not ready"') == 1


def test_an_unknown_service_name_is_said(server: Server) -> None:
    server.set("", SERVING)
    result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{server.port}#service=no.Such")
    assert summary_error(result) == "the health service does not know service 'no.Such' (NOT_FOUND)"


def test_a_server_without_the_health_service_is_said() -> None:
    bare = Server(with_health=False)
    try:
        result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{bare.port}")
    finally:
        bare.stop()
    assert summary_error(result) == (
        "the server has no health service (grpc.health.v1.Health: UNIMPLEMENTED)"
    )


def test_an_http1_server_is_not_a_grpc_server() -> None:
    web = http.server.ThreadingHTTPServer((HOST, 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{web.server_address[1]}")
    finally:
        web.shutdown()
        web.server_close()
    error = summary_error(result)
    # http.server answers the HTTP/2 preface with an HTML page, no status line
    assert error.startswith("not a gRPC server (no HTTP/2 in its answer: b'<!DOCTYPE"), error


def test_a_server_answering_http1_status_lines_is_said() -> None:
    """As nginx or a Go HTTP/1.1 server answers the HTTP/2 preface."""
    listener = socket.create_server((HOST, 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{listener.getsockname()[1]}")
    finally:
        listener.close()
    said = "not a gRPC server (it answers HTTP/1: 'HTTP/1.1 400 Bad Request')"
    assert summary_error(result) == said


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", HOST)
    credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    made = Server(tls=credentials)
    made.set("", SERVING)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield made, ca_file
    made.stop()


def test_grpcs_with_the_ca_is_ready_and_without_it_untrusted(
    tls_server: tuple[Server, Path],
) -> None:
    server, ca = tls_server
    result = run_waitfor(*FAIL_FAST, f"grpcs://{HOST}:{server.port}#ca={ca}")
    assert result.returncode == 0, result.stderr
    untrusted = summary_error(run_waitfor(*FAIL_FAST, f"grpcs://{HOST}:{server.port}"))
    assert untrusted.startswith(f"TLS certificate of {HOST}:{server.port} not trusted"), untrusted


def test_plain_grpc_to_a_tls_server_is_not_ready(tls_server: tuple[Server, Path]) -> None:
    server, _ = tls_server
    started = time.monotonic()
    error = summary_error(run_waitfor(*FAIL_FAST, f"grpc://{HOST}:{server.port}"))
    assert error.startswith(("not a gRPC server", "connection closed", "the server ended")), error
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("grpc://api", "missing port"),
        ("grpc://api:50051/x", "a gRPC target has no path"),
        ("grpc://api:50051#ca=/x", "unknown option 'ca'"),
        ("grpc://api:50051#servce=a", "unknown option 'servce'"),
        ("grcp://api:50051", "did you mean grpc://?"),
    ],
)
def test_bad_grpc_targets_are_usage_errors(target: str, problem: str) -> None:
    assert problem in usage_error(target)
