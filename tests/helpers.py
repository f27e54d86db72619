"""Helpers shared by the test suites: run waitfor as a real process, free ports, logs,
logship's registry as a test reads it, and the Docker images a test needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.logship.registry import FILENAME

WAITFOR = [sys.executable, "-m", "agents.waitfor"]


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def waitfor_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any WAITFOR_* leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAITFOR_")}
    env.update(extra or {})
    return env


def run_waitfor(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run waitfor to completion as a real process; stdout and stderr captured as text."""
    return subprocess.run(
        [*WAITFOR, *args],
        env=waitfor_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_waitfor(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WAITFOR, *args],
        env=waitfor_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stderr_at_exit(proc: subprocess.Popen[str], limit: float = 60, what: str = "waitfor") -> str:
    """`proc`'s stderr once it exits; the test fails (and `proc` is killed) after `limit` s."""
    try:
        _, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"{what} still running after {limit} s:\n{stderr}")
    return stderr


def read_stderr_until(proc: subprocess.Popen[str], text: str, timeout: float = 30.0) -> str:
    """Read `proc`'s stderr line by line until a line holds `text`; what was read, that line
    included (`proc.communicate()` gives the rest). For "once waitfor has seen X, change
    the world": a fixed sleep races with a slow start. Fails if `proc` ends first, or is
    killed when `text` has not come within `timeout`."""
    assert proc.stderr is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    read: list[str] = []
    try:
        while line := proc.stderr.readline():
            read.append(line)
            if text in line:
                return "".join(read)
    finally:
        timer.cancel()
    proc.wait(10)
    raise AssertionError(
        f"no {text!r} on stderr within {timeout}s (exit {proc.returncode}):\n{''.join(read)}"
    )


def run_python(code: str, timeout: float = 60) -> str:
    """`code` run by this interpreter in a fresh process (nothing imported by the tests
    counts there); its stdout. A failure fails the test."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, check=True)  # fmt: skip
    return done.stdout


def json_events(stderr: str) -> list[dict[str, Any]]:
    """Parse `--json` output; every line must be a JSON object."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def usage_error(*argv: str) -> str:
    """waitfor refuses `argv` before waiting (exit 2): → what it said."""
    result = run_waitfor(*argv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def ready_after(argv: Sequence[str], change: Callable[[], object], *, missing: str,
                ) -> tuple[dict[str, Any], str]:  # fmt: skip
    """waitfor (`--json` among `argv`) says "not ready" with `missing` in its reason, then
    `change()` happens, then waitfor exits 0: → its ready event and all it said."""
    proc = start_waitfor(*argv)
    seen = ""
    try:
        deadline = time.monotonic() + 20
        while missing not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            seen += line
        assert missing in seen, seen
        change()
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    said = seen + rest
    assert proc.returncode == 0, said
    (ready,) = [e for e in json_events(said) if e["message"] == "ready"]
    return ready, said


def write_lines(path: Path, lines: list[str]) -> None:
    """Append lines the way an app logs them: each with its newline."""
    with path.open("a") as fh:
        fh.writelines(line + "\n" for line in lines)


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Poll `condition` until it is true, or fail after `timeout` saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def exactly_once(got: Counter[str], expected: list[str]) -> None:
    """Every expected line indexed once: none missing, none doubled, nothing else."""
    missing = [m for m in expected if got[m] == 0]
    doubled = [m for m, n in got.items() if n > 1]
    wanted = set(expected)
    extra = [m for m in got if m not in wanted]
    assert not missing, f"{len(missing)} lines missing, e.g. {missing[:3]}"
    assert not doubled, f"{len(doubled)} lines doubled, e.g. {doubled[:3]}"
    assert not extra, f"{len(extra)} unexpected lines, e.g. {extra[:3]}"
    assert sum(got.values()) == len(expected)


def registry_entries(workdir: Path) -> list[dict[str, Any]]:
    """The entries of logship's registry in `workdir/data`; none while it is unreadable."""
    try:
        return json.loads((workdir / "data" / FILENAME).read_text())["entries"]
    except (OSError, ValueError):
        return []


def registry(workdir: Path) -> dict[str, dict[str, Any]]:
    """logship's registry in `workdir/data`, its entries by path; it must be readable."""
    document = json.loads((workdir / "data" / FILENAME).read_text())
    return {e["path"]: e for e in document["entries"]}


def require(image: str) -> None:
    """Skip, saying why, unless a Docker engine answers and has `image`."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        pytest.skip("no Docker engine answers")
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                      check=False).returncode:  # fmt: skip
        pytest.skip(f"image {image} not built: run `make images` (offline here)")


def kustomize(directory: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a `k8s/` directory, as a user applies it (Kustomize 5 is
    what refused the hostPath variant once): skipped, saying why, without it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with Kustomize 5) is not installed here")
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True,
                             text=True, check=False).stdout  # fmt: skip
    found = re.search(r"Kustomize Version: v(\d+)", version)
    if found is None or int(found.group(1)) < 5:
        pytest.skip(f"kubectl here has no Kustomize 5: {version.strip()!r}")
    where = Path(__file__).resolve().parents[1] / "k8s" / directory
    rendered = subprocess.run([kubectl, "kustomize", str(where)], capture_output=True,
                              text=True, check=False)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def kubelet_secret(mount: Path, data: dict[str, str]) -> None:
    """Write (or update) a Secret volume as the kubelet's AtomicWriter does: the keys in
    a new `..<timestamp>` directory, a `..data_tmp` symlink to it renamed over `..data`,
    each key a symlink `KEY -> ..data/KEY`, and the previous directory removed."""
    mount.mkdir(parents=True, exist_ok=True)
    old = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:9]}"
    (mount / stamp).mkdir()
    for key, value in data.items():
        (mount / stamp / key).write_text(value)
    (mount / "..data_tmp").symlink_to(stamp)
    os.rename(mount / "..data_tmp", mount / "..data")
    for key in data:
        if not (mount / key).is_symlink():
            (mount / key).symlink_to(f"..data/{key}")
    if old is not None:
        shutil.rmtree(mount / old)
