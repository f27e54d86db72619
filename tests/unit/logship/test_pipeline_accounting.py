"""The pipeline's accounting, against a scripted sender: what it says it holds is events."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from agents._log import Logger
from agents.logship.bulk import Docs, Event
from agents.logship.output.elasticsearch import SendFailed
from agents.logship.pipeline import Pipeline
from agents.testing.aio import until
from agents.testing.sender import ScriptedSender

pytestmark = pytest.mark.asyncio


def run_of(count: int, key: str = "f", width: int = 10) -> Docs:
    """One read's run of `count` events of file `key`, `width` bytes each."""
    events = [Event(key, 0, i * width, (i + 1) * width, "logs", json.dumps({"n": i}).encode())
              for i in range(count)]  # fmt: skip
    entries = [event.ndjson() for event in events]
    action = entries[0].index(b"\n") + 1
    return Docs(key, 0, "logs", "/var/log/f.log", entries=entries,
                starts=[*(e.offset for e in events), count * width],
                action_bytes=action + 1 - len("0"))  # fmt: skip


async def test_unacknowledged_counts_the_events_of_a_run_not_the_run() -> None:
    stream = io.StringIO()
    sender = ScriptedSender([SendFailed("connection refused")] * 1000)
    pipeline = Pipeline(sender, commit=lambda *a: None, dead_letter=None,  # type: ignore[arg-type]
                        log=Logger("t", json_lines=True, stream=stream), retry_base=0.01,
                        retry_cap=0.02, flush_interval=0.01)  # fmt: skip
    pipeline.track("f", 0, 0)
    task = asyncio.create_task(pipeline.run())
    try:
        await pipeline.put_docs(run_of(8))
        pipeline.flush()
        await until(lambda: len(sender.requests) >= 2, "a retry")
        assert pipeline.unacknowledged == 8
        retries = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert retries and all(line["events"] == 8 for line in retries)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_unacknowledged_falls_to_zero_when_stored() -> None:
    sender = ScriptedSender([SendFailed("refused")])
    commits: list[tuple[str, int, int]] = []
    pipeline = Pipeline(sender, commit=lambda *a: commits.append(a), dead_letter=None,  # type: ignore[arg-type]
                        log=Logger("t", stream=io.StringIO()), retry_base=0.01, retry_cap=0.02,
                        flush_interval=0.01)  # fmt: skip
    pipeline.track("f", 0, 0)
    task = asyncio.create_task(pipeline.run())
    try:
        await pipeline.put_docs(run_of(5))
        pipeline.flush()
        await until(lambda: not pipeline.unacknowledged, "every event stored")
        assert commits[-1][2] == 50
        assert [s["n"] for s in sender.sources] == [0, 1, 2, 3, 4] * 2  # once refused, once stored
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
