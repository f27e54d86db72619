"""The waiting itself: every target watched concurrently until ready, or the deadline.

One `Watcher` per target runs attempt → classify → sleep with backoff, and logs only when
the target's state changes. `run()` owns the lifecycle: start the watchers, stop at the
first signal, the deadline, or when enough targets are ready, then write the summary.
"""

from __future__ import annotations

import asyncio
import math
import re
import signal
import time

from agents._backoff import polling_delay
from agents._log import Logger
from agents._options import format_duration
from agents.waitfor.checks import Failed, NotReady
from agents.waitfor.checks._net import describe_oserror
from agents.waitfor.config import Config
from agents.waitfor.report import Exit, Outcome, log_start, summarise
from agents.waitfor.targets import Target

TYPE_CHECKING = False  # typing and dataclasses would cost 2 MiB of RSS here
if TYPE_CHECKING:
    from collections.abc import Callable

    from agents.waitfor.checks import Check


REASON_LOG_SPACING = 1.0  # seconds between two "not ready" lines of one target


def reason_kind(reason: str | None) -> str | None:
    """A reason without its numbers: "HTTP 503 …" and "HTTP 502 …" are one kind."""
    if reason is None:
        return None
    return re.sub(r"\d+", "#", reason)


class Watcher:
    """Watches one target until it is satisfied or the deadline passes."""

    def __init__(
        self,
        target: Target,
        check: Check,
        config: Config,
        log: Logger,
        started: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target, self.check, self.config, self.log = target, check, config, log
        self.started, self.clock = started, clock
        self.outcome = Outcome(target)

    async def attempt(self, limit: float) -> tuple[bool, str]:
        """One probe → (up?, description or reason)."""
        try:
            async with asyncio.timeout(limit):
                return True, await self.check.probe()
        except NotReady as exc:
            return False, exc.reason
        except TimeoutError:
            if limit < self.config.attempt_timeout:
                # Cut short by the global deadline, not by --attempt-timeout.
                deadline = format_duration(self.config.timeout)
                reason = f"no answer before the {deadline} deadline"
            else:
                reason = f"no answer within {format_duration(limit)}"
            # A check may say who did not answer (which name, which nameserver).
            describe = getattr(self.check, "describe_no_answer", None)
            return False, describe(reason) if describe is not None else reason
        except OSError as exc:
            return False, describe_oserror(exc, self.target.address)

    async def run(self) -> Outcome:
        try:
            return await self._run()
        except Failed as exc:  # final: no more attempts
            out = self.outcome
            out.attempts += 1
            out.elapsed = self.clock() - self.started
            out.failed = out.last_error = exc.reason
            out.state = "failed"
            self.log.error("failed", target=self.target.display,
                           elapsed=round(out.elapsed, 3), error=exc.reason)  # fmt: skip
            return out

    async def _run(self) -> Outcome:
        cfg, out = self.config, self.outcome
        deadline = self.started + cfg.timeout if cfg.timeout else math.inf
        while (remaining := deadline - self.clock()) > 0:
            limit = min(cfg.attempt_timeout, remaining)
            up, detail = await self.attempt(limit)
            out.attempts += 1
            out.elapsed = self.clock() - self.started
            if self.clock() >= deadline and not up and limit < cfg.attempt_timeout:
                # Cut short by the deadline, not a verdict of its own: keep the last
                # real reason for the summary unless there is none.
                out.last_error = out.last_error or detail
                return out
            passed = up != cfg.invert
            if passed:
                out.streak += 1
                out.last_ok = detail if up else f"down: {detail}"
            else:
                out.streak = 0
                out.last_error = f"still up: {detail}" if up else detail
            if passed and out.streak >= cfg.consecutive:
                out.satisfied = True
                self._transition("ready", detail=out.last_ok)
                return out
            if passed:
                self._transition("passing", detail=out.last_ok)
                delay = cfg.interval  # successes are spaced by the interval
            else:
                self._transition("not ready", detail=out.last_error)
                delay = polling_delay(out.elapsed, cfg.min_interval, cfg.interval)
            await asyncio.sleep(min(delay, max(0.0, deadline - self.clock())))
        return out

    def _transition(self, state: str, *, detail: str | None) -> None:
        out = self.outcome
        if state == out.state:
            # Same state, other reason: worth a line when the reason's kind changed
            # (refused → HTTP 503), not when only its numbers did; a reason that keeps
            # changing gets at most a line per REASON_LOG_SPACING, never one per attempt.
            kind = reason_kind(detail)
            if state != "not ready" or kind == self._logged_kind:
                return
            if self._reason_run and out.elapsed - self._logged_at < REASON_LOG_SPACING:
                return
            self._reason_run = True
        else:
            self._reason_run = False
        out.state = state
        self._logged_kind = reason_kind(detail)
        self._logged_at = out.elapsed
        fields = {"target": self.target.display, "elapsed": round(out.elapsed, 3)}
        if state == "ready":
            self.log.info("ready", **fields, attempts=out.attempts, detail=detail)
        elif state == "passing":
            streak = f"{out.streak}/{self.config.consecutive}"
            self.log.info("passing", **fields, streak=streak, detail=detail)
        else:
            self.log.info("not ready", **fields, error=detail)

    _logged_kind: str | None = None
    _logged_at: float = -math.inf
    _reason_run = False  # the last line was a reason change, not a state change


class Runner:
    """Owns one waitfor run: start-up, the wait, the summary."""

    def __init__(
        self,
        config: Config,
        checks: list[tuple[Target, Check]],
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        # The deadline counts from waitfor's start, first look included.
        self.started = clock() if started is None else started
        self.watchers = [
            Watcher(target, check, config, log, self.started, clock) for target, check in checks
        ]
        self.signal_received: int | None = None
        self._stop = asyncio.Event()

    def handle_signal(self, signum: int) -> None:
        """Only sets flags: the run loop does the stopping."""
        self.signal_received = signum
        self._stop.set()

    async def run(self) -> Exit:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.handle_signal, signum)
        try:
            return await self._wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            for watcher in self.watchers:
                await watcher.check.close()

    async def _wait(self) -> Exit:
        cfg = self.config
        log_start(cfg, self.log, len(self.watchers))
        tasks = {asyncio.create_task(w.run(), name=w.target.display): w for w in self.watchers}
        stopper = asyncio.create_task(self._stop.wait())
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopper)
                if stopper in done:
                    break
                done_ready = [t for t in done if t.result().satisfied]
                if cfg.any and done_ready:
                    break
                if any(not t.result().satisfied and t.result().failed is None for t in done):
                    break  # a watcher returns unsatisfied at the deadline, or failed
                if not cfg.any and any(t.result().failed is not None for t in done):
                    break  # all were needed: one can never be
                if cfg.any and not pending:
                    break
        finally:
            for task in (*pending, stopper):
                task.cancel()
            await asyncio.gather(*pending, stopper, return_exceptions=True)
        return self._summarise()

    def _summarise(self) -> Exit:
        for out in (w.outcome for w in self.watchers):
            if not out.satisfied:
                out.elapsed = self.clock() - self.started
        return summarise(
            self.config,
            [w.outcome for w in self.watchers],
            self.log,
            elapsed=self.clock() - self.started,
            signal_received=self.signal_received,
        )
