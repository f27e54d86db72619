"""compose.yaml with the stand-in override, as a user runs it: the stack comes up in
order (Elasticsearch, wait-for-es, logship healthy, then the app), and stopping it stops
the app before logship, so every line the app wrote — shutdown lines included — ships."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from agents import __version__
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
IMAGES = [f"pod-agents/{name}:{__version__}" for name in ("waitfor", "logship", "es-standin")]


def compose(project: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-p", project, "-f", "compose.yaml", "-f", "compose.standin.yaml",
         *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def indexed_messages() -> Counter[str]:
    """The messages the stand-in of the stack holds."""
    url = "http://127.0.0.1:9200/_standin/docs?index=logship-*"
    with urllib.request.urlopen(url, timeout=10) as response:
        return Counter(d["message"] for d in json.loads(response.read())["docs"])


def traffic_shipped() -> bool:
    """The app's traffic reached the stand-in: the app runs, and logship ships."""
    try:
        return any(m.startswith("GET /items/") for m in indexed_messages())
    except OSError:  # the stand-in does not answer yet
        return False


@pytest.mark.timeout(300)
def test_compose_stack_ships_startup_and_shutdown_lines() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose on this machine")
    for image in IMAGES:
        missing = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                 check=False).returncode  # fmt: skip
        if missing:
            pytest.skip(f"image {image} not built: run `make images`")
    project = f"podagents{uuid.uuid4().hex[:8]}"
    try:
        up = compose(project, "up", "-d")
        assert up.returncode == 0, up.stderr
        # Stopped once the app runs (as PID 1 it ignores SIGTERM until its handler is set)
        # and its traffic ships: not after a fixed sleep that a slow start outlasts.
        wait_for(traffic_shipped, timeout=120, what="the app's traffic to ship")
        stopped = compose(project, "stop", "app", "logship")  # in dependency order
        assert stopped.returncode == 0, stopped.stderr
        written = subprocess.run(
            ["docker", "run", "--rm", "-v", f"{project}_app-logs:/v", "--entrypoint", "cat",
             IMAGES[0], "/v/app.log"], capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        indexed = indexed_messages()
        logs = compose(project, "logs", "logship").stdout
    finally:
        compose(project, "down", "-v")
    assert written[0].startswith("startup") and written[-1] == "shutdown: bye"
    assert sum(indexed.values()) == len(written)
    assert set(indexed) == set(written) and max(indexed.values()) == 1
    assert "drained" in logs and "unacknowledged=0" in logs
