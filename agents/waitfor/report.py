"""Exit codes, per-target outcomes and the closing summary.

Free of asyncio on purpose: the fast path in `cli` reports through it without paying for
the event loop's import.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from enum import IntEnum

from agents._log import Logger
from agents._options import format_duration

TYPE_CHECKING = False  # typing's own flag costs its import at start-up
if TYPE_CHECKING:
    from agents.waitfor.config import Config
    from agents.waitfor.targets import Target


class Exit(IntEnum):
    READY = 0
    FAILURE = 1
    USAGE = 2
    TIMEOUT = 124
    SIGINT = 130
    SIGTERM = 143


class Outcome:
    """A target's story so far: what the summary reports."""

    def __init__(
        self, target: Target, *, satisfied: bool = False, attempts: int = 0, elapsed: float = 0.0
    ) -> None:
        self.target = target
        self.satisfied = satisfied
        self.attempts = attempts
        self.elapsed = elapsed
        self.streak = 0
        self.last_error: str | None = None
        self.last_ok: str | None = None
        self.failed: str | None = None  # a final outcome: why it will never be ready
        self.state = "pending"


def log_start(config: Config, log: Logger, count: int) -> None:
    log.info(
        "waiting",
        targets=count,
        timeout=format_duration(config.timeout) if config.timeout else "none",
        mode=("down" if config.invert else "ready") + (", any" if config.any else ", all"),
    )


def summarise(
    config: Config,
    outcomes: Sequence[Outcome],
    log: Logger,
    *,
    elapsed: float,
    signal_received: int | None = None,
) -> Exit:
    """One summary line per target, then the verdict; returns the exit code."""
    word = "down" if config.invert else "ready"
    ready = [o for o in outcomes if o.satisfied]
    success = bool(ready) if config.any else len(ready) == len(outcomes)
    failed = [o for o in outcomes if o.failed is not None]
    if signal_received is not None:
        level, code = "warning", (Exit.SIGINT if signal_received == signal.SIGINT else Exit.SIGTERM)
    elif success:
        level, code = "info", Exit.READY
    elif failed:
        level, code = "error", Exit.FAILURE
    else:
        level, code = "error", Exit.TIMEOUT
    for out in outcomes:
        log.log(
            "info" if out.satisfied else level,
            "summary",
            target=out.target.display,
            outcome=word if out.satisfied else "failed" if out.failed else f"not {word}",
            elapsed=round(out.elapsed, 3),
            attempts=out.attempts,
            # why it was not: a target that got there has no error to report
            last_error=None if out.satisfied else out.last_error,
        )
    if signal_received is not None:
        name = signal.Signals(signal_received).name
        log.warning(f"stopped by {name}", elapsed=round(elapsed, 3))
    elif success:
        scope = "a target" if config.any else "all targets"
        log.info(f"{scope} {word}", elapsed=round(elapsed, 3))
    elif failed:
        reasons = "; ".join(f"{o.target.display} ({o.failed})" for o in failed)
        log.error(
            f"failed: {len(failed)} of {len(outcomes)} will never be {word}: {reasons}",
            elapsed=round(elapsed, 3),
        )
    else:
        failing = [o for o in outcomes if not o.satisfied]
        reasons = "; ".join(
            f"{o.target.display} ({o.last_error or 'no attempt finished'})" for o in failing
        )
        log.error(
            f"timed out after {format_duration(elapsed)}: {len(failing)} of {len(outcomes)} "
            f"not {word}: {reasons}",
            elapsed=round(elapsed, 3),
        )
    return code
