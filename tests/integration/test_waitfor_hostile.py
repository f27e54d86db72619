"""waitfor against hostile peers: every kind of target ends by its deadline, saying why.

Servers on loopback sockets (tests/integration/hostile.py, dns_server.py) accept and never
answer, answer noise or another protocol, reset or close mid-handshake, redirect in loops,
drip, send forever, present broken certificates; nameservers fail, refuse, truncate, answer
with the wrong id or garbage, or stay silent. waitfor runs as a real process; one run
checks many targets at once, and its last line must name each target and its cause.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import json_events, run_waitfor
from tests.integration import hostile
from tests.integration.dns_server import DnsServer
from tests.integration.hostile import HOST, Certs, HostileServer

TIMEOUT = 2.0
FAIL_FAST = ("--timeout", f"{TIMEOUT}s", "--attempt-timeout", "1s", "--interval", "200ms")
# A correctness bound against hanging, not a speed goal: start-up on a loaded 2-core
# machine plus the deadline plus exit. A hang would take a resolver's 30 s, or forever.
MARGIN = 3.0


def run(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run waitfor, expect exit 124 within the deadline, and no traceback; → the result."""
    started = time.monotonic()
    result = run_waitfor(*args, timeout=timeout + 30)
    elapsed = time.monotonic() - started
    assert result.returncode == 124, result.stderr
    assert elapsed < timeout + MARGIN, f"took {elapsed:.1f}s:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def final_line(result: subprocess.CompletedProcess[str]) -> str:
    line = result.stderr.strip().splitlines()[-1]
    assert "ERROR" in line and "timed out after" in line, line
    return line


def assert_reason(line: str, target: str, *causes: str) -> None:
    """The last line names the target as `TARGET (CAUSE...)`, with one of `causes`."""
    start = line.find(f"{target} (")
    assert start >= 0, f"{target} missing from: {line}"
    reason = line[start + len(target) + 2 :]
    assert any(reason.startswith(c) for c in causes), f"{target}: {causes} not in {reason}"


# --- every protocol against the same misbehaving peer ------------------------------------

PLAIN = ("http", "postgres", "mysql", "redis", "amqp")
TLS = ("https", "rediss", "amqps")

# behaviour → the cause each scheme must name; TLS schemes talk to the same plain server.
BEHAVIOURS = {
    "accepts and never answers": (
        hostile.silent,
        dict.fromkeys(PLAIN + TLS, "no answer within 1s"),  # TLS: never does the handshake
    ),
    "closes right after accept": (
        hostile.close_at_once,
        {
            # A client that wrote before the close reached it gets a reset: either is right.
            "http": ("server closed the connection without a response", "connection reset"),
            "postgres": ("connection closed after 0 bytes", "connection reset"),
            "mysql": "connection closed after 0 bytes",
            "redis": ("connection closed after 0 bytes", "connection reset"),
            "amqp": ("connection closed after 0 bytes", "connection reset"),
            **dict.fromkeys(
                TLS,
                (
                    "connection closed by localhost:{port} during the TLS handshake",
                    "connection reset by localhost:{port}",
                ),
            ),
        },
    ),
    "resets after the first bytes": (
        hostile.reset_mid_handshake(),
        {
            "http": "connection reset by",
            "postgres": "connection reset while reading",
            "mysql": "connection reset while reading",
            "redis": "connection reset while reading",
            "amqp": "connection reset while reading",
            **dict.fromkeys(TLS, "connection reset by localhost:{port}"),
        },
    ),
    "answers binary noise": (
        hostile.garbage(hostile.RANDOM),
        {
            "http": "invalid HTTP response: Bad status line",
            "postgres": "not a PostgreSQL server",
            "mysql": "not a MySQL server",
            "redis": "not a Redis server",
            "amqp": "not an AMQP broker",
            **dict.fromkeys(TLS, "TLS handshake with localhost:{port} failed: the server does not"),
        },
    ),
    "answers in HTTP": (
        hostile.garbage(hostile.HTTP_400),
        {
            "http": "HTTP 400 Bad Request, expected 2xx",
            "postgres": "not a PostgreSQL server",
            "mysql": "not a MySQL server",
            "redis": "not a Redis server (PING answered HTTP/1.1 400",
            "amqp": "not an AMQP broker",
            **dict.fromkeys(TLS, "TLS handshake with localhost:{port} failed: the server does not"),
        },
    ),
}


