"""waitfor's protocol checks (postgres, mysql/mariadb, redis, amqp) against real servers.

The servers are private instances from the Debian packages (see servers.py); waitfor runs
as a real process. Peers that misbehave on purpose (a database still starting up, a
service speaking another protocol) are small socket servers in this file.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    free_port,
    json_events,
    kubelet_secret,
    read_stderr_until,
    run_waitfor,
    start_waitfor,
)
from tests.integration.servers import (
    HOST,
    MARIADB_ED25519_PASSWORD,
    MARIADB_ED25519_USER,
    MARIADB_MAX_CONNECT_ERRORS,
    POSTGRES_REJECTED_USER,
    REDIS_ACL_PASSWORD,
    REDIS_ACL_USER,
    REDIS_PASSWORD,
    MariaDB,
    Postgres,
    RabbitMQ,
    Redis,
    ServerProcess,
    SourceRelay,
    mariadb_client,
)

# Failing cases give up quickly; a healthy server answers in milliseconds.
FAIL_FAST = ("--timeout", "2s", "--attempt-timeout", "1s", "--interval", "200ms")
READY_SOON = ("--timeout", "20s", "--json")
# How long a server is held back while waitfor is already waiting for it.
DELAY = 1.5

SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NOT_A = {
    "postgres": "not a PostgreSQL server",
    "mysql": "not a MySQL server",
    "redis": "not a Redis server",
    "amqp": "not an AMQP broker",
}


# --- helpers ----------------------------------------------------------------------------


def final_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines, f"waitfor wrote nothing on stderr (exit {result.returncode})"
    return lines[-1]


def ready_event(result: subprocess.CompletedProcess[str], target: str) -> dict[str, Any]:
    """Exit 0 and the `ready` event of `target` (waitfor run with --json)."""
    assert result.returncode == 0, result.stderr
    events = [e for e in json_events(result.stderr) if e["message"] == "ready"]
    matching = [e for e in events if e["target"] == target]
    assert len(matching) == 1, result.stderr
    return matching[0]


def assert_timed_out(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 124, and the final error line contains every `expected` text."""
    assert result.returncode == 124, result.stderr
    line = final_line(result)
    assert "ERROR" in line and "timed out after" in line, line
    for text in expected:
        assert text in line, f"{text!r} missing from: {line}"
    return line


def assert_reason(line: str, target: str, reason: str) -> None:
    """The summary names each failing target as `TARGET (REASON...)`."""
    assert f"{target} ({reason}" in line, f"{target} ({reason}...) missing from: {line}"


@contextlib.contextmanager
def fake_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on a free loopback port calling `handle(conn)` for each connection."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            handle(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=serve_one, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for worker in workers:
            worker.join(10)


def recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def drain(conn: socket.socket) -> None:
    """Read until the client hangs up: the client, not the fake, ends the conversation."""
    while conn.recv(4096):
        pass


def banner_then_listen(conn: socket.socket) -> None:
    """A service that talks first, and not our protocol (an SSH server)."""
    conn.sendall(SSH_BANNER)
    drain(conn)


def http_server(conn: socket.socket) -> None:
    """A service that waits for a request, rejects it and hangs up (an HTTP server)."""
    conn.recv(4096)
    conn.sendall(HTTP_400)
    conn.shutdown(socket.SHUT_WR)
    drain(conn)


