"""The images as users run them: non-root, read-only root filesystem, no capabilities,
the program as PID 1 getting SIGTERM itself. Skips, saying why, where the images are not
built (`make images`) or no Docker engine runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from agents import __version__
from agents.testing.processes import StandInProcess
from tests.helpers import exactly_once, require, wait_for, write_lines

WAITFOR = f"pod-agents/waitfor:{__version__}"
LOGSHIP = f"pod-agents/logship:{__version__}"
RESTRICTED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--network", "host"]  # fmt: skip


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def test_waitfor_image_ready_timeout_and_user() -> None:
    require(WAITFOR)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        ready = docker("run", "--rm", *RESTRICTED, WAITFOR, f"tcp://127.0.0.1:{port}")
    assert ready.returncode == 0, ready.stderr
    late = docker("run", "--rm", *RESTRICTED, WAITFOR, "--timeout", "1s", "tcp://127.0.0.1:1")
    assert late.returncode == 124
    assert "connection refused" in late.stderr
    user = docker("run", "--rm", "--entrypoint", "id", WAITFOR, "-u")
    assert user.stdout.strip() == "65532"


def test_waitfor_is_pid_1_and_honours_sigterm() -> None:
    require(WAITFOR)
    started = docker("run", "-d", *RESTRICTED, WAITFOR, "--timeout", "5m", "tcp://127.0.0.1:1")
    container = started.stdout.strip()
    try:
        # As PID 1 it ignores SIGTERM until its handler is set: signal it once it has
        # looked at its target (a fixed sleep raced with a slow start).
        wait_for(lambda: "not ready" in docker("logs", container).stderr, timeout=60,
                 what="waitfor to be waiting")  # fmt: skip
        docker("kill", "--signal", "TERM", container)
        waited = docker("wait", container, timeout=15)
        assert waited.stdout.strip() == "143"
    finally:
        docker("rm", "-f", container)


def test_logship_image_ships_and_drains_as_pid_1(tmp_path: Path) -> None:
    require(LOGSHIP)
    logs = tmp_path / "logs"
    logs.mkdir()
    os.chmod(tmp_path, 0o777)  # noqa: S103 - the container runs as uid 65532
    os.chmod(logs, 0o777)  # noqa: S103 - its data dir is on this volume
    lines = [f"from the app {i}" for i in range(300)]
    write_lines(logs / "app.log", lines)
    with StandInProcess(seed=1) as es:
        started = docker(
            "run", "-d", *RESTRICTED, "-v", f"{logs}:/var/log/app", LOGSHIP,
            "--path", "/var/log/app/*.log", "--es", es.url,
            "--data-dir", "/var/log/app/.logship", "--drain-quiet", "500ms",
        )  # fmt: skip
        container = started.stdout.strip()
        assert started.returncode == 0, started.stderr
        try:
            # Written once logship has started (its SIGTERM handler set: it is PID 1), not
            # after a fixed sleep that a slow start outlasts.
            wait_for(lambda: '"started"' in docker("logs", container).stderr, timeout=60,
                     what="logship to start")  # fmt: skip
            write_lines(logs / "app.log", ["written after start"])
            stopped = docker("stop", "--time", "30", container, timeout=60)  # SIGTERM, PID 1
            assert stopped.returncode == 0
            assert docker("wait", container).stdout.strip() == "0"
            events = [json.loads(x) for x in docker("logs", container).stderr.splitlines()
                      if x.startswith("{")]  # fmt: skip
        finally:
            docker("rm", "-f", container)
        exactly_once(es.messages(), [*lines, "written after start"])
        assert any(e["message"] == "drained" for e in events)
        assert (logs / ".logship" / "registry.json").exists()


def test_logship_check_runs_from_the_image_as_a_one_off(tmp_path: Path) -> None:
    """`docker run IMAGE check ...`, as an init container or a one-off would: ready (0)
    against the stand-in, 3 against a port nothing listens on; nothing written."""
    require(LOGSHIP)
    logs = tmp_path / "logs"
    logs.mkdir()
    os.chmod(tmp_path, 0o777)  # noqa: S103 - the container runs as uid 65532
    os.chmod(logs, 0o777)  # noqa: S103 - its data dir is on this volume
    write_lines(logs / "app.log", ["a line"])
    with StandInProcess() as es:
        args = ["--path", "/var/log/app/*.log", "--data-dir", "/var/log/app/.logship", "--json"]
        ok = docker("run", "--rm", *RESTRICTED, "-v", f"{logs}:/var/log/app", LOGSHIP,
                    "check", "--es", es.url, *args)  # fmt: skip
        assert ok.returncode == 0, ok.stdout + ok.stderr
        report = json.loads(ok.stdout)
        assert report["ok"] and any(c["check"] == "connect" and "Elasticsearch 8" in c["detail"]
                                    for c in report["checks"])  # fmt: skip
        down = docker("run", "--rm", *RESTRICTED, "-v", f"{logs}:/var/log/app", LOGSHIP,
                      "check", "--es", "http://127.0.0.1:9", *args)  # fmt: skip
        assert down.returncode == 3, down.stdout + down.stderr
        assert es.count() == 0
