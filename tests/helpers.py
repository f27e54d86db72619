"""Helpers shared by the test suites: run waitfor as a real process, free ports, logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

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


def json_events(stderr: str) -> list[dict[str, Any]]:
    """Parse `--json` output; every line must be a JSON object."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]
