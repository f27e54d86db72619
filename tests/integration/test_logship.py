"""logship as a real process, shipping real files to the stand-in running as a real
process: startup and shutdown lines, both sidecar patterns, kill -9, rotation,
truncation, an outage, dead letters — every written line in the index exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.helpers import exactly_once, wait_for, write_lines

PY = sys.executable


APP = r"""
import signal, sys, time
path, name = sys.argv[1], sys.argv[2]
out = open(path, "a", buffering=1)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
i = 0
while not stop:
    out.write(f"{name} traffic {i}\n"); i += 1; time.sleep(0.01)
for j in range(50):  # shutdown lines, written after SIGTERM over half a second
    out.write(f"{name} shutdown {j}\n"); time.sleep(0.01)
print(i, flush=True)
"""


def test_startup_and_shutdown_lines_colocated_sidecar(
    es: StandInProcess, tmp: Path, apps: list[subprocess.Popen[str]]
) -> None:
    log = tmp / "logs" / "app.log"
    startup = [f"startup {i}" for i in range(100)]
    write_lines(log, startup)  # written before logship starts
    shipper = LogshipProcess(es, tmp).start()
    app = subprocess.Popen([PY, "-c", APP, str(log), "app"], stdout=subprocess.PIPE, text=True)
    apps.append(app)
    # The app runs (its SIGTERM handler set, a slow start or not) and logship ships its
    # traffic as it comes.
    wait_for(lambda: "app traffic 0" in es.messages(), what="the app's traffic to ship")
    # Co-located: both get SIGTERM at about the same time; the app still writes after it.
    app.send_signal(signal.SIGTERM)
    code = shipper.stop()
    events = shipper.events()
    traffic = int(app.communicate(timeout=10)[0])
    assert code == 0
    expected = startup + [f"app traffic {i}" for i in range(traffic)]
    expected += [f"app shutdown {j}" for j in range(50)]
    exactly_once(es.messages(), expected)
    drained = [e for e in events if e["message"] == "drained"]
    assert drained and drained[0]["unacknowledged"] == 0


def test_a_line_20ms_after_sigterm_on_a_file_idle_for_seconds_ships(
    es: StandInProcess, tmp: Path
) -> None:
    """Issue 12's reproduction: the file was quiet before the signal, so a quiet timer
    measured from its last growth ended the drain at once and lost the line."""
    log = tmp / "logs" / "app.log"
    write_lines(log, ["before"])
    shipper = LogshipProcess(es, tmp).start()
    wait_for(lambda: "before" in es.messages(), what="the first line to ship")
    time.sleep(2.0)  # the app idles: part of the scenario
    shipper.signal(signal.SIGTERM)
    time.sleep(0.02)
    write_lines(log, ["stopping (after SIGTERM)"])
    assert shipper.wait() == 0
    exactly_once(es.messages(), ["before", "stopping (after SIGTERM)"])


@pytest.fixture
def apps() -> Iterator[list[subprocess.Popen[str]]]:
    """App processes a test starts: killed at the end if a failed assertion left them."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


LATE_APP = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def stop(*_):
    if sys.argv[3:] != ["silent"]:
        log.write("shutting down\\n")
    time.sleep(float(sys.argv[2]))  # in-flight requests, as a real server waits for them
    log.write("stopped\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
log.write("started\\n")
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_the_drain_waits_for_an_app_it_can_see_logging_3s_after_sigterm(
    es: StandInProcess, tmp: Path, apps: list[subprocess.Popen[str]]
) -> None:
    """logship sees the app's process (one process namespace, as here or with
    shareProcessNamespace) holding the file: it reads on until the app is gone, well
    past --drain-quiet (0.5 s here)."""
    log = tmp / "logs" / "app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    app = subprocess.Popen([PY, "-c", LATE_APP, str(log), "3"], stdout=subprocess.PIPE,
                           text=True)  # fmt: skip
    apps.append(app)
    assert app.stdout is not None and app.stdout.readline() == "ready\n"
    shipper = LogshipProcess(es, tmp).start()
    wait_for(lambda: "started" in es.messages(), what="the app's first line to ship")
    app.send_signal(signal.SIGTERM)  # co-located: both at once
    code = shipper.stop()
    app.wait(10)
    app.stdout.close()
    assert code == 0
    exactly_once(es.messages(), ["started", "shutting down", "stopped"])
    said = [e for e in shipper.events() if e["message"].startswith("drain: waiting")]
    assert said, shipper.events()


