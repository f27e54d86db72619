"""The soak's schedule: the flatness check compares the rest of a run with one period of
its faults, so the rest must hold nothing that period did not."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.soak.plan import (
    ISSUE,
    JITTER,
    LONG,
    SHORT,
    SHORTEST,
    period,
    schedule,
    table,
    windows,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_issues_schedule_is_the_issues() -> None:
    faults = schedule(7200.0, random.Random(1))
    kinds = [f.kind for f in faults]
    assert kinds.count("outage") == 12 and kinds.count("bad link") == 11
    assert kinds.count("sigterm") == 8 and kinds.count("sigkill") == 2
    outages = [f for f in faults if f.kind == "outage"]
    assert [f.lasts for f in outages] == [30.0] * 12
    assert [b.at - a.at for a, b in itertools.pairwise(outages)] == [600.0] * 11
    assert period(ISSUE) == 3600.0 and period(SHORT) == 180.0


@pytest.mark.parametrize("duration", [600.0, 1800.0, 7200.0, LONG])
def test_the_rest_repeats_the_reference_window(duration: float) -> None:
    """Every fault after the reference window is a fault of the window moved by whole
    periods (up to the restarts' jitter), and the window holds each kind."""
    warm, ref_end = windows(duration)
    step = period(table(duration))
    assert ref_end - warm == step and ref_end < duration
    faults = schedule(duration, random.Random(7))
    reference = [f for f in faults if warm <= f.at < ref_end]
    assert {f.kind for f in reference} == {"outage", "bad link", "sigterm", "sigkill"}
    rest = [f for f in faults if f.at >= ref_end]
    assert rest, "nothing after the reference window to compare"
    for fault in rest:
        moved = [
            f
            for f in reference
            if (f.kind, f.lasts) == (fault.kind, fault.lasts)
            and min((fault.at - f.at) % step, -(fault.at - f.at) % step) <= 2 * JITTER
        ]
        assert moved, f"{fault} has no like in the reference window {warm}-{ref_end}"


def test_short_and_long_runs() -> None:
    assert table(7200.0) is ISSUE and table(LONG - 1) is SHORT
    assert windows(600.0) == (240.0, 420.0)
    assert windows(7200.0) == (1200.0, 4800.0)


def test_too_short_a_soak_is_refused_before_it_starts() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tests.soak.soak", "--duration", "5m", "--out", "/nonexistent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert f"too short: a soak needs at least {SHORTEST / 60:g} minutes" in run.stderr
    assert "Traceback" not in run.stderr