def pg_error(code: str, message: str) -> bytes:
    fields = b"".join(
        kind + text.encode() + b"\0"
        for kind, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def read_pg_startup(conn: socket.socket) -> bytes:
    (length,) = struct.unpack("!I", recv_exactly(conn, 4))
    return recv_exactly(conn, length - 4)


def wait_for_late_server(
    server: ServerProcess, target: str, display: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Start waitfor, then the server once waitfor has found it missing and at least DELAY
    seconds later: waitfor waits until it is up."""
    started = time.monotonic()
    with start_waitfor("--timeout", "60s", "--interval", "250ms", "--json", target) as proc:
        try:
            # Not a fixed sleep alone: a loaded machine may take longer to start waitfor.
            early = read_stderr_until(proc, '"not ready"', timeout=60)
            time.sleep(max(0.0, started + DELAY - time.monotonic()))
            if proc.poll() is not None:
                pytest.fail(f"waitfor ended before the server started: {proc.communicate()}")
            server.start(wait=False)
            stdout, rest = proc.communicate(timeout=90)
            stderr = early + rest
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    elapsed = time.monotonic() - started
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert result.returncode == 0, f"{result.stderr}\n{server.name} log:\n{server.log_tail()}"
    event = ready_event(result, display or target)
    assert elapsed >= DELAY
    assert event["attempts"] > 1, event
    # Refused while the server was not there yet, and the log said so.
    not_ready = [e for e in json_events(result.stderr) if e["message"] == "not ready"]
    assert not_ready, result.stderr
    assert "connection refused" in not_ready[0]["error"], not_ready[0]
    assert server.is_ready()
    return result


# --- PostgreSQL -------------------------------------------------------------------------


def test_postgres_ready(postgres_server: Postgres) -> None:
    target = postgres_server.url()
    result = run_waitfor(*READY_SOON, target)
    event = ready_event(result, target)
    assert event["detail"] == "server accepts connections"
    assert event["attempts"] == 1
    assert result.stdout == ""


def test_postgres_login_refused_still_counts_as_ready(postgres_server: Postgres) -> None:
    """pg_isready's rule: a server that refuses the login accepts connections."""
    target = postgres_server.url(user=POSTGRES_REJECTED_USER, database="nowhere")
    event = ready_event(run_waitfor(*READY_SOON, target), target)
    assert "it answered 28000" in event["detail"], event
    assert "pg_hba.conf rejects connection" in event["detail"], event


def test_postgres_started_after_waitfor(postgres_factory: Callable[[], Postgres]) -> None:
    server = postgres_factory()
    wait_for_late_server(server, server.url())


def test_postgres_starting_up_57p03_is_not_ready() -> None:
    def starting_up(conn: socket.socket) -> None:
        read_pg_startup(conn)
        conn.sendall(pg_error("57P03", "the database system is starting up"))

    with fake_server(starting_up) as port:
        target = f"postgres://{HOST}:{port}"
        result = run_waitfor(*FAIL_FAST, target)
    line = assert_timed_out(result, target)
    assert_reason(line, target, "server not accepting connections yet")
    assert "the database system is starting up (57P03)" in line


def test_postgres_ready_once_57p03_stops() -> None:
    answers = iter([pg_error("57P03", "the database system is starting up")] * 3)
    auth_ok = b"R" + struct.pack("!II", 8, 0)
    seen: list[bytes] = []

    def recovering(conn: socket.socket) -> None:
        seen.append(read_pg_startup(conn))
        conn.sendall(next(answers, auth_ok))
        drain(conn)

    with fake_server(recovering) as port:
        target = f"postgres://app@{HOST}:{port}/appdb"
        result = run_waitfor(*READY_SOON, "--interval", "100ms", target)
    event = ready_event(result, target)
    assert event["attempts"] == 4, result.stderr
    errors = [e["error"] for e in json_events(result.stderr) if e["message"] == "not ready"]
    assert errors and all("57P03" in error for error in errors), errors
    # The startup message names the user and database from the URI.
    assert b"user\0app\0" in seen[0] and b"database\0appdb\0" in seen[0], seen[0]


# --- MariaDB ----------------------------------------------------------------------------


def test_mariadb_ready(mariadb_server: MariaDB) -> None:
    logged_in = mariadb_server.url(user="root")
    # No user given: waitfor logs in as `waitfor`, which does not exist; being refused
    # still proves the server accepts connections.
    refused = f"mysql://{HOST}:{mariadb_server.port}"
    result = run_waitfor(*READY_SOON, logged_in, refused)
    assert "accepts connections (logged in)" in ready_event(result, logged_in)["detail"]
    assert "login refused: 1045" in ready_event(result, refused)["detail"]
    assert "MariaDB" in ready_event(result, refused)["detail"]


@pytest.mark.timeout(180)
def test_mariadb_started_after_waitfor(mariadb_factory: Callable[[], MariaDB]) -> None:
    server = mariadb_factory()
    wait_for_late_server(server, server.url(user="root"))


def abandon_handshakes(port: int, times: int) -> bytes:
    """Connect, read the greeting, hang up without answering; → the next greeting."""
    # Generous timeouts: the server looks up the name of each new client address once.
    for _ in range(times):
        with socket.create_connection((HOST, port), timeout=30) as conn:
            conn.recv(1024)
    time.sleep(0.2)  # let the server notice the last hang-up
    with socket.create_connection((HOST, port), timeout=30) as conn:
        return conn.recv(1024)


def test_mariadb_blocks_hosts_that_abandon_handshakes(mariadb_server: MariaDB) -> None:
    """The control for the test below: this setup really does block a careless client."""
    with SourceRelay(mariadb_server.port, source="127.0.0.9") as relay:
        greeting = abandon_handshakes(relay.port, MARIADB_MAX_CONNECT_ERRORS + 1)
        assert b"is blocked because of many connection errors" in greeting, greeting
        target = mariadb_server.url(user="root", port=relay.port)
        line = assert_timed_out(run_waitfor(*FAIL_FAST, target), target)
    assert_reason(line, target, "server refused the connection: 1129")
    assert "127.0.0.9' is blocked because of many connection errors" in line


MANY_PROBES = 150


@pytest.mark.parametrize(
    ("user", "password", "source", "detail"),
    [
        pytest.param("root", None, "127.0.0.2", "(logged in)", id="login-succeeds"),
        pytest.param(None, None, "127.0.0.3", "(login refused: 1045)", id="login-refused"),
        pytest.param(
            MARIADB_ED25519_USER,
            MARIADB_ED25519_PASSWORD,
            "127.0.0.4",
            "(login refused: 1045)",
            id="auth-switch-to-ed25519",
        ),
    ],
)
def test_mariadb_many_probes_do_not_block_the_host(
    mariadb_server: MariaDB, user: str | None, password: str | None, source: str, detail: str
) -> None:
    """MariaDB blocks a host after max_connect_errors handshakes it abandons: waitfor must
    finish every handshake it starts, whether the login succeeds, is refused, or the
    server asks to switch to an authentication plugin waitfor cannot do."""
    if user == MARIADB_ED25519_USER and not mariadb_server.has_ed25519:
        pytest.skip("MariaDB's auth_ed25519 plugin is not installed")
    assert MANY_PROBES > 10 * MARIADB_MAX_CONNECT_ERRORS
    with SourceRelay(mariadb_server.port, source=source) as relay:
        who = f"{user}:{password}@" if password else f"{user}@" if user else ""
        target = f"mariadb://{who}{HOST}:{relay.port}"
        display = target.replace(f":{password}@", ":***@") if password else target
        result = run_waitfor(
            "--consecutive", str(MANY_PROBES), "--interval", "10ms", "--json",
            "--timeout", "30s", target,
        )  # fmt: skip
        event = ready_event(result, display)  # ready = MANY_PROBES successes in a row
        assert event["attempts"] >= MANY_PROBES, event
        assert event["detail"].endswith(detail), event

        # The server did not hold it against this host: another probe, and a real
        # client's handshake (through the same source address), still get in.
        again = run_waitfor(*FAIL_FAST, "--json", target)
        assert ready_event(again, display)["detail"].endswith(detail)
        client = mariadb_client()
        if client is not None:
            query = subprocess.run(
                [client, "--no-defaults", "--protocol=TCP", "-h", HOST, "-P", str(relay.port),
                 "-u", "root", "-N", "-B", "-e", "select 1"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert query.returncode == 0, query.stderr
            assert query.stdout.strip() == "1"
    if password:
        assert password not in result.stderr + again.stderr


# --- Redis ------------------------------------------------------------------------------


def test_redis_ready(redis_server: Redis) -> None:
    target = f"redis://{HOST}:{redis_server.port}"
    assert ready_event(run_waitfor(*READY_SOON, target), target)["detail"] == "PONG"


def test_redis_with_password_ready_and_password_not_logged(redis_auth_server: Redis) -> None:
    port = redis_auth_server.port
    with_password = f"redis://:{REDIS_PASSWORD}@{HOST}:{port}"
    with_acl_user = f"redis://{REDIS_ACL_USER}:{REDIS_ACL_PASSWORD}@{HOST}:{port}"
    result = run_waitfor(*READY_SOON, with_password, with_acl_user)
    assert ready_event(result, f"redis://:***@{HOST}:{port}")["detail"] == "PONG"
    assert ready_event(result, f"redis://{REDIS_ACL_USER}:***@{HOST}:{port}")["detail"] == "PONG"
    for secret in (REDIS_PASSWORD, REDIS_ACL_PASSWORD):
        assert secret not in result.stderr + result.stdout


def test_redis_wrong_password_is_not_ready(redis_auth_server: Redis) -> None:
    wrong = "not-the-Pa55word"
    target = f"redis://:{wrong}@{HOST}:{redis_auth_server.port}"
    display = f"redis://:***@{HOST}:{redis_auth_server.port}"
    result = run_waitfor(*FAIL_FAST, target)
    line = assert_timed_out(result, display)
    assert_reason(line, display, "AUTH refused: WRONGPASS")
    for secret in (wrong, REDIS_PASSWORD):
        assert secret not in result.stderr + result.stdout


def test_redis_password_required_but_not_given(redis_auth_server: Redis) -> None:
    target = f"redis://{HOST}:{redis_auth_server.port}"
    line = assert_timed_out(run_waitfor(*FAIL_FAST, target), target)
    assert_reason(line, target, "PING answered NOAUTH")


def test_redis_started_after_waitfor(redis_factory: Callable[..., Redis]) -> None:
    server = redis_factory(password=REDIS_PASSWORD)
    target = f"redis://:{REDIS_PASSWORD}@{HOST}:{server.port}"
    result = wait_for_late_server(server, target, display=f"redis://:***@{HOST}:{server.port}")
    assert REDIS_PASSWORD not in result.stderr


# --- AMQP -------------------------------------------------------------------------------


def test_amqp_ready(rabbitmq_server: RabbitMQ) -> None:
    target = rabbitmq_server.url()
    event = ready_event(run_waitfor(*READY_SOON, target), target)
    assert event["detail"] == "broker answered Connection.Start"


def test_amqp_other_protocol_version_is_not_ready() -> None:
    def speaks_0_8(conn: socket.socket) -> None:
        assert recv_exactly(conn, 8) == b"AMQP\x00\x00\x09\x01"
        conn.sendall(b"AMQP\x00\x00\x08\x00")  # what a broker says when it cannot do 0-9-1

    with fake_server(speaks_0_8) as port:
        target = f"amqp://{HOST}:{port}"
        line = assert_timed_out(run_waitfor(*FAIL_FAST, target), target)
    assert_reason(line, target, "broker does not speak AMQP 0-9-1 (it offers 0.8.0)")


# --- every protocol: nothing listening, the wrong kind of server ------------------------


def test_nothing_listening_times_out_naming_target_and_reason() -> None:
    ports = {scheme: free_port() for scheme in ("postgres", "mysql", "mariadb", "redis", "amqp")}
    targets = {scheme: f"{scheme}://{HOST}:{port}" for scheme, port in ports.items()}
    result = run_waitfor(*FAIL_FAST, *targets.values())
    line = assert_timed_out(result, "5 of 5 not ready")
    for scheme, target in targets.items():
        assert_reason(line, target, f"connection refused by {HOST}:{ports[scheme]}")


def test_timeout_in_json_lines() -> None:
    target = f"postgres://{HOST}:{free_port()}"
    result = run_waitfor(*FAIL_FAST, "--json", target)
    assert result.returncode == 124, result.stderr
    lines = result.stderr.splitlines()
    events = json_events(result.stderr)
    assert len(events) == len(lines) >= 3
    assert all(isinstance(event, dict) for event in events)
    final = events[-1]
    assert final["log.level"] == "error", final
    assert final["message"].startswith("timed out after"), final
    assert target in final["message"] and "connection refused" in final["message"], final
    summary = [e for e in events if e["message"] == "summary"]
    assert [(e["target"], e["outcome"]) for e in summary] == [(target, "not ready")]


def test_server_that_talks_another_protocol_first() -> None:
    """An SSH server behind the port: it sends its banner before anything else."""
    with fake_server(banner_then_listen) as port:
        targets = {scheme: f"{scheme}://{HOST}:{port}" for scheme in NOT_A}
        targets["redis-auth"] = f"redis://:{REDIS_PASSWORD}@{HOST}:{port}"
        result = run_waitfor(*FAIL_FAST, *targets.values())
    line = assert_timed_out(result, "5 of 5 not ready")
    for scheme, expected in NOT_A.items():
        assert_reason(line, targets[scheme], expected)
    assert_reason(line, f"redis://:***@{HOST}:{port}", NOT_A["redis"])
    assert REDIS_PASSWORD not in result.stderr


def test_server_that_answers_in_another_protocol() -> None:
    """An HTTP server behind the port: it rejects what we send with a 400 and hangs up.

    (MySQL is left out: its server speaks first, an HTTP server never does.)
    """
    with fake_server(http_server) as port:
        targets = {scheme: f"{scheme}://{HOST}:{port}" for scheme in ("postgres", "redis", "amqp")}
        result = run_waitfor(*FAIL_FAST, *targets.values())
    line = assert_timed_out(result, "3 of 3 not ready")
    for scheme, target in targets.items():
        assert_reason(line, target, NOT_A[scheme])


def test_mysql_malformed_greeting_is_not_ready() -> None:
    """A greeting packet with the protocol byte right but no version string after it."""

    def greets(conn: socket.socket) -> None:
        conn.sendall(b"\x06\x00\x00\x00\x0aHELLO")
        drain(conn)

    with fake_server(greets) as port:
        target = f"mysql://{HOST}:{port}"
        result = run_waitfor(*FAIL_FAST, target)
    line = assert_timed_out(result, target)
    assert_reason(line, target, NOT_A["mysql"])
    assert "Traceback" not in result.stderr


# --- TLS (rediss://) ------------------------------------------------------------------------


TLS_RUN = ["--timeout", "1500ms", "--interval", "50ms"]


def test_rediss_verifies_the_server_certificate(
    redis_factory: Callable[..., Redis], tmp_path: Path
) -> None:
    import trustme

    ca = trustme.CA()
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "srv.pem", "key": tmp_path / "srv.key"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    issued = ca.issue_cert("localhost", "127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(files["cert"]))
    issued.private_key_pem.write_to_path(str(files["key"]))
    server = redis_factory(tls=files)
    server.start()
    url = f"rediss://localhost:{server.port}"

    trusted = run_waitfor(*TLS_RUN, f"{url}#ca={files['ca']}")
    assert trusted.returncode == 0, trusted.stderr
    assert "PONG" in trusted.stderr

    untrusted = run_waitfor(*TLS_RUN, url)
    assert untrusted.returncode == 124
    assert "not trusted" in untrusted.stderr

    insecure = run_waitfor(*TLS_RUN, f"{url}#insecure")
    assert insecure.returncode == 0, insecure.stderr
    assert "TLS verification disabled" in insecure.stderr

    plain = run_waitfor(*TLS_RUN, f"redis://localhost:{server.port}#ca={files['ca']}")
    assert plain.returncode == 2
    assert "unknown option 'ca'" in plain.stderr


def test_a_password_file_rotated_while_waitfor_waits_is_read_at_the_next_attempt(
    redis_auth_server: Redis, tmp_path: Path
) -> None:
    """The Secret is updated the kubelet's way while waitfor is refused: the next
    attempt reads the new password, and neither password is ever shown."""
    secret = tmp_path / "secret"
    kubelet_secret(secret, {"password": "stale-Pa55word"})
    target = f"redis://{HOST}:{redis_auth_server.port}#password-file={secret / 'password'}"
    proc = start_waitfor("--timeout", "30s", "--interval", "200ms", target)
    said = read_stderr_until(proc, "WRONGPASS")
    kubelet_secret(secret, {"password": REDIS_PASSWORD})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, said + err
    for password in (REDIS_PASSWORD, "stale-Pa55word"):
        assert password not in said + err + out


def test_redis_password_from_a_file_never_on_the_command_line(
    redis_auth_server: Redis, tmp_path: Path
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(REDIS_PASSWORD + "\n")  # as a Secret's file or `echo` writes it
    target = f"redis://{HOST}:{redis_auth_server.port}#password_file={secret}"
    display = target.replace(str(secret), "***")  # any password-ish option is masked
    result = run_waitfor(*READY_SOON, target)
    assert ready_event(result, display)["detail"] == "PONG"
    assert REDIS_PASSWORD not in result.stderr + result.stdout
    secret.write_text("not-the-Pa55word\n")
    line = assert_timed_out(run_waitfor(*FAIL_FAST, target), display)
    assert_reason(line, display, "AUTH refused: WRONGPASS")
