"""A clock a test moves by hand: for the decisions that depend on how long something was
quiet (closing idle files, the drain's quiet window, multiline timeouts)."""

from __future__ import annotations


class FakeClock:
    """Callable like `time.monotonic`; starts at `start` and moves only by `advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
        return self.now
