#!/usr/bin/env python3
"""Container start-up to first useful work, for the waitfor and logship images.

"First useful work" is what the program logs when it has done something for the user:
waitfor's first check result (`ready` against a listening port), logship's first
`file opened` (a log file on the mounted volume, about to be shipped). The time counted
is from the container's start, as the engine records it (`docker inspect`
.State.StartedAt: the moment the runtime started the entrypoint process), to that log
line's @timestamp (millisecond resolution; both clocks are this host's).

The peer, measured the same way in the same run and the same container settings, is the
bare interpreter in the same base image: `python3 -c 'print(time.time())'`, i.e. the
floor any Python program in this image pays before its first line of its own code. Also
printed: the whole `docker run` of waitfor against a listening port (what a pod's init
phase waits for) beside `docker run` of `true` in the base image (the engine's own cost).

Goal (from the images issue; printed as PASS/MISS, not asserted): start-up to first
useful work <= 0.3 s in the container. Medians of --runs (default 10), interleaved.

Usage: .venv/bin/python benchmarks/image_startup_bench.py [--runs N]   (`make bench-images`;
needs the images: `make images`)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agents import __version__

WAITFOR = f"pod-agents/waitfor:{__version__}"
LOGSHIP = f"pod-agents/logship:{__version__}"
BASE = os.environ.get("BASE", "pod-agents/base:bookworm")
RESTRICTED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--network", "host", "--user", "65532:65532"]  # fmt: skip


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def epoch(rfc3339: str) -> float:
    """Docker's nanosecond RFC 3339 time (or ours, in ms) → seconds since the epoch."""
    stamp = rfc3339.rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    base = datetime.fromisoformat(whole + "+00:00").timestamp()
    return base + (float("0." + fraction) if fraction else 0.0)


def started_at(container: str) -> float:
    return epoch(docker("inspect", "-f", "{{.State.StartedAt}}", container).stdout.strip())


def first_event(container: str, message: str, deadline: float = 30.0) -> float:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for line in docker("logs", container).stderr.splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("message") == message:
                    return epoch(event["@timestamp"])
        time.sleep(0.05)
    raise RuntimeError(f"{container}: no {message!r} within {deadline}s")


def waitfor_once(port: int) -> float:
    name = f"bench-waitfor-{os.getpid()}"
    docker("run", "-d", "--name", name, *RESTRICTED, WAITFOR, "--json",
           f"tcp://127.0.0.1:{port}")  # fmt: skip
    try:
        docker("wait", name)
        return first_event(name, "ready") - started_at(name)
    finally:
        docker("rm", "-f", name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def logship_once(logs: Path, es_port: int) -> float:
    name = f"bench-logship-{os.getpid()}"
    data = logs / ".logship"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    docker("run", "-d", "--name", name, *RESTRICTED, "-v", f"{logs}:/var/log/app", LOGSHIP,
           "--path", "/var/log/app/*.log", "--es", f"http://127.0.0.1:{es_port}",
           "--data-dir", "/var/log/app/.logship", "--http-port", str(free_port()))  # fmt: skip
    try:
        return first_event(name, "file opened") - started_at(name)
    finally:
        docker("rm", "-f", name)


def interpreter_once() -> float:
    name = f"bench-python-{os.getpid()}"
    docker("run", "-d", "--name", name, *RESTRICTED, "--entrypoint", "python3", LOGSHIP, "-c",
           "import time; print(time.time())")  # fmt: skip
    try:
        docker("wait", name)
        return float(docker("logs", name).stdout.strip()) - started_at(name)
    finally:
        docker("rm", "-f", name)


def run_wall(*argv: str) -> float:
    begin = time.perf_counter()
    done = docker("run", "--rm", *RESTRICTED, *argv)
    wall = time.perf_counter() - begin
    if done.returncode:
        raise RuntimeError(f"docker run {argv}: {done.returncode} {done.stderr}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    for image in (WAITFOR, LOGSHIP, BASE):
        if docker("image", "inspect", image).returncode:
            print(f"image {image} not found: run `make images` first", file=sys.stderr)
            return 2
    kinds = ("waitfor", "logship", "python", "run_w", "run_true")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp, socket.create_server(("127.0.0.1", 0)) as srv:
        srv.listen(64)
        port = srv.getsockname()[1]
        logs = Path(tmp) / "logs"
        logs.mkdir()
        os.chmod(logs, 0o777)  # noqa: S103 - the container's uid writes its state here
        (logs / "app.log").write_text("".join(f"line {i}\n" for i in range(1000)))
        # Nothing answers on this port: logship's first file opens without Elasticsearch.
        with socket.socket() as hole:
            hole.bind(("127.0.0.1", 0))
            es_port = hole.getsockname()[1]
        for _ in range(args.runs):
            samples["waitfor"].append(waitfor_once(port))
            samples["logship"].append(logship_once(logs, es_port))
            samples["python"].append(interpreter_once())
            samples["run_w"].append(run_wall(WAITFOR, f"tcp://127.0.0.1:{port}"))
            samples["run_true"].append(run_wall("--entrypoint", "true", BASE))
    med = {k: statistics.median(v) for k, v in samples.items()}
    goal = 0.3
    print(f"container start-up, medians of {args.runs} runs ({BASE}, Python in the image)")
    print(f"{'measure':<48} | {'ours':>7} | {'peer':>7} | {'goal':<8} | result")
    print("-" * 49 + "+" + "-" * 9 + "+" + "-" * 9 + "+" + "-" * 10 + "+-------")
    rows = [
        ("waitfor: start to first check result (s)", med["waitfor"], med["python"], goal),
        ("logship: start to first file opened (s)", med["logship"], med["python"], goal),
        ("docker run waitfor, target up / run true (s)", med["run_w"], med["run_true"], None),
    ]
    for label, ours, peer, target in rows:
        verdict = "" if target is None else ("PASS" if ours <= target else "MISS")
        goal_text = "" if target is None else f"<= {target} s"
        print(f"{label:<48} | {ours:7.3f} | {peer:7.3f} | {goal_text:<8} | {verdict}")
    print("peer: python3 printing time.time() in the same image (rows 1-2); "
          "`true` in the base image (row 3)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
