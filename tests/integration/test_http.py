"""http:// and https:// targets against real servers on loopback."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.helpers import free_port, run_waitfor, start_waitfor
from tests.integration.http_server import HttpServer, Route

FAST = ["--timeout", "1500ms", "--interval", "50ms"]


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer() as srv:
        yield srv


def test_default_expectation_is_2xx(server: HttpServer) -> None:
    server.routes["/ok"] = Route(204, b"")
    result = run_waitfor(*FAST, f"{server.url}/ok")
    assert result.returncode == 0, result.stderr
    assert "HTTP 204" in result.stderr


def test_wrong_status_times_out_naming_status_and_expectation(server: HttpServer) -> None:
    server.routes["/health"] = Route(503, b"warming up")
    result = run_waitfor(*FAST, f"{server.url}/health")
    assert result.returncode == 124
    assert f"{server.url}/health (HTTP 503 Service Unavailable, expected 2xx)" in result.stderr


def test_each_target_has_its_own_expected_status(server: HttpServer) -> None:
    server.routes["/ok"] = Route(200)
    server.routes["/gone"] = Route(410)
    result = run_waitfor(*FAST, f"{server.url}/ok", f"{server.url}/gone#status=404,410")
    assert result.returncode == 0, result.stderr
    result = run_waitfor(*FAST, f"{server.url}/ok#status=404", f"{server.url}/gone#status=4xx")
    assert result.returncode == 124
    assert "HTTP 200 OK, expected 404" in result.stderr


@pytest.mark.parametrize(
    ("spec", "ready"), [("200-299", False), ("300-399", True), ("2xx,3xx", True), ("301,302", True)]
)
def test_status_ranges_and_classes(server: HttpServer, spec: str, ready: bool) -> None:
    server.routes["/r"] = Route(302, b"", {"Location": "/elsewhere"})
    result = run_waitfor(*FAST, f"{server.url}/r#redirects=0&status={spec}")
    assert result.returncode == (0 if ready else 124), result.stderr


def test_redirects_are_followed_by_default(server: HttpServer) -> None:
    server.routes["/old"] = Route(301, b"", {"Location": "/new"})
    server.routes["/new"] = Route(200, b"here")
    assert run_waitfor(*FAST, f"{server.url}/old").returncode == 0
    assert [path for _, path, _ in server.requests] == ["/old", "/new"]


def test_redirect_loop_ends_with_a_clear_reason(server: HttpServer) -> None:
    server.routes["/a"] = Route(302, b"", {"Location": "/b"})
    server.routes["/b"] = Route(302, b"", {"Location": "/a"})
    result = run_waitfor(*FAST, f"{server.url}/a#redirects=5")
    assert result.returncode == 124
    assert "more than 5 redirects" in result.stderr


def test_body_regex(server: HttpServer) -> None:
    server.routes["/status"] = Route(200, b"db: connected\nqueue: connected\n")
    assert run_waitfor(*FAST, f"{server.url}/status#body=queue:%20conn").returncode == 0
    result = run_waitfor(*FAST, f"{server.url}/status#body=cache:%20connected")
    assert result.returncode == 124
    assert "body does not match /cache: connected/" in result.stderr


def test_json_field_expectation_like_elasticsearch_health(server: HttpServer) -> None:
    server.json("/_cluster/health", {"cluster_name": "c", "status": "red"})
    target = f"{server.url}/_cluster/health#json=status:green,yellow"
    proc = start_waitfor("--timeout", "10s", "--interval", "50ms", target)
    # The cluster turns yellow once waitfor has seen it red (a loaded machine may take
    # over a second to start waitfor: a fixed sleep raced with it).
    assert proc.stderr is not None
    early = [proc.stderr.readline()]
    while "not ready" not in early[-1] and early[-1]:
        early.append(proc.stderr.readline())
    server.json("/_cluster/health", {"cluster_name": "c", "status": "yellow"})
    _, rest = proc.communicate(timeout=10)
    stderr = "".join(early) + rest
    assert proc.returncode == 0, stderr
    assert 'JSON field status is \\"red\\", expected green or yellow' in stderr


def test_json_path_into_lists_and_truthiness(server: HttpServer) -> None:
    server.json("/x", {"checks": [{"ok": True}, {"ok": False}], "count": 3})
    assert run_waitfor(*FAST, f"{server.url}/x#json=checks.0.ok").returncode == 0
    assert run_waitfor(*FAST, f"{server.url}/x#json=count:3").returncode == 0
    result = run_waitfor(*FAST, f"{server.url}/x#json=checks.1.ok")
    assert result.returncode == 124 and "JSON field checks.1.ok is false" in result.stderr
    result = run_waitfor(*FAST, f"{server.url}/x#json=missing.field")
    assert result.returncode == 124 and "JSON field missing.field missing" in result.stderr


def test_body_that_is_not_json(server: HttpServer) -> None:
    server.routes["/x"] = Route(200, b"<html>")
    result = run_waitfor(*FAST, f"{server.url}/x#json=status")
    assert result.returncode == 124 and "body is not JSON" in result.stderr


def test_method_and_headers_are_sent(server: HttpServer) -> None:
    def needs_token(handler):  # type: ignore[no-untyped-def]
        if handler.command == "POST" and handler.headers.get("X-Token") == "abc":
            return 200, {}, b"ok"
        return 403, {}, b"no"

    server.routes["/hook"] = needs_token
    result = run_waitfor(*FAST, f"{server.url}/hook#method=POST&header=X-Token:abc")
    assert result.returncode == 0, result.stderr
    assert run_waitfor(*FAST, f"{server.url}/hook").returncode == 124


def test_head_method(server: HttpServer) -> None:
    server.routes["/"] = Route(200)
    assert run_waitfor(*FAST, f"{server.url}/#method=HEAD").returncode == 0
    assert server.requests[-1][0] == "HEAD"


def test_basic_auth_from_the_uri_and_password_never_printed(server: HttpServer) -> None:
    expected = "Basic " + base64.b64encode(b"admin:s3cret-pw").decode()

    def guarded(handler):  # type: ignore[no-untyped-def]
        ok = handler.headers.get("Authorization") == expected
        return (200, {}, b"ok") if ok else (401, {}, b"auth")

    server.routes["/secure"] = guarded
    url = f"http://admin:s3cret-pw@127.0.0.1:{server.port}/secure"
    result = run_waitfor(*FAST, url)
    assert result.returncode == 0, result.stderr
    bad = run_waitfor(*FAST, f"http://admin:wrong-pw@127.0.0.1:{server.port}/secure")
    assert bad.returncode == 124 and "HTTP 401" in bad.stderr
    for output in (result.stderr, bad.stderr):
        assert "s3cret-pw" not in output and "wrong-pw" not in output
        assert "admin:***@" in output


def test_credentials_follow_a_same_origin_redirect_but_not_another_origin(
    server: HttpServer,
) -> None:
    with HttpServer() as other:
        other.routes["/landing"] = Route(200)
        server.routes["/here"] = Route(302, b"", {"Location": "/there"})
        server.routes["/there"] = Route(200)
        server.routes["/away"] = Route(302, b"", {"Location": f"{other.url}/landing"})
        base = f"http://admin:s3cret-pw@127.0.0.1:{server.port}"
        assert run_waitfor(*FAST, f"{base}/here").returncode == 0
        assert run_waitfor(*FAST, f"{base}/away").returncode == 0
        sent = {path: headers.get("Authorization") for _, path, headers in server.requests}
        assert (
            sent["/here"]
            == sent["/there"]
            == "Basic " + base64.b64encode(b"admin:s3cret-pw").decode()
        )
        assert [h.get("Authorization") for _, _, h in other.requests] == [None]


def test_target_that_appears_later(tmp_path: Path) -> None:
    port = free_port()
    proc = start_waitfor("--timeout", "10s", f"http://127.0.0.1:{port}/ready")
    # The server appears once waitfor has found it missing (a loaded machine may take
    # over a second to start waitfor: a fixed sleep raced with it).
    assert proc.stderr is not None
    early = [proc.stderr.readline()]
    while "not ready" not in early[-1] and early[-1]:
        early.append(proc.stderr.readline())
    started = time.monotonic()
    srv = HttpServer()
    srv.httpd.server_close()  # rebind on the chosen port instead
    with HttpServerOnPort(port) as late:
        late.routes["/ready"] = Route(200)
        _, rest = proc.communicate(timeout=10)
        detected = time.monotonic() - started
    stderr = "".join(early) + rest
    assert proc.returncode == 0, stderr
    assert "connection refused" in stderr
    assert detected < 2.0


class HttpServerOnPort(HttpServer):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.httpd.server_close()
        import http.server

        handler = self.httpd.RequestHandlerClass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    client = ca.issue_cert("waitfor-client")
    files = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "client.pem",
        "key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return files


def server_context(ca: trustme.CA, *, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    if require_client_cert:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_https_verifies_with_the_given_ca(ca: trustme.CA, tls_files: dict[str, Path]) -> None:
    with HttpServer(tls=server_context(ca)) as srv:
        srv.routes["/"] = Route(200)
        result = run_waitfor(*FAST, f"{srv.url}/#ca={tls_files['ca']}")
        assert result.returncode == 0, result.stderr


def test_https_untrusted_certificate_is_not_ready(ca: trustme.CA) -> None:
    with HttpServer(tls=server_context(ca)) as srv:
        srv.routes["/"] = Route(200)
        result = run_waitfor(*FAST, f"{srv.url}/")
        assert result.returncode == 124
        assert "not trusted" in result.stderr and "certificate" in result.stderr


def test_https_insecure_switch_skips_verification_and_warns(ca: trustme.CA) -> None:
    with HttpServer(tls=server_context(ca)) as srv:
        srv.routes["/"] = Route(200)
        result = run_waitfor(*FAST, f"{srv.url}/#insecure")
        assert result.returncode == 0, result.stderr
        assert "WARN" in result.stderr and "TLS verification disabled" in result.stderr


def test_https_client_certificate(ca: trustme.CA, tls_files: dict[str, Path]) -> None:
    with HttpServer(tls=server_context(ca, require_client_cert=True)) as srv:
        srv.routes["/"] = Route(200)
        base = f"{srv.url}/#ca={tls_files['ca']}"
        with_cert = f"{base}&cert={tls_files['cert']}&key={tls_files['key']}"
        assert run_waitfor(*FAST, with_cert).returncode == 0
        assert run_waitfor(*FAST, base).returncode == 124


def test_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    result = run_waitfor(*FAST, f"https://localhost:1/#ca={tmp_path}/missing.pem")
    assert result.returncode == 2
    assert "cannot load TLS ca" in result.stderr and "Traceback" not in result.stderr


# --- hostile servers ---------------------------------------------------------------------


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server whose answer the test sets: b"" means accept and never answer."""
    answer: list[bytes] = [b""]
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if answer[0]:
                conn.recv(65536)
                conn.sendall(answer[0])
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], answer
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_server_that_accepts_and_never_answers(raw_server: tuple[int, list[bytes]]) -> None:
    port, _ = raw_server
    started = time.monotonic()
    result = run_waitfor(
        "--timeout", "2s", "--attempt-timeout", "500ms", f"http://127.0.0.1:{port}/"
    )
    assert result.returncode == 124
    assert time.monotonic() - started < 5
    assert "no answer within 0.5s" in result.stderr


