"""tcp://, file://, unix:// and exec: targets against real sockets, files and processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    WAITFOR,
    free_port,
    read_stderr_until,
    run_waitfor,
    start_waitfor,
    wait_for,
)

FAST = ["--timeout", "1500ms", "--interval", "50ms"]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")


def test_tcp_ready_on_ipv4() -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        result = run_waitfor(*FAST, f"tcp://127.0.0.1:{srv.getsockname()[1]}")
    assert result.returncode == 0, result.stderr
    assert "connected to 127.0.0.1" in result.stderr


@needs_ipv6
def test_tcp_ipv6_literal() -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as srv:
        result = run_waitfor(*FAST, f"tcp://[::1]:{srv.getsockname()[1]}")
    assert result.returncode == 0, result.stderr
    assert "connected to ::1" in result.stderr


def localhost_addresses() -> set[str]:
    return {info[4][0] for info in socket.getaddrinfo("localhost", 1, type=socket.SOCK_STREAM)}


@needs_ipv6
@pytest.mark.parametrize("listen_on", ["127.0.0.1", "::1"])
def test_localhost_works_whichever_family_listens(listen_on: str) -> None:
    if listen_on not in localhost_addresses():
        pytest.skip(
            f"localhost does not resolve to {listen_on} here (see /etc/hosts); "
            "test_every_resolved_address_is_tried covers the rule"
        )
    family = socket.AF_INET6 if ":" in listen_on else socket.AF_INET
    port = free_port(listen_on)
    with socket.create_server((listen_on, port), family=family):
        result = run_waitfor(*FAST, f"tcp://localhost:{port}")
    assert result.returncode == 0, result.stderr
    assert f"connected to {listen_on}" in result.stderr


@needs_ipv6
@pytest.mark.parametrize("listen_on", ["127.0.0.1", "::1"])
def test_every_resolved_address_is_tried(listen_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to ::1 and 127.0.0.1 works whichever one the server listens on."""
    import asyncio

    from agents.waitfor.checks.tcp import TcpCheck
    from agents.waitfor.targets import parse_target

    port = free_port(listen_on)
    real = asyncio.base_events.BaseEventLoop.getaddrinfo
    asked: list[str] = []

    async def both_families(self, host, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(host)
        if host != "dual.test":
            return await real(self, host, *args, **kwargs)
        stream = (socket.SOCK_STREAM, 6, "")
        return [
            (socket.AF_INET6, *stream, ("::1", port, 0, 0)),
            (socket.AF_INET, *stream, ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", both_families)
    family = socket.AF_INET6 if ":" in listen_on else socket.AF_INET
    check = TcpCheck(parse_target(f"tcp://dual.test:{port}"))
    with socket.create_server((listen_on, port), family=family):
        detail = asyncio.run(asyncio.wait_for(check.probe(), 5))
        detail_again = asyncio.run(asyncio.wait_for(check.probe(), 5))
    assert detail == detail_again == f"connected to {listen_on}:{port}"
    assert asked.count("dual.test") == 2  # resolved on every attempt, never cached


def test_tcp_target_that_appears_later_is_noticed_quickly() -> None:
    port = free_port()
    proc = start_waitfor("--timeout", "10s", "--interval", "100ms", f"tcp://127.0.0.1:{port}")
    # The port opens once waitfor has found it closed, however long waitfor took to start.
    early = read_stderr_until(proc, "not ready")
    with socket.create_server(("127.0.0.1", port)):
        appeared = time.monotonic()
        _, rest = proc.communicate(timeout=10)
        latency = time.monotonic() - appeared
    stderr = early + rest
    assert proc.returncode == 0, stderr
    assert "not ready" in stderr and "connection refused" in stderr
    assert latency < 1.0  # bounded by the 100 ms interval, with slack for a busy machine


def test_unresolvable_host_times_out_with_the_reason() -> None:
    started = time.monotonic()
    result = run_waitfor(*FAST, "tcp://no-such-host.invalid:5432")
    assert result.returncode == 124
    assert time.monotonic() - started < 4.0
    # NXDOMAIN, or — where the system's nameserver is slow to say so — no answer in time.
    assert re.search(
        r"no-such-host\.invalid:5432 \((cannot resolve no-such-host\.invalid|no answer within)",
        result.stderr,
    ), result.stderr


def test_all_targets_must_be_ready_and_the_failing_one_is_named(closed_port: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        up = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
        down = f"tcp://127.0.0.1:{closed_port}"
        result = run_waitfor(*FAST, up, down)
        assert result.returncode == 124
        assert f"1 of 2 not ready: {down} (connection refused" in result.stderr
        assert run_waitfor(*FAST, "--any", up, down).returncode == 0


def test_invert_waits_until_the_port_closes() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    proc = start_waitfor(
        "--invert", "--timeout", "10s", "--interval", "50ms", f"tcp://127.0.0.1:{port}"
    )
    early = read_stderr_until(proc, "not ready")  # it has seen the port still open
    srv.close()
    _, rest = proc.communicate(timeout=10)
    stderr = early + rest
    assert proc.returncode == 0, stderr
    assert "all targets down" in stderr


def test_consecutive_needs_a_stable_service() -> None:
    """A port that is open only every other check never counts as ready."""
    port = free_port()
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            with socket.create_server(("127.0.0.1", port)) as s:
                s.settimeout(0.05)
                try:
                    s.accept()[0].close()  # one connection, then close the port
                except TimeoutError:
                    continue
            time.sleep(0.15)

    thread = threading.Thread(target=flap, daemon=True)
    thread.start()
    try:
        result = run_waitfor(
            "--timeout", "2s", "--interval", "50ms", "--consecutive", "5", f"tcp://127.0.0.1:{port}"
        )
    finally:
        stop.set()
        thread.join(5)
    assert result.returncode == 124, result.stderr
    assert "passing" in result.stderr  # it did see successes, just never 5 in a row


def test_file_exists_and_nonempty(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    proc = start_waitfor("--timeout", "10s", "--interval", "50ms", f"file://{marker}#nonempty")
    early = read_stderr_until(proc, "does not exist")
    marker.touch()
    early += read_stderr_until(proc, "is empty")
    assert proc.poll() is None  # exists but empty: still waiting
    marker.write_text("done\n")
    _, rest = proc.communicate(timeout=10)
    stderr = early + rest
    assert proc.returncode == 0, stderr
    assert "is empty" in stderr


def test_unix_socket_accepts(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    missing = run_waitfor(*FAST, f"unix://{path}")
    assert missing.returncode == 124 and "does not exist" in missing.stderr
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(path))
        stale = run_waitfor(*FAST, f"unix://{path}")  # bound but not listening
        assert stale.returncode == 124 and "connection refused" in stale.stderr
        srv.listen()
        assert run_waitfor(*FAST, f"unix://{path}").returncode == 0


def test_exec_target_ready_when_the_command_succeeds(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    target = f"exec:sh -c 'echo checking; test -e {flag}'"
    proc = start_waitfor("--timeout", "10s", "--interval", "50ms", target)
    early = read_stderr_until(proc, "not ready")  # the command has failed once
    flag.touch()
    _, rest = proc.communicate(timeout=10)
    stderr = early + rest
    assert proc.returncode == 0, stderr
    assert "exit status 1: checking" in stderr


def test_exec_target_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    target = f"exec:sh -c 'sleep 30 & echo $! > {pidfile}; wait'"
    result = run_waitfor("--timeout", "1s", "--attempt-timeout", "300ms", target)
    assert result.returncode == 124
    assert "no answer within 0.3s" in result.stderr
    child = int(pidfile.read_text())

    def state() -> str:
        try:
            return Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    # Gone, or a zombie waiting for a PID 1 that does not reap: either way not running.
    # SIGKILLed, it still has to be scheduled to die (a while on a loaded machine); left
    # alive, it would run for 30 s.
    wait_for(lambda: state() in ("gone", "Z"), timeout=10, what=f"child {child} to die")


def test_exec_target_command_missing_is_a_configuration_error() -> None:
    result = run_waitfor(*FAST, "exec:definitely-not-a-command --flag")
    assert result.returncode == 2
    assert "command 'definitely-not-a-command' not found" in result.stderr


# --- the command after `--` --------------------------------------------------------------


@pytest.fixture
def up_target() -> str:
    srv = socket.create_server(("127.0.0.1", 0))
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()


def test_command_replaces_waitfor_and_keeps_its_exit_code(up_target: str) -> None:
    result = run_waitfor(*FAST, up_target, "--", "sh", "-c", "echo pid=$$; exit 7")
    assert result.returncode == 7
    assert result.stdout.startswith("pid=")


def test_command_is_exec_not_a_child(up_target: str) -> None:
    proc = start_waitfor(*FAST, up_target, "--", "sh", "-c", "echo $$")
    out, _ = proc.communicate(timeout=10)
    assert int(out.strip()) == proc.pid  # same process: waitfor became the command


def test_signals_reach_the_command_directly(up_target: str) -> None:
    script = "trap 'echo got-term; exit 42' TERM; echo started; while :; do sleep 0.05; done"
    proc = start_waitfor(*FAST, up_target, "--", "sh", "-c", script)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(15)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 42
    assert "got-term" in out


def test_command_starts_with_default_signal_dispositions(up_target: str) -> None:
    """Python ignores SIGPIPE; an exec'd command must not inherit that."""
    result = run_waitfor(*FAST, up_target, "--", "grep", "SigIgn", "/proc/self/status")
    assert result.returncode == 0
    ignored = int(result.stdout.split()[1], 16)
    assert not ignored & (1 << (13 - 1)), "SIGPIPE is ignored in the command"
    assert not ignored & (1 << (25 - 1)), "SIGXFSZ is ignored in the command"


def test_command_never_runs_after_a_failure(tmp_path: Path, closed_port: int) -> None:
    marker = tmp_path / "ran"
    result = run_waitfor(
        "--timeout", "500ms", f"tcp://127.0.0.1:{closed_port}", "--", "touch", str(marker)
    )
    assert result.returncode == 124
    assert not marker.exists()


@pytest.mark.parametrize(
    ("command", "code", "why"), [("no-such-app", 127, "not found"), ("{tmp}/app.sh", 126,
                                 "not executable")]
)  # fmt: skip
def test_a_command_that_cannot_run_exits_as_a_shell_would_before_waiting(
    command: str, code: int, why: str, tmp_path: Path
) -> None:
    """127 not found, 126 not executable, as documented (and as sh says it), and said at
    once rather than after the wait: the target here never answers."""
    command = command.format(tmp=tmp_path)
    (tmp_path / "app.sh").write_text("#!/bin/sh\necho started\n")  # mode 0644
    result = run_waitfor("--timeout", "30s", f"tcp://127.0.0.1:{free_port()}", "--", command)
    assert result.returncode == code
    assert f'cannot run command command={command} error="{why}"' in result.stderr
    assert "waiting" not in result.stderr


def test_host_port_alone_waits_for_tcp_and_the_ready_summary_has_no_error(
    closed_port: int,
) -> None:
    """wait-for-it's `host:port`; a target that was refused before it got ready reports
    no last_error in its ready summary."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        proc = start_waitfor("--json", "--timeout", "20s", f"127.0.0.1:{port}")
        time.sleep(0.5)  # refused meanwhile
        srv.listen()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines()]
    assert any(e["message"] == "not ready" for e in events), err
    (summary,) = [e for e in events if e["message"] == "summary"]
    assert summary["target"] == f"tcp://127.0.0.1:{port}" and summary["outcome"] == "ready"
    assert "last_error" not in summary


# --- signals while waiting ---------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(15, 143), (2, 130)])
def test_signal_while_waiting_stops_at_once(
    signum: int, code: int, tmp_path: Path, closed_port: int
) -> None:
    marker = tmp_path / "ran"
    proc = start_waitfor(
        "--timeout", "60s", f"tcp://127.0.0.1:{closed_port}", "--", "touch", str(marker)
    )
    assert proc.stderr is not None
    assert "waiting" in proc.stderr.readline()
    sent = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert time.monotonic() - sent < 2
    assert "stopped by SIG" in stderr
    assert not marker.exists()


# --- output and configuration -------------------------------------------------------------


def test_env_only_configuration(up_target: str) -> None:
    env = {
        "WAITFOR_TARGETS": f"{up_target}, 'exec:true'",
        "WAITFOR_TIMEOUT": "5s",
        "WAITFOR_JSON": "true",
    }
    result = run_waitfor(env=env)
    assert result.returncode == 0, result.stderr
    import json

    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert {e["target"] for e in events if e["message"] == "ready"} == {up_target, "exec:true"}


def test_env_error_names_the_variable() -> None:
    result = run_waitfor("tcp://a:1", env={"WAITFOR_CONSECUTIVE": "many"})
    assert result.returncode == 2
    assert "WAITFOR_CONSECUTIVE: expected a whole number, got 'many'" in result.stderr


def test_json_lines_every_line(up_target: str, closed_port: int) -> None:
    import json

    down = f"tcp://127.0.0.1:{closed_port}"
    result = run_waitfor("--json", "--timeout", "500ms", up_target, down)
    assert result.returncode == 124
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert all({"@timestamp", "log.level", "message"} <= e.keys() for e in events)
    assert events[-1]["log.level"] == "error"
    assert down in events[-1]["message"]


def test_quiet_prints_nothing_on_success_and_the_reason_on_failure(
    up_target: str, closed_port: int
) -> None:
    ok = run_waitfor("--quiet", *FAST, up_target)
    assert ok.returncode == 0 and ok.stderr == ""
    bad = run_waitfor("--quiet", "--timeout", "500ms", f"tcp://127.0.0.1:{closed_port}")
    assert bad.returncode == 124
    assert "timed out" in bad.stderr and "connection refused" in bad.stderr
    assert "INFO" not in bad.stderr


def test_credentials_never_printed() -> None:
    port = free_port()
    result = run_waitfor(
        "--timeout",
        "500ms",
        f"postgres://app:TopSecret@127.0.0.1:{port}/db",
        f"redis://:AlsoSecret@127.0.0.1:{port}",
    )
    assert result.returncode == 124
    assert "TopSecret" not in result.stderr and "AlsoSecret" not in result.stderr
    assert "postgres://app:***@" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["htp://db:80"], "unknown scheme 'htp' (did you mean http://?"),
        (["tcp://db"], "missing port"),
        (["ftp://x:21"], "unknown scheme 'ftp'"),
        (["tcp://x:1", "--timeout"], "expected one argument"),
        (["--consecutive", "0", "tcp://x:1"], "--consecutive: must be at least 1"),
        ([], "no targets"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    result = run_waitfor(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_help() -> None:
    assert run_waitfor("--version").stdout.startswith("waitfor ")
    help_text = run_waitfor("--help").stdout
    assert "WAITFOR_TIMEOUT" in help_text
    from agents.waitfor.targets import SCHEMES

    for scheme in SCHEMES:  # every kind of target, with its syntax
        assert re.search(rf"(^|[ (]){scheme}:", help_text, re.M), scheme
    assert "host:port" in help_text and "examples:" in help_text
    for code in ("124", "126/127", "130/143", "\n  0 ", "\n  2 ", "\n  1 "):
        assert code in help_text, code


def test_console_script_is_installed() -> None:
    import shutil
    import sys

    script = Path(sys.executable).parent / "waitfor"
    assert script.exists() or shutil.which("waitfor")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "waitfor" in result.stdout


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_during_the_first_look_exits_cleanly(signame: str, code: int) -> None:
    """Before any event loop exists a signal still means a prompt, clean exit."""
    script = f"""
import os, signal, sys, time
from agents.waitfor import cli
from agents.waitfor.checks import files

def slow_look(self, limit):
    os.kill(os.getpid(), signal.{signame})
    time.sleep(5)
    return "never"

files.FileCheck.probe_now = slow_look
sys.argv = ["waitfor", "file:///"]
cli.entry()
"""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == code
    assert f"stopped by {signame}" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 4


def test_exec_reason_is_the_last_output_line() -> None:
    target = "exec:sh -c 'echo first; sleep 0.05; echo the-real-reason; exit 3'"
    result = run_waitfor("--timeout", "500ms", target)
    assert result.returncode == 124
    assert "exit status 3: the-real-reason" in result.stderr


# --- a nameserver that never answers (CoreDNS not up yet) ---------------------------------


@pytest.fixture
def silent_nameserver(tmp_path: Path) -> Iterator[tuple[list[str], socket.socket]]:
    """A command prefix running its command with /etc/resolv.conf pointing at a UDP
    nameserver that swallows every query (in a private mount namespace), and that
    nameserver's socket (to see the queries arrive)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to give a process its own /etc/resolv.conf")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.53", 53))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot bind a nameserver on 127.0.0.53:53: {exc}")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\noptions timeout:5 attempts:4\n")
    prefix = ["unshare", "-m", "sh", "-c", f'mount --bind {resolv} /etc/resolv.conf && exec "$@"',
              "sh"]  # fmt: skip
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        sock.close()
        pytest.skip(f"cannot bind-mount resolv.conf in a mount namespace: {probe.stderr!r}")
    yield prefix, sock
    sock.close()


def test_deadline_holds_while_the_nameserver_is_silent(
    silent_nameserver: tuple[list[str], socket.socket],
) -> None:
    prefix, _ = silent_nameserver
    started = time.monotonic()
    result = subprocess.run(
        [*prefix, *WAITFOR, "--timeout", "2s", "tcp://db.example:5432"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 124, result.stderr
    assert time.monotonic() - started < 4.5  # not the resolver's 20 s of retries
    assert "db.example" in result.stderr


def test_sigterm_is_prompt_while_the_nameserver_is_silent(
    silent_nameserver: tuple[list[str], socket.socket],
) -> None:
    prefix, nameserver = silent_nameserver
    proc = subprocess.Popen(
        [*prefix, *WAITFOR, "--timeout", "60s", "tcp://db.example:5432"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with proc:
        # The signal comes while waitfor's lookup waits on the silent nameserver: once its
        # query has arrived (a fixed sleep raced with a slow start).
        nameserver.settimeout(30)
        try:
            nameserver.recv(512)
        except TimeoutError:
            proc.kill()
            pytest.fail(f"no query reached the nameserver: {proc.communicate()}")
        sent = time.monotonic()
        proc.send_signal(15)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert time.monotonic() - sent < 2.0


def self_connected() -> socket.socket:
    """A real TCP connection of a socket to itself (Linux allows the simultaneous open
    that a connect from port P to port P makes): what a connect to an unused ephemeral
    port can, rarely, turn into."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.connect(sock.getsockname())
    assert sock.getsockname() == sock.getpeername()
    return sock


def test_a_connection_to_itself_is_not_a_listening_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from agents.waitfor.checks import NotReady
    from agents.waitfor.checks.tcp import TcpCheck
    from agents.waitfor.targets import parse_target

    sock = self_connected()
    port = sock.getsockname()[1]
    check = TcpCheck(parse_target(f"tcp://127.0.0.1:{port}"))
    real_open = asyncio.open_connection

    async def open_itself(*args: object, **kwargs: object) -> object:
        return await real_open(sock=sock)

    monkeypatch.setattr(asyncio, "open_connection", open_itself)
    with pytest.raises(NotReady, match=rf"^nothing listens on 127\.0\.0\.1:{port} \(the"):
        asyncio.run(check.probe())
    # the first, blocking look (before any event loop) tells the same
    sock = self_connected()
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: sock)
    with pytest.raises(NotReady, match=r"^nothing listens on 127\.0\.0\.1:\d+ \(the"):
        TcpCheck(parse_target(f"tcp://127.0.0.1:{sock.getsockname()[1]}")).probe_now(1.0)
