"""The pipeline against the Elasticsearch stand-in: every event stored exactly once,
whatever the stand-in does, and offsets committed only over acknowledged prefixes."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agents._log import Logger
from agents.logship.bulk import Event, ItemResult
from agents.logship.output.elasticsearch import ElasticsearchSender
from agents.logship.pipeline import Pipeline
from agents.testing.aio import until
from agents.testing.elasticsearch import StandIn

pytestmark = pytest.mark.asyncio


def doc_bytes(**fields: object) -> bytes:
    return json.dumps({"@timestamp": "2026-11-21T00:00:00Z", **fields}).encode()


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=7) as standin:
        yield standin


class Harness:
    def __init__(self, es: StandIn, **options: object) -> None:
        self.log_stream = io.StringIO()
        self.commits: dict[tuple[str, int], int] = {}
        self.dead: list[tuple[Event, ItemResult]] = []
        self.sender = ElasticsearchSender(
            {"hosts": [es.url], "request_timeout": 5.0, "http_compress": True}
        )  # fmt: skip
        defaults: dict[str, object] = {"flush_interval": 0.05, "retry_base": 0.01, "retry_cap": 0.2}
        defaults.update(options)
        self.pipeline = Pipeline(
            self.sender,
            commit=self._commit,
            dead_letter=self._dead,
            log=Logger("logship", json_lines=True, stream=self.log_stream),
            **defaults,  # type: ignore[arg-type]
        )

    def _commit(self, key: str, generation: int, offset: int, tail: str | None) -> None:
        previous = self.commits.get((key, generation), 0)
        assert offset > previous, "commits only move forward"
        self.commits[(key, generation)] = offset

    async def _dead(self, event: Event, result: ItemResult) -> None:
        self.dead.append((event, result))

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.pipeline.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.sender.close()

    async def feed(self, count: int, key: str = "file-a", doc: bytes | None = None) -> int:
        self.pipeline.track(key, 0, 0)
        offset = 0
        for i in range(count):
            body = doc or doc_bytes(message=f"line {i}")
            await self.pipeline.put(Event(key, 0, offset, offset + 10, "logs", body))
            offset += 10
        return offset

    async def settle(self, limit: float = 20.0) -> None:
        async with asyncio.timeout(limit):
            while self.pipeline.unacknowledged:
                self.pipeline.flush()
                await asyncio.sleep(0.02)


async def test_every_event_stored_once_and_committed(es: StandIn) -> None:
    async with Harness(es, batch_docs=50) as h:
        end = await h.feed(500)
        await h.settle()
    assert es.count("logs") == 500
    assert h.commits == {("file-a", 0): end}
    messages = sorted(int(d["message"].split()[1]) for d in es.docs("logs"))
    assert messages == list(range(500))


async def test_per_item_429_retries_only_those_items(es: StandIn) -> None:
    es.fail_items(429, probability=0.3)
    async with Harness(es, batch_docs=40) as h:
        end = await h.feed(400)
        await h.settle()
    assert es.count("logs") == 400
    assert h.commits[("file-a", 0)] == end
    assert h.pipeline.stats.retries > 0
    sizes = [r.items for r in es.requests if r.path.endswith("_bulk")]
    assert min(s for s in sizes if s) < 40  # a retry carried only the rejected items


async def test_whole_request_failures_retry_until_accepted(es: StandIn) -> None:
    es.fail_requests(503, count=3)
    es.fail_requests(429, count=2)
    async with Harness(es, batch_docs=100) as h:
        await h.feed(100)
        await h.settle()
    assert es.count("logs") == 100
    assert h.pipeline.stats.retries >= 5


async def test_elasticsearch_down_then_back(es: StandIn) -> None:
    await es.down(None)
    async with Harness(es, batch_docs=20) as h:
        await h.feed(60)
        # Back once the pipeline has found it down (its first request may take a while
        # on a loaded machine: the client is imported first).
        await until(lambda: h.pipeline.stats.es_reachable is False, "a refused request", 30)
        assert es.count("*") == 0  # nothing stored while it is down
        await es.up()
        await h.settle()
    assert es.count("logs") == 60
    assert h.pipeline.stats.es_reachable is True


async def test_after_an_outage_one_answer_sends_every_waiting_batch_at_once(
    es: StandIn,
) -> None:
    """Batches waiting out a long backoff (up to 60 s each here) go as soon as any request
    is answered again, instead of each on its own timer."""
    await es.down(None)
    async with Harness(es, batch_docs=10, retry_base=60.0, retry_cap=60.0, max_in_flight=8) as h:
        await h.feed(50, key="early")  # 5 batches, all failing into their backoff
        async with asyncio.timeout(10):
            while h.pipeline.stats.retries < 5:  # noqa: ASYNC110 - a counter, no event to wait on
                await asyncio.sleep(0.02)
        await es.up()
        await h.feed(10, key="late")  # sent at once (no backoff yet): answered
        await h.settle(limit=15.0)  # not 60 s: the five waiting batches were woken
    assert es.count("logs") == 60


async def test_mapping_errors_go_to_the_dead_letter_and_do_not_block(es: StandIn) -> None:
    async with Harness(es, batch_docs=10) as h:
        h.pipeline.track("f", 0, 0)
        docs = [{"user": "ann"}, {"user": {"name": "bob"}}, {"user": "cid"}]  # 2nd conflicts
        for i, doc in enumerate(docs):
            await h.pipeline.put(Event("f", 0, i * 10, i * 10 + 10, "app", doc_bytes(**doc)))
        await h.settle()
    assert es.count("app") == 2
    assert len(h.dead) == 1
    event, result = h.dead[0]
    assert event.offset == 10 and result.status == 400
    assert h.commits[("f", 0)] == 30  # the dead event counts as acknowledged


async def test_413_splits_the_batch(es: StandIn) -> None:
    es.max_body_bytes = 4000
    async with Harness(es, batch_docs=100, batch_bytes=1 << 20) as h:
        await h.feed(100)
        await h.settle()
    assert es.count("logs") == 100
    assert "splitting" in h.log_stream.getvalue()


async def test_an_event_too_big_alone_is_dead_lettered(es: StandIn) -> None:
    es.max_body_bytes = 2000
    async with Harness(es) as h:
        h.pipeline.track("f", 0, 0)
        await h.pipeline.put(Event("f", 0, 0, 10, "logs", doc_bytes(message="x" * 5000)))
        await h.pipeline.put(Event("f", 0, 10, 20, "logs", doc_bytes(message="small")))
        await h.settle()
    assert es.count("logs") == 1
    assert len(h.dead) == 1 and h.dead[0][1].status == 413
    assert h.commits[("f", 0)] == 20


async def test_dropped_connections_never_duplicate(es: StandIn) -> None:
    es.drop_connections(probability=0.3, after_processing=True)
    async with Harness(es, batch_docs=25) as h:
        await h.feed(300)
        await h.settle()
    assert es.count("logs") == 300  # re-sent events came back 409: stored once


async def test_memory_budget_holds_while_elasticsearch_is_down(es: StandIn) -> None:
    await es.down(None)
    budget = 64 * 1024
    async with Harness(es, batch_docs=50, batch_bytes=16 * 1024, queue_bytes=budget) as h:
        feeder = asyncio.create_task(h.feed(5000))
        await asyncio.sleep(1.0)
        assert not feeder.done()  # the input waits...
        assert h.pipeline.stats.queue_bytes <= budget  # ...instead of memory growing
        peak = h.pipeline.stats.queue_bytes
        await es.up()
        await feeder
        await h.settle(limit=30)
    assert peak > budget // 2
    assert es.count("logs") == 5000


async def test_a_failing_dead_letter_is_retried_and_blocks_nothing_else(es: StandIn) -> None:
    es.fail_items(400, count=1)
    async with Harness(es, batch_docs=10) as h:
        failures = [OSError(28, "No space left on device")] * 2

        async def flaky(event: Event, result: ItemResult) -> None:
            if failures:
                raise failures.pop()
            h.dead.append((event, result))

        h.pipeline.dead_letter = flaky
        end = await h.feed(10)
        await h.settle()
    assert len(h.dead) == 1  # written once the disk had room again
    assert es.count("logs") == 9
    assert h.commits[("file-a", 0)] == end
    assert "dead letter not written: retrying" in h.log_stream.getvalue()