def test_an_app_idle_past_close_inactive_still_has_its_late_shutdown_line_shipped(
    es: StandInProcess, tmp: Path, apps: list[subprocess.Popen[str]]
) -> None:
    """The file was closed as inactive (the app idled for longer than --close-inactive),
    yet the app still holds it: the drain waits for that writer too."""
    log = tmp / "logs" / "app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    app = subprocess.Popen([PY, "-c", LATE_APP, str(log), "2", "silent"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    apps.append(app)
    assert app.stdout is not None and app.stdout.readline() == "ready\n"
    shipper = LogshipProcess(es, tmp, "--close-inactive", "1s").start()
    wait_for(lambda: shipper.logged("file closed", reason="inactive"),
             what="the idle file to be closed")  # fmt: skip
    app.send_signal(signal.SIGTERM)  # co-located: both at once
    code = shipper.stop()
    app.wait(10)
    app.stdout.close()
    assert code == 0
    exactly_once(es.messages(), ["started", "stopped"])


PIECES_APP = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
i = 0
while not stop:
    for piece in (f"line {i:04d} ", "written in ", "three pieces\\n"):
        log.write(piece)
        log.flush()
        time.sleep(0.03)
    i += 1
log.write("stopped\\n")
print(i, flush=True)
"""


def test_a_sidecar_restarted_alone_twice_beside_a_writing_app_loses_doubles_splits_nothing(
    es: StandInProcess, tmp: Path, apps: list[subprocess.Popen[str]]
) -> None:
    """The app goes on writing (lines in pieces) while logship alone is stopped and
    started again: each stop waits for the writer until its reserve, ships what is
    complete, keeps the partial line for the next start, and ends within --drain-timeout."""
    log = tmp / "logs" / "app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    app = subprocess.Popen([PY, "-c", PIECES_APP, str(log)], stdout=subprocess.PIPE,
                           text=True)  # fmt: skip
    apps.append(app)
    assert app.stdout is not None and app.stdout.readline() == "ready\n"
    for _ in range(2):
        shipper = LogshipProcess(es, tmp, "--drain-timeout", "3s").start()
        time.sleep(1.0)  # the app writes meanwhile: part of the scenario
        began = time.monotonic()
        assert shipper.stop() == 0
        assert time.monotonic() - began < 3.0 + 1.5  # the timeout, and the exit itself
        assert shipper.logged("drain: the processes writing the files go on"), shipper.stderr()
        assert not shipper.logged("drain deadline passed"), shipper.stderr()
    shipper = LogshipProcess(es, tmp).start()
    time.sleep(0.5)
    app.send_signal(signal.SIGTERM)
    assert shipper.stop() == 0
    count = int(app.stdout.readline())
    app.wait(10)
    app.stdout.close()
    written = log.read_text().splitlines()
    assert len(written) == count + 1
    exactly_once(es.messages(), written)


def test_native_sidecar_gets_sigterm_after_the_app_exited(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    shipper = LogshipProcess(es, tmp).start()
    write_lines(log, [f"line {i}" for i in range(500)])
    write_lines(log, ["last words"])
    code = shipper.stop()  # the app is gone: read to the end, ship, exit
    assert code == 0
    exactly_once(es.messages(), [f"line {i}" for i in range(500)] + ["last words"])


def test_partial_last_line_ships_at_drain(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    log.write_text("complete\ncrashed mid-li")
    shipper = LogshipProcess(es, tmp).start()
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), ["complete", "crashed mid-li"])


def test_kill_9_and_restart_ship_every_line_once(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    expected = [f"line {i:05d} " + "x" * 80 for i in range(20000)]
    write_lines(log, expected)
    for delay in (0.4, 0.7, 1.0):
        shipper = LogshipProcess(es, tmp, "--batch-docs", "500").start()
        time.sleep(delay)
        shipper.kill()  # no drain, no registry save at exit
    shipper = LogshipProcess(es, tmp).start()
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), expected)


def test_rename_and_create_rotation_under_load(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    shipper = LogshipProcess(es, tmp, glob="app.log*").start()
    expected = []
    for part in range(5):
        lines = [f"part {part} line {i}" for i in range(1000)]
        write_lines(log, lines)
        expected += lines
        log.rename(tmp / "logs" / f"app.log.{part}")  # the renamed file is read to its end
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), expected)


def test_truncation_restarts_at_zero(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    shipper = LogshipProcess(es, tmp).start()
    before = [f"before {i}" for i in range(200)]
    write_lines(log, before)
    wait_for(lambda: sum(es.messages().values()) == 200)
    os.truncate(log, 0)  # copytruncate's second half
    time.sleep(0.6)
    after = [f"after {i}" for i in range(300)]
    write_lines(log, after)
    code = shipper.stop()
    events = shipper.events()
    assert code == 0
    exactly_once(es.messages(), before + after)
    assert any(e["message"].startswith("file truncated") for e in events)
    flagged = [d for d in es.get("/_standin/docs?index=logship-*")["docs"]
               if d["message"].startswith("after")]  # fmt: skip
    assert all("truncated" in d["log"].get("flags", []) for d in flagged)


def test_elasticsearch_down_then_back(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    shipper = LogshipProcess(es, tmp).start()
    es.control("down", seconds=2.0)
    expected = [f"during outage {i}" for i in range(300)]
    write_lines(log, expected)
    time.sleep(3.0)
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), expected)


def test_mapping_errors_go_to_the_dead_letter(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    lines = ['{"user": "ann", "message": "one"}', '{"user": {"name": "bob"}, "message": "two"}',
             '{"user": "cid", "message": "three"}']  # fmt: skip
    write_lines(log, lines)
    shipper = LogshipProcess(es, tmp, "--json-lines", "root").start()
    code = shipper.stop()
    events = shipper.events()
    assert code == 0
    exactly_once(es.messages(), ["one", "three"])
    dead = [json.loads(x) for x in (tmp / "data" / "dead-letter.ndjson").read_text().splitlines()]
    assert len(dead) == 1 and '"bob"' in dead[0]["document"] and dead[0]["status"] == 400
    assert any(e["message"].startswith("event refused") for e in events)


def test_java_stack_traces_are_one_event(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    write_lines(log, ["ERROR failed", "java.lang.RuntimeException: x", "\tat a.B.c(B.java:1)",
                      "\tat a.B.d(B.java:2)", "INFO next"])  # fmt: skip
    shipper = LogshipProcess(es, tmp, "--multiline-preset", "java").start()
    code = shipper.stop()
    assert code == 0
    got = es.messages()
    assert len(got) == 3, got
    assert got["java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)"] == 1
    assert got["ERROR failed"] == 1 and got["INFO next"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing required options: --path GLOB"),
        (["--path", "/x/*.log", "--es", "nope", "--data-dir", "/tmp/x"], "is not an http(s)://"),
        (["--path", "/x", "--es", "http://e", "--data-dir", "/proc/forbidden"], "--data-dir"),
    ],
)
def test_bad_configuration_exits_2_naming_the_field(args: list[str], message: str) -> None:
    result = subprocess.run([PY, "-m", "agents.logship", *args], capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stderr.splitlines()[-1])["log.level"] == "error"


@pytest.mark.parametrize("same_first_line", [False, True])
def test_copytruncate_then_restart_ships_every_line_once(
    es: StandInProcess, tmp: Path, same_first_line: bool
) -> None:
    log = tmp / "logs" / "app.log"
    header = ["=== app v1 starting ==="]
    before = [f"before {i}" for i in range(200)]
    write_lines(log, header + before)
    shipper = LogshipProcess(es, tmp, glob="app.log").start()
    wait_for(lambda: sum(es.messages().values()) == 201)
    # copytruncate: the copy is outside the glob, the live file starts again
    (tmp / "logs" / "app.log.1").write_bytes(log.read_bytes())
    os.truncate(log, 0)
    after = (header if same_first_line else []) + [f"after {i}" for i in range(100)]
    write_lines(log, after)
    wait_for(lambda: sum(es.messages().values()) == 201 + len(after))
    code = shipper.stop()
    assert code == 0
    later = [f"later {i}" for i in range(50)]
    write_lines(log, later)
    shipper = LogshipProcess(es, tmp, glob="app.log").start()  # a restart must resume, not redo
    code = shipper.stop()
    assert code == 0
    got = es.messages()
    if same_first_line:  # the header line was written twice, once per content
        assert got.pop(header[0]) == 2
        exactly_once(got, before + after[1:] + later)
    else:
        exactly_once(got, header + before + after + later)


def test_a_file_holding_only_a_partial_first_line_ships_at_drain(
    es: StandInProcess, tmp: Path
) -> None:
    (tmp / "logs" / "crash.log").write_text("panic: no newline before the crash")
    shipper = LogshipProcess(es, tmp).start()
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), ["panic: no newline before the crash"])


def test_rotated_files_are_let_go_once_read(es: StandInProcess, tmp: Path) -> None:
    log = tmp / "logs" / "app.log"
    shipper = LogshipProcess(es, tmp, glob="app.log").start()
    expected = []
    for part in range(10):
        lines = [f"part {part} line {i}" for i in range(50)]
        write_lines(log, lines)
        expected += lines
        # Renamed once logship holds it: a file renamed out of the glob before it was
        # opened is not logship's to read (and a loaded machine may take over 0.1 s).
        wait_for(lambda n=part + 1: len(shipper.logged("file opened")) == n,
                 what=f"part {part} to be opened")  # fmt: skip
        log.rename(tmp / "logs" / f"app.log.{part}")  # kept, outside the glob

    wait_for(lambda: sum(es.messages().values()) == 500)
    wait_for(lambda: shipper.metric("files_open") == 0)
    code = shipper.stop()
    assert code == 0
    exactly_once(es.messages(), expected)


def test_a_dangling_link_is_reported_once(es: StandInProcess, tmp: Path) -> None:
    (tmp / "logs" / "dangling.log").symlink_to(tmp / "nowhere")
    write_lines(tmp / "logs" / "app.log", ["hello"])
    shipper = LogshipProcess(es, tmp, "--scan-interval", "100ms").start()
    # Several rescans, each seen to happen (a fixed sleep may see none on a loaded
    # machine): only a scan opens a new file.
    for i in range(3):
        later = tmp / "logs" / f"later-{i}.log"
        write_lines(later, ["later"])
        wait_for(lambda p=str(later): shipper.logged("file opened", path=p),
                 what=f"a rescan to find {later.name}")  # fmt: skip
    code = shipper.stop()
    events = shipper.events()
    assert code == 0
    assert sum(e["message"] == "skipping a path" for e in events) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--es", "https://127.0.0.1:1", "--ca-file", "/nonexistent.pem"],
            "--ca-file: cannot read",
        ),
        (["--es", "http://127.0.0.1:1", "--ca-file", "/etc/hostname"], "--ca-file: TLS files need"),
        (["--es", "https://127.0.0.1:1", "--ca-file", "/etc/hostname"], "--ca-file: unusable"),
        (["--es", "http://127.0.0.1:1", "--index", "BAD"], "--index: 'BAD': index names must"),
        (
            ["--es", "http://127.0.0.1:1", "--scan-interval", "0"],
            "--scan-interval: must be greater",
        ),
    ],
)
def test_bad_tls_and_value_options_exit_2(tmp: Path, extra: list[str], message: str) -> None:
    args = ["--path", str(tmp / "logs" / "*.log"), "--data-dir", str(tmp / "data"), *extra]
    result = subprocess.run([PY, "-m", "agents.logship", *args], capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "internal error" not in result.stderr


def test_a_busy_status_port_exits_2(es: StandInProcess, tmp: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [PY, "-m", "agents.logship", "--path", str(tmp / "logs" / "*.log"), "--es", es.url,
             "--data-dir", str(tmp / "data"), "--http-host", "127.0.0.1", "--http-port",
             str(port)], capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--http-port: cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_rewritten_with_the_same_first_line_while_away(es: StandInProcess, tmp: Path) -> None:
    """Truncated and regrown past the old offset, same header, while logship was down:
    the new content is read from its start, not from the middle."""
    log = tmp / "logs" / "app.log"
    header = "=== app v1 starting ==="
    first = [f"first run {i}" for i in range(50)]
    write_lines(log, [header, *first])
    shipper = LogshipProcess(es, tmp).start()
    code = shipper.stop()
    assert code == 0
    second = [f"second run, a longer line this time {i}" for i in range(100)]
    log.write_text("".join(f"{line}\n" for line in [header, *second]))  # truncate + rewrite
    shipper = LogshipProcess(es, tmp).start()
    code = shipper.stop()
    events = shipper.events()
    assert code == 0
    got = es.messages()
    assert got.pop(header) == 2  # once per content
    exactly_once(got, first + second)
    assert any(e["message"].startswith("file rewritten while logship was away") for e in events)