def targets_for(port: int) -> dict[str, str]:
    out = {scheme: f"{scheme}://{HOST}:{port}" for scheme in PLAIN}
    out.update({scheme: f"{scheme}://localhost:{port}" for scheme in TLS})
    return out


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
def test_every_protocol_ends_in_time_naming_the_cause(behaviour: str) -> None:
    behave, expected = BEHAVIOURS[behaviour]
    with HostileServer(behave) as server:
        targets = targets_for(server.port)
        result = run(*FAIL_FAST, *targets.values())
    line = final_line(result)
    assert f"{len(targets)} of {len(targets)} not ready" in line, line
    for scheme, target in targets.items():
        causes = expected[scheme] if isinstance(expected[scheme], tuple) else (expected[scheme],)
        assert_reason(line, target, *(c.format(port=server.port) for c in causes))


def test_reset_after_a_partial_answer() -> None:
    """Each server starts its own protocol's answer, then resets the connection."""
    prefixes = {
        "postgres": b"R\x00\x00",  # half an authentication request's header
        "mysql": b"\x4a\x00\x00\x00\x0a5.7",  # a greeting's header and start
        "redis": b"+PO",
        "amqp": b"\x01\x00",
    }
    with ExitStack() as stack:
        targets = {}
        for scheme, prefix in prefixes.items():
            server = stack.enter_context(HostileServer(hostile.reset_mid_handshake(prefix)))
            targets[scheme] = f"{scheme}://{HOST}:{server.port}"
        result = run(*FAIL_FAST, *targets.values())
    line = final_line(result)
    for target in targets.values():
        assert_reason(line, target, "connection reset while reading")


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, connect() hangs."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((HOST, port))
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_tcp_connect_that_never_completes(full_backlog: int) -> None:
    """tcp:// is ready once accepted, so its hostile peer is one that never accepts."""
    target = f"tcp://{HOST}:{full_backlog}"
    result = run(*FAIL_FAST, target)
    assert_reason(final_line(result), target, "no answer within 1s")


# --- HTTP: redirects, endless and slow answers -------------------------------------------


def test_http_redirects_and_endless_or_slow_answers() -> None:
    with ExitStack() as stack:
        silent = stack.enter_context(HostileServer(hostile.silent))
        routes = {
            "/a": hostile.redirect("/b"),
            "/b": hostile.redirect("/a"),
            "/self": hostile.redirect("/self"),
            "/away": hostile.redirect(f"http://{HOST}:{silent.port}/health"),
        }
        redirects = stack.enter_context(HostileServer(hostile.http_routes(routes)))
        big = hostile.endless(b"HTTP/1.1 200 OK\r\nX-Big: ", b"a" * 4096)
        many = hostile.endless(b"HTTP/1.1 200 OK\r\n", b"X-Again: and again\r\n" * 64)
        body = hostile.endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"a" * 4096)
        drip = hostile.drip(hostile.http_response("200 OK", body=b"ok"), every=0.3)
        servers = {
            name: stack.enter_context(HostileServer(behave))
            for name, behave in (("big", big), ("many", many), ("body", body), ("drip", drip))
        }
        base = f"http://{HOST}:{redirects.port}"
        loop = "more than 10 redirects, a redirect loop:"
        endless = "invalid HTTP response: no end of its headers in 64 KiB"
        expected = {
            f"{base}/a": f"{loop} {base}/a -> {base}/b -> {base}/a",
            f"{base}/self": f"{loop} {base}/self -> {base}/self",
            f"{base}/self#redirects=3": "more than 3 redirects, a redirect loop",
            f"{base}/away": "no answer within 1s",
            f"http://{HOST}:{servers['big'].port}/": endless,
            f"http://{HOST}:{servers['many'].port}/": endless,
            f"http://{HOST}:{servers['body'].port}/#body=ready": "HTTP 200, body does not match",
            f"http://{HOST}:{servers['drip'].port}/": "no answer within 1s",
        }
        result = run(*FAIL_FAST, *expected)
    line = final_line(result)
    for target, cause in expected.items():
        assert_reason(line, target, cause)
    assert len(line) < 2000, "reasons quote the peer's bytes at length"


