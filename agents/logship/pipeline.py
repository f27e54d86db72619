"""Events in, bulk requests out, acknowledgements back — within a memory budget.

`put()` waits while the unacknowledged events use `queue_bytes`: a slow or absent
Elasticsearch makes the files wait, never the memory grow. A batcher cuts batches at
`batch_docs`, `batch_bytes` or `flush_interval`; up to `max_in_flight` batches are sent
at once. A batch is retried until every event in it is stored or dead: whole requests
after connection errors, 429 and 5xx (exponential backoff with jitter, forever); only the
failed items after per-item 429/503; halves after 400/413. Dead events go to the dead
letter and count as acknowledged, so they never block a file's progress.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from agents._aio import wait_event
from agents._backoff import Backoff
from agents._log import Logger
from agents.logship.acks import AckTracker
from agents.logship.bulk import (
    Event,
    ItemResult,
    RequestVerdict,
    Verdict,
    build_body,
    classify_request_status,
    classify_response,
)
from agents.logship.output.elasticsearch import Answer, SendFailed


class Sender(Protocol):
    async def send(self, body: bytes) -> Answer: ...


class Stats:
    """Counters the /metrics endpoint reads (plain ints: no metrics library in the core)."""

    def __init__(self) -> None:
        self.events_in = 0
        self.events_acked = 0
        self.bytes_acked = 0
        self.bulk_requests = 0
        self.retries = 0
        self.dead_lettered = 0
        self.queue_bytes = 0
        self.es_reachable = True


Commit = Callable[[str, int, int], None]  # (file key, generation, committed offset)
DeadLetter = Callable[[Event, ItemResult], Awaitable[None]]


class Pipeline:
    def __init__(
        self,
        sender: Sender,
        *,
        commit: Commit,
        dead_letter: DeadLetter,
        log: Logger,
        batch_docs: int = 2000,
        batch_bytes: int = 5 * 1024 * 1024,
        flush_interval: float = 0.1,
        max_in_flight: int = 4,
        queue_bytes: int = 64 * 1024 * 1024,
        retry_base: float = 0.1,
        retry_cap: float = 30.0,
    ) -> None:
        self.sender, self.commit, self.dead_letter, self.log = sender, commit, dead_letter, log
        self.batch_docs, self.batch_bytes = batch_docs, batch_bytes
        self.flush_interval, self.queue_budget = flush_interval, queue_bytes
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.stats = Stats()
        self.acks = AckTracker()
        self._pending: deque[Event] = deque()
        self._used = 0  # bytes of events put and not yet acknowledged
        self._space = asyncio.Condition()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._flush_now = False

    # --- the input side ------------------------------------------------------------------

    def track(self, key: str, generation: int, committed: int) -> None:
        self.acks.track(key, generation, committed)

    async def put(self, event: Event) -> None:
        """Hand over one event; waits while the memory budget is used up."""
        size = event.size
        async with self._space:
            await self._space.wait_for(lambda: self._fits(size))
            self._used += size
            self.stats.queue_bytes = self._used
        self.acks.sent(event.key, event.generation, event.offset, event.end)
        self._pending.append(event)
        self.stats.events_in += 1
        if len(self._pending) == 1 or len(self._pending) >= self.batch_docs:
            self._arrived.set()

    def _fits(self, size: int) -> bool:
        # An event bigger than the whole budget still goes through, alone.
        return self._used == 0 or self._used + size <= self.queue_budget

    @property
    def unacknowledged(self) -> int:
        return self.acks.outstanding()

    def flush(self) -> None:
        """Send what is pending without waiting for the flush interval (drain)."""
        self._flush_now = True
        self._arrived.set()

    # --- the batcher ----------------------------------------------------------------------

    async def run(self) -> None:
        """Cut batches and start senders until cancelled."""
        try:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                if not self._pending:
                    continue
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._flush_now
                    and len(self._pending) < self.batch_docs
                    and self._pending_bytes() < self.batch_bytes
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._arrived.clear()
                    if not await wait_event(self._arrived, left):
                        break
                while self._pending:
                    batch = self._take_batch()
                    await self._slots.acquire()
                    task = asyncio.create_task(self._deliver(batch))
                    self._in_flight.add(task)
                    task.add_done_callback(self._sent)
                self._flush_now = False
        finally:
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _pending_bytes(self) -> int:
        # The queue holds at most a budget's worth: summing it is cheap enough here.
        return sum(e.size for e in self._pending)

    def _take_batch(self) -> list[Event]:
        batch: list[Event] = []
        size = 0
        while self._pending and len(batch) < self.batch_docs:
            event = self._pending[0]
            if batch and size + event.size > self.batch_bytes:
                break
            batch.append(self._pending.popleft())
            size += event.size
        return batch

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            self.log.error("sender failed", error=repr(task.exception()))

    # --- delivery -------------------------------------------------------------------------

    async def _deliver(self, events: list[Event]) -> None:
        """Send `events` until each one is stored or dead."""
        backoff = Backoff(self.retry_base, self.retry_cap)
        while events:
            self.stats.bulk_requests += 1
            try:
                answer = await self.sender.send(build_body(events))
            except SendFailed as exc:
                self.stats.es_reachable = False
                await self._retry_later(backoff, "Elasticsearch unreachable", exc, len(events))
                continue
            self.stats.es_reachable = True
            if answer.status != 200:
                if classify_request_status(answer.status) is RequestVerdict.SPLIT:
                    await self._split(events, answer)
                    return
                await self._retry_later(backoff, "bulk request refused", answer.status, len(events))
                continue
            results = classify_response(answer.body, len(events))
            retry: list[tuple[Event, ItemResult]] = []
            dead: list[tuple[Event, ItemResult]] = []
            for event, result in zip(events, results, strict=True):
                if result.verdict is Verdict.STORED:
                    await self._ack(event)
                elif result.verdict is Verdict.DEAD:
                    dead.append((event, result))
                else:
                    retry.append((event, result))
            for event, result in dead:
                await self._dead(event, result)
            if len(retry) < len(events):
                backoff.reset()  # progress: the next wait starts short again
            if not retry:
                return
            first = retry[0][1]
            if first.error_type == "cluster_block_exception":
                self.log.error(
                    "Elasticsearch blocks writes (disk flood stage?): retrying until it "
                    "accepts them again",
                    reason=first.reason,
                )
            events = [event for event, _ in retry]
            why = f"{first.status} {first.error_type or first.reason}".strip()
            await self._retry_later(backoff, "items rejected", why, len(events))

    async def _split(self, events: list[Event], answer: Answer) -> None:
        if len(events) == 1:
            # One event that is by itself too big (413) or unacceptable (400): dead.
            reason = _error_reason(answer.body) or f"HTTP {answer.status} for a single event"
            await self._dead(events[0], ItemResult(Verdict.DEAD, answer.status, reason))
            return
        half = len(events) // 2
        self.log.warning("bulk request refused: splitting it", status=answer.status,
                         events=len(events))  # fmt: skip
        await self._deliver(events[:half])
        await self._deliver(events[half:])

    async def _retry_later(self, backoff: Backoff, what: str, why: object, count: int) -> None:
        self.stats.retries += 1
        delay = backoff.next()
        self.log.warning(what, error=str(why), events=count, retry_in=round(delay, 3))
        await asyncio.sleep(delay)

    async def _dead(self, event: Event, result: ItemResult) -> None:
        """Keep a refused event in the dead letter, retrying until it is kept (a full or
        read-only data dir must not lose it, nor stop the rest of its batch)."""
        backoff = Backoff(self.retry_base, self.retry_cap)
        while True:
            try:
                await self.dead_letter(event, result)
                break
            except Exception as exc:
                delay = backoff.next()
                self.log.error(
                    "dead letter not written: retrying",
                    error=str(exc), path=event.path, offset=event.offset, retry_in=round(delay, 3),
                )  # fmt: skip
                await asyncio.sleep(delay)
        self.stats.dead_lettered += 1
        await self._ack(event)

    async def _ack(self, event: Event) -> None:
        self.stats.events_acked += 1
        self.stats.bytes_acked += len(event.doc)
        committed = self.acks.acked(event.key, event.generation, event.offset)
        if committed is not None:
            self.commit(event.key, event.generation, committed)
        async with self._space:
            self._used -= event.size
            self.stats.queue_bytes = self._used
            self._space.notify_all()


def _error_reason(body: object) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("reason", ""))
    return ""
