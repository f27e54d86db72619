"""Exponential backoff with full jitter (the AWS "full jitter" schedule).

Pure: the random source is injected, so schedules are testable without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay before attempt n+1 is uniform in [0, min(cap, base * factor**n)].

    Full jitter spreads the retries of many pods that started together (a rollout)
    instead of having them hit a recovering dependency in lock-step.
    """

    def __init__(
        self,
        base: float,
        cap: float,
        *,
        factor: float = 2.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("backoff base and cap must be positive")
        self.base = min(base, cap)
        self.cap = cap
        self.factor = factor
        self._uniform = uniform
        self._attempt = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay, before jitter."""
        return min(self.cap, self.base * self.factor**self._attempt)

    def next(self) -> float:
        ceiling = self.ceiling()
        if ceiling < self.cap:
            self._attempt += 1
        return self._uniform(0.0, ceiling)

    def reset(self) -> None:
        self._attempt = 0


def polling_delay(
    elapsed: float,
    base: float,
    cap: float,
    *,
    doubling: float = 1.0,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Full-jitter pause whose ceiling doubles every `doubling` seconds of waiting.

    For readiness polling, how long we have waited is what should slow us down, not how
    many checks failed: a dependency that comes up a second or two after us is seen within
    tens of milliseconds, and one that takes minutes is asked at most about once per `cap`.
    """
    exponent = max(0.0, elapsed) / doubling
    ceiling = cap if exponent > 60 else min(cap, base * 2.0**exponent)
    return uniform(0.0, ceiling)
