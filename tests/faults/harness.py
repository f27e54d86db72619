"""What the fault cases share: the two sizes of every case, an app that writes while the
faults happen, and the checks every case ends with."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.writer import line
from tests.helpers import wait_for

PY = sys.executable
WRITER = Path(__file__).with_name("writer.py")
BROKEN = ("internal error", "sender failed")  # logship's own bugs, said out loud


def sized(bounded: dict[str, Any], full: dict[str, Any], *, timeout: float = 900) -> Any:
    """One body, two sizes: `bounded` runs with `make test`, `full` (the issue's sizes,
    minutes) is marked slow and runs with `make test-slow`."""
    return pytest.mark.parametrize(
        "size",
        [
            pytest.param(SimpleNamespace(**bounded), id="bounded"),
            pytest.param(
                SimpleNamespace(**full),
                id="full",
                marks=[pytest.mark.slow, pytest.mark.timeout(timeout)],
            ),
        ],
    )


RUNNING: list[App] = []  # killed after each case (conftest), should it fail midway


class App:
    """tests/faults/writer.py as a real process appending to `path`."""

    def __init__(self, path: Path, prefix: str = "line", **spec: Any) -> None:
        self.prefix, self.width = prefix, int(spec.get("width", 0))
        spec = {"path": str(path), "prefix": prefix, **spec}
        self.proc = subprocess.Popen(
            [PY, str(WRITER), json.dumps(spec)], stdout=subprocess.PIPE, text=True
        )
        self.summary: dict[str, Any] | None = None
        RUNNING.append(self)

    def finish(self, timeout: float = 600) -> dict[str, Any]:
        """Wait for the app to have written everything; its summary."""
        if self.summary is None:
            out, _ = self.proc.communicate(timeout=timeout)
            assert self.proc.returncode == 0, f"the writer failed: {self.proc.returncode}"
            self.summary = json.loads(out)
        return self.summary

    def stop(self, timeout: float = 60) -> dict[str, Any]:
        """SIGTERM (an app that writes until told to stop: `count` 0), then its summary."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.finish(timeout)

    def expected(self) -> list[str]:
        return [line(self.prefix, s, self.width) for s in range(self.finish()["written"])]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def count(es: StandInProcess, index: str = "logship-*") -> int:
    """Documents in the index; -1 while the stand-in is down (its control API too)."""
    try:
        return es.count(index)
    except OSError:
        return -1


def shipped(es: StandInProcess, expected: int, timeout: float, index: str = "logship-*") -> None:
    """Wait until at least `expected` documents are in the index (exactly_once says the
    rest: none doubled, none missing)."""
    wait_for(lambda: count(es, index) >= expected, timeout=timeout,
             what=f"{expected} documents in {index}")  # fmt: skip


def stop_cleanly(shipper: LogshipProcess, timeout: float = 60) -> None:
    """Still running, exits 0 at SIGTERM, and never logged an internal error."""
    assert shipper.proc is not None and shipper.proc.poll() is None, (
        f"logship died: exit {shipper.proc and shipper.proc.returncode}\n{shipper.stderr()[-3000:]}"
    )
    assert shipper.stop(timeout) == 0, shipper.stderr()[-3000:]
    bad = [e for e in shipper.events() if e["message"].startswith(BROKEN)]
    assert not bad, bad[:3]
    err = shipper.stderr()
    where = err.find("Traceback")
    context = err[max(0, where - 1500) : where + 3000]
    assert where < 0, f"a traceback in logship's stderr:\n{context}"


def docs(es: StandInProcess, index: str = "logship-*") -> list[dict[str, Any]]:
    """Every stored document, fetched once: a few hundred thousand take the stand-in a
    while to serialise, longer than the 5 s StandInProcess.docs waits by default."""
    return es.docs(index, timeout=600)


def messages(es: StandInProcess, index: str = "logship-*") -> Counter[str]:
    return Counter(d["message"] for d in docs(es, index))


def caught_up(shipper: LogshipProcess, path: Path) -> bool:
    """logship is at the end of `path` and Elasticsearch acknowledged all it read."""
    lag = f'logship_file_lag_bytes{{path="{path}"}} '
    lags = [float(x[len(lag) :]) for x in shipper.metrics().splitlines() if x.startswith(lag)]
    return lags == [0.0] and shipper.metric("unacknowledged_events") == 0


def sent_items(es: StandInProcess) -> int:
    """Documents Elasticsearch was asked to create, re-sends included."""
    return sum(r["items"] or 0 for r in es.requests() if r["path"].endswith("/_bulk"))


def wait_quietly(seconds: float) -> None:
    """Let a fault last this long (the schedule of a fault, never a correctness wait)."""
    time.sleep(seconds)