def test_garbage_http_response(raw_server: tuple[int, list[bytes]]) -> None:
    port, answer = raw_server
    answer[0] = b"SSH-2.0-OpenSSH_9.2\r\n\r\n"
    result = run_waitfor(*FAST, f"http://127.0.0.1:{port}/")
    assert result.returncode == 124
    assert "invalid HTTP response" in result.stderr


def test_server_closing_without_response(raw_server: tuple[int, list[bytes]]) -> None:
    port, answer = raw_server
    answer[0] = b"\0"  # one byte then close: not even a status line
    result = run_waitfor(*FAST, f"http://127.0.0.1:{port}/")
    assert result.returncode == 124
    assert "invalid HTTP response" in result.stderr or "closed the connection" in result.stderr


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("status=abc", "option status: 'abc' is not a status"),
        ("body=(unclosed", "option body: invalid regular expression"),
        ("header=NoColon", "option header: expected Name:Value"),
        ("method=GE T", "is not an HTTP method"),
        ("redirects=-1", "option redirects: must be at least 0"),
        ("jsn=status", "unknown option 'jsn'"),
        ("key=/tmp/k.pem", "option 'key' needs 'cert' too"),
    ],
)
def test_bad_http_options_are_configuration_errors(fragment: str, message: str) -> None:
    result = run_waitfor(*FAST, f"http://127.0.0.1:1/#{fragment}")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_body_checks_read_the_whole_body_even_when_it_arrives_in_pieces() -> None:
    body = b'{"cluster_name":"c","padding":"' + b"x" * 30 + b'","status":"green"}'
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                conn.sendall(head.encode() + body[:30])
                time.sleep(0.05)
                conn.sendall(body[30:])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        json_check = run_waitfor(*FAST, f"{url}#json=status:green")
        body_check = run_waitfor(*FAST, f"{url}#body=green")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert json_check.returncode == 0, json_check.stderr
    assert body_check.returncode == 0, body_check.stderr