# --- TLS: broken certificates ------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


def test_broken_certificates_are_named(certs: Certs) -> None:
    broken = {
        "certificate has expired": certs.expired(),
        "Hostname mismatch": certs.wrong_host(),
        "self-signed certificate": certs.self_signed(),
    }
    with ExitStack() as stack:
        expected: dict[str, str] = {}
        for cause, context in broken.items():
            server = stack.enter_context(HostileServer(hostile.silent, tls=context))
            for scheme in TLS:
                target = f"{scheme}://localhost:{server.port}#ca={certs.ca_file}"
                where = f"localhost:{server.port}"
                expected[target] = f"TLS certificate of {where} not trusted: {cause}"
        result = run(*FAIL_FAST, *expected)
    line = final_line(result)
    for target, cause in expected.items():
        assert_reason(line, target, cause)


def test_tls_peer_that_never_says_goodbye_is_still_ready(certs: Certs) -> None:
    """A server that answers but ignores our close_notify: its answer is the verdict.

    Before the fix, waiting up to 1 s for its goodbye outlasted the attempt, and a good
    answer was reported as "no answer".
    """
    with HostileServer(hostile.garbage(b"+PONG\r\n"), tls=certs.valid()) as server:
        target = f"rediss://localhost:{server.port}#ca={certs.ca_file}"
        result = run_waitfor(*FAIL_FAST, "--attempt-timeout", "500ms", target, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "PONG" in result.stderr


# --- DNS: failing, refusing, truncating, lying and silent nameservers ----------------------


def test_hostile_nameservers_are_named() -> None:
    with DnsServer() as server:
        server.add("ok.example", "A", "10.0.0.1")
        server.servfail("servfail.example")
        server.rcode("refused.example", "REFUSED")
        for name, how in (("tc-silent.example", "silent"), ("tc-reset.example", "reset")):
            server.add(name, "A", "10.0.0.1")
            server.truncate(name)
            server.tcp_fail(name, how)
        for name, how in (("wrong-id.example", "wrong-id"), ("garbage.example", "garbage")):
            server.add(name, "A", "10.0.0.1")
            server.mangle(name, how)
        server.drop("silent.example")
        asked = f"127.0.0.1:{server.port}"
        expected = {
            "servfail": "servfail.example: every nameserver failed",
            "refused": "refused.example: every nameserver failed",
            "nxdomain": "nxdomain.example: no such name (NXDOMAIN",
            "tc-silent": "tc-silent.example: no answer within 1s",
            "tc-reset": "tc-reset.example: every nameserver failed",
            "wrong-id": "wrong-id.example: no answer within 1s",
            "garbage": "garbage.example: no answer within 1s",
            "silent": "silent.example: no answer within 1s",
        }
        targets = {name: f"dns://{name}.example#server={asked}" for name in expected}
        result = run(*FAIL_FAST, *targets.values())
        assert server.asked("tc-silent.example", "tcp"), "the TC bit should send it to TCP"
        assert server.asked("tc-reset.example", "tcp")
    line = final_line(result)
    for name, target in targets.items():
        assert_reason(line, target, expected[name])
    for name, cause in (("servfail", "SERVFAIL"), ("refused", "REFUSED"), ("tc-reset", "reset")):
        reason = line.split(f"{targets[name]} (", 1)[1]
        assert cause in reason.split("); dns://", 1)[0], reason
    assert f"silent.example: no answer within 1s (asked {asked})" in line


# --- JSON lines, and retries ---------------------------------------------------------------


def test_json_lines_name_target_and_cause() -> None:
    with ExitStack() as stack:
        silent = stack.enter_context(HostileServer(hostile.silent))
        http = stack.enter_context(HostileServer(hostile.garbage(hostile.HTTP_400)))
        dns_server = stack.enter_context(DnsServer())
        dns_server.servfail("db.example")
        expected = {
            f"postgres://{HOST}:{silent.port}": "no answer within 1s",
            f"postgres://{HOST}:{http.port}": "not a PostgreSQL server",
            f"dns://db.example#server=127.0.0.1:{dns_server.port}": "db.example: every nameserver",
        }
        result = run(*FAIL_FAST, "--json", *expected)
    events = json_events(result.stderr)
    final = events[-1]
    assert final["log.level"] == "error" and final["message"].startswith("timed out after")
    summaries = {e["target"]: e for e in events if e["message"] == "summary"}
    assert set(summaries) == set(expected)
    for target, cause in expected.items():
        assert summaries[target]["outcome"] == "not ready"
        assert summaries[target]["last_error"].startswith(cause), summaries[target]
        assert f"{target} ({cause}" in final["message"]


def test_attempt_timeouts_retry_instead_of_hanging_on_the_first(certs: Certs) -> None:
    """A 3 s deadline of 0.5 s attempts: each hostile peer is asked again and again.

    amqps over a TLS connection whose peer never answers nor says goodbye: before the
    fix, each cut-short attempt still waited 1 s for the TLS goodbye.
    """
    with ExitStack() as stack:
        silent = stack.enter_context(HostileServer(hostile.silent))
        silent_tls = stack.enter_context(HostileServer(hostile.silent, tls=certs.valid()))
        dns_server = stack.enter_context(DnsServer())
        dns_server.drop("db.example")
        targets = [
            f"postgres://{HOST}:{silent.port}",
            f"amqps://localhost:{silent_tls.port}#ca={certs.ca_file}",
            f"dns://db.example#server=127.0.0.1:{dns_server.port}",
        ]
        args = ("--timeout", "3s", "--attempt-timeout", "500ms", "--interval", "100ms")
        result = run(*args, "--json", *targets, timeout=3.0)
        tls_connections = silent_tls.accepted
        plain_connections = silent.accepted
        questions = len(dns_server.asked("db.example"))
    summaries = {e["target"]: e for e in json_events(result.stderr) if e["message"] == "summary"}
    for target in targets:
        assert summaries[target]["attempts"] >= 4, summaries[target]
        assert "no answer within 0.5s" in summaries[target]["last_error"]
    assert plain_connections >= 4 and tls_connections >= 4 and questions >= 4


@pytest.mark.parametrize("scheme", ["postgres", "https"])
def test_deadline_shorter_than_an_attempt_ends_at_the_deadline(scheme: str, certs: Certs) -> None:
    """The default 5 s attempt is cut by a 1.5 s deadline, and the reason says so."""
    tls = certs.valid() if scheme == "https" else None
    with HostileServer(hostile.silent, tls=tls) as server:
        host = "localhost" if tls else HOST
        fragment = f"#ca={certs.ca_file}" if tls else ""
        target = f"{scheme}://{host}:{server.port}/{fragment}"
        result = run("--timeout", "1500ms", target, timeout=1.5)
    assert_reason(final_line(result), target, "no answer before the 1.5s deadline")


def test_helpers_make_what_they_promise(tmp_path: Path) -> None:
    """The expired certificate really is expired, and the reset really is a reset."""
    import ssl

    certs = Certs(tmp_path)
    with HostileServer(hostile.silent, tls=certs.expired()) as server:
        client = ssl.create_default_context(cafile=str(certs.ca_file))
        with (
            socket.create_connection((HOST, server.port)) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match="expired"),
        ):
            client.wrap_socket(raw, server_hostname="localhost")
    with (
        HostileServer(hostile.reset_mid_handshake()) as server,
        socket.create_connection((HOST, server.port), timeout=5) as conn,
    ):
        conn.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            conn.recv(1)
