"""Events in, bulk requests out, acknowledgements back — within a memory budget.

`put()` waits while the unacknowledged events use `queue_bytes`: a slow or absent
Elasticsearch makes the files wait, never the memory grow. It also waits while two
batches' worth of events are already waiting for a sender: reading further ahead than
that would not ship anything sooner, only hold more memory while catching up. A batcher
cuts batches at `batch_docs`, `batch_bytes` or `flush_interval`; up to `max_in_flight`
batches are sent at once. A batch is retried until every event in it is stored or dead,
under the one policy of `output.answers`: whole requests when there is no answer, a
401/403, 429 or 5xx; only the failed items after per-item 429/503; halves after 400/413.
Dead events go to the dead letter and count as acknowledged, so they never block a file's
progress.

Events arrive as `Docs` (the events of one read of one file, one NDJSON run): the budget,
the batches and the acknowledgements work on runs and slices of runs, so the cost per
event is a few bytes copied, not Python objects; only a response that is not all stored
is looked at event by event.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from agents._aio import wait_event
from agents._log import Logger
from agents.logship.acks import AckTracker
from agents.logship.bulk import Docs, Event, ItemResult, Verdict, all_stored, classify_response
from agents.logship.output.answers import (
    RETRY_BASE,
    RETRY_CAP,
    Kind,
    Reply,
    Retry,
    ask,
    error_reason,
    reload_credentials,
)
from agents.logship.output.elasticsearch import Sender


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


# (file key, generation, committed offset, hash of the bytes before it or None)
Commit = Callable[[str, int, int, str | None], None]
DeadLetter = Callable[[Event, ItemResult], Awaitable[None]]
Part = tuple[Docs, int, int]  # events lo..hi-1 of a run
# Answers to POST /_bulk that Elasticsearch never gives: another server, or a proxy's path.
NOT_BULK = (404, 405, 501)
READ_AHEAD_BATCHES = 2  # events waiting for a sender, in batches, before put() waits


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
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
        ledger: AckTracker | None = None,
    ) -> None:
        self.sender, self.commit, self.dead_letter, self.log = sender, commit, dead_letter, log
        self.batch_docs, self.batch_bytes = batch_docs, batch_bytes
        self.flush_interval, self.queue_budget = flush_interval, queue_bytes
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.stats = Stats()
        # Set (and replaced) when a request is answered: batches waiting out a backoff
        # because Elasticsearch was unreachable go at once, not each on its own timer.
        self._answered = asyncio.Event()
        # Which offsets may be committed: the checkpointer's ledger (a fresh one alone).
        self.acks = AckTracker() if ledger is None else ledger
        self._pending: deque[Docs] = deque()
        self._pending_from = 0  # events of _pending[0] already taken into a batch
        self._pending_events = 0
        self._pending_size = 0  # NDJSON bytes not yet taken into a batch
        self._used = 0  # bytes of events put and not yet acknowledged
        self._space = asyncio.Condition()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._flush_now = False
        self._broken: BaseException | None = None  # a delivery's bug: run() raises it
        # Elasticsearch's state as last said: (kind, detail). A change is logged once,
        # however many batches retry it; each retry is a debug line.
        self._credentials_changed = asyncio.Event()  # refused batches retry at once
        self._said: tuple[str, str] = ("ok", "")
        self._said_at = time.monotonic()

    # --- the input side ------------------------------------------------------------------

    def track(self, key: str, generation: int, committed: int) -> None:
        self.acks.track(key, generation, committed)

    async def put(self, event: Event) -> None:
        """Hand over one event; waits while the memory budget is used up."""
        await self.put_docs(Docs.of(event))

    async def put_docs(self, docs: Docs) -> None:
        """Hand over a run of events of one file, in file order after the ones before it;
        waits while the memory budget is used up."""
        size = docs.size
        limit = max(self.queue_budget // 4, 1)
        if size > limit and len(docs) > 1:
            # One read's run can outgrow a small budget: hand it over in slices that fit.
            lo = 0
            while lo < len(docs):
                hi = docs.cut_at_bytes(lo, limit)
                await self.put_docs(docs.slice(lo, hi))
                lo = hi
            return
        async with self._space:
            await self._space.wait_for(lambda: self._fits(size) and self._room_ahead())
            self._used += size
            self.stats.queue_bytes = self._used
        self.acks.sent(docs.key, docs.generation, docs.start, docs.end, len(docs), docs.tail)
        was_empty = not self._pending
        self._pending.append(docs)
        self._pending_events += len(docs)
        self._pending_size += size
        self.stats.events_in += len(docs)
        if (
            was_empty
            or self._pending_events >= self.batch_docs
            or self._pending_size >= self.batch_bytes
        ):
            self._arrived.set()

    def _fits(self, size: int) -> bool:
        # An event bigger than the whole budget still goes through, alone.
        return self._used == 0 or self._used + size <= self.queue_budget

    def _room_ahead(self) -> bool:
        """Fewer than two batches wait for a sender (the batcher takes them as it can)."""
        return not self._pending or (
            self._pending_events < READ_AHEAD_BATCHES * self.batch_docs
            and self._pending_size < READ_AHEAD_BATCHES * self.batch_bytes
        )

    @property
    def unacknowledged(self) -> int:
        return self.acks.outstanding()

    def flush(self) -> None:
        """Send what is pending without waiting for the flush interval (drain)."""
        self._flush_now = True
        self._arrived.set()

    # --- the batcher ----------------------------------------------------------------------

    async def run(self) -> None:
        """Cut batches and start senders until cancelled. A delivery that fails with an
        exception (a bug: answers are all handled) makes this raise it, so that the
        supervisor sees it instead of events waiting forever for their acknowledgement."""
        try:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                self._raise_if_broken()
                if not self._pending:
                    continue
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._flush_now
                    and self._pending_events < self.batch_docs
                    and self._pending_size < self.batch_bytes
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._arrived.clear()
                    if not await wait_event(self._arrived, left):
                        break
                while self._pending:
                    batch = self._take_batch()
                    async with self._space:
                        self._space.notify_all()  # room ahead for put()
                    await self._slots.acquire()
                    self._raise_if_broken()
                    task = asyncio.create_task(self._deliver(batch))
                    self._in_flight.add(task)
                    task.add_done_callback(self._sent)
                self._flush_now = False
        finally:
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _take_batch(self) -> list[Part]:
        """Up to `batch_docs` events and `batch_bytes` bytes (at least one event) from the
        head of the queue, cutting a run where a limit falls inside it."""
        batch: list[Part] = []
        count = size = 0
        while self._pending and count < self.batch_docs:
            docs, lo = self._pending[0], self._pending_from
            hi = min(len(docs), lo + self.batch_docs - count)
            if docs.bytes_of(lo, hi) > self.batch_bytes - size:
                if batch and docs.bytes_of(lo, lo + 1) > self.batch_bytes - size:
                    break
                hi = min(hi, docs.cut_at_bytes(lo, self.batch_bytes - size))
            batch.append((docs, lo, hi))
            count += hi - lo
            taken = docs.bytes_of(lo, hi)
            size += taken
            self._pending_events -= hi - lo
            self._pending_size -= taken
            if hi == len(docs):
                self._pending.popleft()
                self._pending_from = 0
            else:
                self._pending_from = hi
                break  # the run was cut at a limit
        return batch

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise self._broken

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._broken is None:
            self._broken = task.exception()
            self._arrived.set()

    # --- delivery -------------------------------------------------------------------------

    def _retry(self) -> Retry:
        return Retry(self.log, base=self.retry_base, cap=self.retry_cap,
                     on_pause=self._count_retry)  # fmt: skip

    def _count_retry(self) -> None:
        self.stats.retries += 1

    async def _deliver(self, parts: list[Part]) -> None:
        """Send the events of `parts` until each one is stored or dead."""
        retry = self._retry()
        while parts:
            count = sum(hi - lo for _, lo, hi in parts)
            self.stats.bulk_requests += 1
            body = [docs.body_of(lo, hi) for docs, lo, hi in parts]
            answered = self._answered
            reply = await ask(lambda body=body: self.sender.send(body))  # type: ignore[misc]
            del body
            if reply.kind is Kind.UNREACHABLE:
                self.stats.es_reachable = False
                said = self._state("unreachable", "")
                await retry.pause("Elasticsearch unreachable", reply.reason, events=count,
                                  until=answered, level="warning" if said else "debug")  # fmt: skip
                if answered.is_set():  # another request got through: so may this one
                    retry.progress()
                continue
            self.stats.es_reachable = True
            self._answered.set()
            self._answered = asyncio.Event()
            if reply.kind is Kind.REJECTED:
                await self._split(parts, count, reply)
                return
            if reply.kind is Kind.DENIED:
                # A rotated Secret: read the files again; new credentials go at once.
                if reload_credentials(self.sender, self.log, reply):
                    retry.progress()
                    continue
                self._denied(reply)
                changed = self._credentials_changed
                await retry.pause("bulk request refused", reply.status, events=count,
                                  level="debug", until=changed)  # fmt: skip
                if changed.is_set():
                    retry.progress()
                continue
            if not reply.ok:
                said = self._state("refused", str(reply.status))
                if said and reply.status in NOT_BULK:
                    self.log.error("the server does not take bulk requests as Elasticsearch "
                                   "does: is --es the URL of Elasticsearch?",
                                   status=reply.status, reason=reply.reason)  # fmt: skip
                await retry.pause("bulk request refused", reply.status, events=count,
                                  reason=error_reason(reply.body) or None,
                                  level="warning" if said else "debug")  # fmt: skip
                continue
            self._state("ok", "")
            if all_stored(reply.body, count):
                for part in parts:
                    await self._done(*part)
                return
            results = classify_response(reply.body, count)
            events = [(docs, i) for docs, lo, hi in parts for i in range(lo, hi)]
            again: list[tuple[Part, ItemResult]] = []
            dead: list[tuple[Docs, int, ItemResult]] = []
            for (docs, i), result in zip(events, results, strict=True):
                if result.verdict is Verdict.STORED:
                    await self._done(docs, i, i + 1)
                elif result.verdict is Verdict.DEAD:
                    dead.append((docs, i, result))
                else:
                    again.append(((docs, i, i + 1), result))
            for docs, i, result in dead:
                await self._dead(docs, i, result)
            if len(again) < count:
                retry.progress()  # the next wait starts short again
            if not again:
                return
            first = again[0][1]
            if first.error_type == "cluster_block_exception":
                self.log.error(
                    "Elasticsearch blocks writes (disk flood stage?): retrying until it "
                    "accepts them again",
                    reason=first.reason,
                )
            parts = [part for part, _ in again]
            why = f"{first.status} {first.error_type or first.reason}".strip()
            await retry.pause("items rejected", why, events=len(parts))

    def _state(self, kind: str, detail: str) -> bool:
        """Note Elasticsearch's state → whether it changed (and is to be said). A return
        to "ok" is said here, with how long the trouble lasted."""
        if (kind, detail) == self._said:
            return False
        before, since = self._said[0], self._said_at
        self._said, self._said_at = (kind, detail), time.monotonic()
        if kind == "ok":
            self.log.info("Elasticsearch takes requests again", after=before,
                          lasted=round(self._said_at - since, 3))  # fmt: skip
        return True

    def credentials_changed(self) -> None:
        """New credentials were read: batches waiting out a refusal go now."""
        self._credentials_changed.set()
        self._credentials_changed = asyncio.Event()

    def _denied(self, reply: Reply) -> None:
        """Say once per change what a 401/403 means and what to check."""
        if not self._state("denied", reply.reason):
            return
        credentials = getattr(self.sender, "credentials", None)
        who = credentials.describe() if credentials is not None else None
        then = ("re-reading their files before each retry"
                if credentials is not None and credentials.files
                else "retrying: fix them and restart logship")  # fmt: skip
        if reply.status == 401:
            message = f"Elasticsearch refused the credentials: {then}"
        else:
            message = ("Elasticsearch refused a privilege (create_doc or write on the index) "
                       f"to these credentials: {then}")  # fmt: skip
        self.log.error(message, credentials=who, reason=reply.reason,
                       retry_max=self.retry_cap)  # fmt: skip

    async def _split(self, parts: list[Part], count: int, reply: Reply) -> None:
        if count == 1:
            # One event that is by itself too big (413) or unacceptable (400): dead.
            docs, lo, _ = parts[0]
            reason = error_reason(reply.body) or f"HTTP {reply.status} for a single event"
            await self._dead(docs, lo, ItemResult(Verdict.DEAD, reply.status, reason))
            return
        self.log.warning("bulk request refused: splitting it", status=reply.status,
                         events=count)  # fmt: skip
        first, second = split_parts(parts, count // 2)
        await self._deliver(first)
        await self._deliver(second)

    async def _dead(self, docs: Docs, i: int, result: ItemResult) -> None:
        """Keep a refused event in the dead letter, retrying until it is kept (a full or
        read-only data dir must not lose it, nor stop the rest of its batch)."""
        event = docs.event(i)
        retry = Retry(self.log, base=self.retry_base, cap=self.retry_cap)
        while True:
            try:
                await self.dead_letter(event, result)
                break
            except Exception as exc:
                await retry.pause("dead letter not written: retrying", exc, level="error",
                                  path=event.path, offset=event.offset)  # fmt: skip
        self.stats.dead_lettered += 1
        await self._done(docs, i, i + 1)

    async def _done(self, docs: Docs, lo: int, hi: int) -> None:
        """Events lo..hi-1 of `docs` are stored or dead-lettered; the run is acknowledged
        when the last of its events is."""
        self.stats.events_acked += hi - lo
        self.stats.bytes_acked += docs.source_bytes(lo, hi)
        docs.remaining -= hi - lo
        if docs.remaining:
            return
        committed = self.acks.acked(docs.key, docs.generation, docs.start)
        if committed is not None:
            self.commit(docs.key, docs.generation, *committed)
        async with self._space:
            self._used -= docs.size
            self.stats.queue_bytes = self._used
            self._space.notify_all()


def split_parts(parts: list[Part], count: int) -> tuple[list[Part], list[Part]]:
    """`parts` → the first `count` events and the rest (a run cut where the line falls)."""
    first: list[Part] = []
    for n, (docs, lo, hi) in enumerate(parts):
        if hi - lo < count:
            first.append((docs, lo, hi))
            count -= hi - lo
            continue
        if count == hi - lo:
            return [*first, (docs, lo, hi)], parts[n + 1 :]
        return [*first, (docs, lo, lo + count)], [(docs, lo + count, hi), *parts[n + 1 :]]
    return first, []