def test_deeply_nested_json_is_not_ready_not_a_crash(server: HttpServer) -> None:
    server.routes["/deep"] = Route(200, b"[" * 100_000 + b"]" * 100_000)
    result = run_waitfor(*FAST, f"{server.url}/deep#json=status")
    assert result.returncode == 124
    assert "nested too deeply" in result.stderr


def test_encrypted_client_key_is_refused_not_prompted(ca: trustme.CA, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    client = ca.issue_cert("waitfor-client")
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "client.key").write_bytes(encrypted)
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    result = run_waitfor(
        *FAST, f"https://localhost:1/#cert={tmp_path}/client.pem&key={tmp_path}/client.key"
    )
    assert result.returncode == 2
    assert "client key is encrypted" in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://127.0.0.1:1/#json=", "option json: needs a field path"),
        ("http://127.0.0.1:1/#header=X:a%0d%0aEvil:1", "value has a line break"),
        ("dns://a..b", "invalid DNS name"),
        (f"dns://{'a' * 64}.example", "invalid DNS name"),
        ("tcp://a..b:1", "invalid host name"),
        ("file:///tmp/a%00b", "NUL byte"),
    ],
)
def test_more_bad_input_is_a_configuration_error(target: str, message: str) -> None:
    result = run_waitfor(*FAST, target)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_garbage_resolv_conf_is_a_configuration_error(tmp_path: Path) -> None:
    garbage = tmp_path / "resolv.conf"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    result = run_waitfor(*FAST, "--resolv-conf", str(garbage), "dns://localhost")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("answer", "ready", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"4\r\nall \r\n5;ext=1\r\nready\r\n0\r\n\r\n", True, ""),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\nzz\r\n", False,
         "response body broken: a broken chunk in the response body (b'zz\\r\\n')"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nall rea", False,
         "response body broken: connection closed after 7 bytes while reading the response "
         "body"),
    ],
    ids=["chunked", "broken-chunk", "short-content-length"],
)  # fmt: skip
def test_a_body_in_chunks_is_read_whole_and_a_broken_one_said(
    raw_server: tuple[int, list[bytes]], answer: bytes, ready: bool, reason: str
) -> None:
    port, answers = raw_server
    answers[0] = answer
    result = run_waitfor("--timeout", "2s", "--interval", "200ms",
                         f"http://127.0.0.1:{port}/#body=all%20ready")  # fmt: skip
    assert (result.returncode == 0) is ready, result.stderr
    assert reason in result.stderr
