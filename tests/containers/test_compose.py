"""compose.yaml with the stand-in override, as a user runs it: the stack comes up in
order (Elasticsearch, wait-for-es, logship healthy, then the app), and stopping it stops
the app before logship, so every line the app wrote — shutdown lines included — ships.
Stopped both at once (as a host shutdown stops every container), logship sees the app in
the shared process namespace and waits for its late shutdown lines (3 s after SIGTERM)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from agents import __version__
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
IMAGES = [f"pod-agents/{name}:{__version__}" for name in ("waitfor", "logship", "es-standin")]
# The stack's Elasticsearch on a free host port (ES_HOST_PORT), not on 9200, which this
# machine may use: what a user with 9200 taken does.
ES_PORT = free_port()


def compose(project: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-p", project, "-f", "compose.yaml", "-f", "compose.standin.yaml",
         *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "ES_HOST_PORT": str(ES_PORT)},
    )  # fmt: skip


def indexed_messages() -> Counter[str]:
    """The messages the stand-in of the stack holds."""
    url = f"http://127.0.0.1:{ES_PORT}/_standin/docs?index=logship-*"
    with urllib.request.urlopen(url, timeout=10) as response:
        return Counter(d["message"] for d in json.loads(response.read())["docs"])


def traffic_shipped() -> bool:
    """The app's traffic reached the stand-in: the app runs, and logship ships."""
    try:
        return any(m.startswith("GET /items/") for m in indexed_messages())
    except OSError:  # the stand-in does not answer yet
        return False


def require_stack() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose on this machine")
    for image in IMAGES:
        missing = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                 check=False).returncode  # fmt: skip
        if missing:
            pytest.skip(f"image {image} not built: run `make images`")


def stop_both_at_once(project: str) -> None:
    """SIGTERM to the app and logship in the same moment, then wait for both to exit."""
    ids = [compose(project, "ps", "-q", name).stdout.strip() for name in ("app", "logship")]
    assert all(ids), ids
    subprocess.run(["docker", "kill", "--signal", "TERM", *ids], check=True,
                   capture_output=True)  # fmt: skip
    waited = subprocess.run(["docker", "wait", *ids], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    assert waited.stdout.split() == ["0", "0"], waited.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stop", ["in-dependency-order", "both-at-once"])
def test_compose_stack_ships_startup_and_shutdown_lines(stop: str) -> None:
    require_stack()
    project = f"podagents{uuid.uuid4().hex[:8]}"
    try:
        up = compose(project, "up", "-d")
        assert up.returncode == 0, up.stderr
        # Stopped once the app runs (its SIGTERM handler set) and its traffic ships: not
        # after a fixed sleep that a slow start outlasts.
        wait_for(traffic_shipped, timeout=120, what="the app's traffic to ship")
        if stop == "both-at-once":
            stop_both_at_once(project)
        else:
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
    assert "shutdown: waiting for in-flight requests" in written
    assert sum(indexed.values()) == len(written)
    assert set(indexed) == set(written) and max(indexed.values()) == 1
    assert "drained" in logs and "unacknowledged=0" in logs
    if stop == "both-at-once":
        assert "drain: waiting for the processes writing the files" in logs, logs[-3000:]
