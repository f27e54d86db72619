"""kill -9 of logship at random moments while the app writes, restarted each time: no
drain, no registry save at exit, and still every line in the index exactly once."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import App, messages, shipped, sized, stop_cleanly
from tests.helpers import exactly_once


@sized(
    dict(kills=5, lines=15_000, rate=2500, width=80, alive=(0.2, 1.2), catch_up=60),
    dict(kills=20, lines=250_000, rate=2500, width=80, alive=(0.2, 8.0), catch_up=300),
)
def test_kill_9_at_random_moments_while_the_app_writes(
    es: StandInProcess,
    tmp: Path,
    shippers: Callable[..., LogshipProcess],
    rng: random.Random,
    size: Any,
) -> None:
    app = App(tmp / "logs" / "app.log", count=size.lines, rate=size.rate, width=size.width)
    moments = []
    for _ in range(size.kills):
        shipper = shippers(es, tmp, "--batch-docs", "500").start()
        moments.append(round(rng.uniform(*size.alive), 3))
        time.sleep(moments[-1])  # a random moment: reading, sending, committing, saving
        assert shipper.proc is not None
        shipper.proc.send_signal(signal.SIGKILL)
        shipper.proc.wait(timeout=10)
    shipper = shippers(es, tmp).start()
    expected = app.expected()
    context = f"kills after {moments} s"
    shipped(es, len(expected), timeout=size.catch_up)
    stop_cleanly(shipper)
    try:
        exactly_once(messages(es), expected)
    except AssertionError as exc:
        raise AssertionError(f"{exc} ({context})") from None
    assert es.count() == len(expected)
