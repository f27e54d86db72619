"""One classifier of Elasticsearch's answers, one retry policy: bulk requests, the index
template and the dead-letter index all treat an answer alike."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from agents._log import Logger
from agents.logship.bulk import Event, ItemResult, Verdict
from agents.logship.output.answers import Kind, Retry, ask, error_reason, kind_of
from agents.logship.output.deadletter import DeadLetterFile, DeadLetterIndex
from agents.logship.output.elasticsearch import Answer, SendFailed
from agents.logship.output.template import Template, TemplateRefused, install_template
from agents.logship.pipeline import Pipeline
from agents.testing.aio import until
from agents.testing.sender import ScriptedSender, error, stored


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, Kind.OK), (201, Kind.OK), (400, Kind.REJECTED), (413, Kind.REJECTED),
     (401, Kind.DENIED), (403, Kind.DENIED), (404, Kind.BUSY), (405, Kind.BUSY),
     (408, Kind.BUSY), (429, Kind.BUSY), (500, Kind.BUSY), (502, Kind.BUSY),
     (503, Kind.BUSY), (504, Kind.BUSY)],
)  # fmt: skip
def test_every_status_has_one_meaning(status: int, kind: Kind) -> None:
    assert kind_of(status) is kind


def test_error_reason_from_an_error_body() -> None:
    body = {"error": {"type": "illegal_argument_exception", "reason": "patterns overlap"}}
    assert error_reason(body) == "illegal_argument_exception: patterns overlap"
    assert error_reason({"error": "no handler found", "status": 400}) == "no handler found"
    assert error_reason("<html>502</html>") == "<html>502</html>"
    assert error_reason(None) == ""


@pytest.mark.asyncio
async def test_no_answer_is_unreachable_with_its_cause() -> None:
    async def refused() -> Answer:
        raise SendFailed("connection refused")

    reply = await ask(refused)
    assert reply.kind is Kind.UNREACHABLE and reply.status == 0
    assert reply.reason == "connection refused"


@pytest.mark.asyncio
async def test_retry_pauses_grow_and_start_over_after_progress() -> None:
    waits: list[float] = []
    out = io.StringIO()
    retry = Retry(Logger("t", json_lines=True, stream=out), base=0.001, cap=0.004)
    for _ in range(4):
        await retry.pause("nope", "503", attempt_of="x")
        waits.append(retry.backoff.ceiling())
    assert waits == [0.002, 0.004, 0.004, 0.004]
    retry.progress()
    assert retry.backoff.ceiling() == 0.001
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["error"] for line in lines] == ["503"] * 4 and retry.attempts == 4


# --- the three callers agree ---------------------------------------------------------


def event() -> Event:
    return Event("f", 0, 0, 10, "logs", b'{"message":"x"}', "/var/log/app.log")


async def bulk_outcome(first: Answer) -> str:
    """'retried' or 'final' for a bulk request of one event answered `first`."""
    sender = ScriptedSender([first])
    dead: list[ItemResult] = []

    async def dead_letter(_: Event, result: ItemResult) -> None:
        dead.append(result)

    pipeline = Pipeline(sender, commit=lambda *a: None, dead_letter=dead_letter,
                        log=Logger("t", stream=io.StringIO()), retry_base=0.001,
                        retry_cap=0.001, flush_interval=0.001)  # fmt: skip
    pipeline.track("f", 0, 0)
    task = asyncio.create_task(pipeline.run())
    try:
        await pipeline.put(event())
        await until(lambda: not pipeline.unacknowledged, "the event acknowledged")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return "final" if dead else "retried"


async def template_outcome(first: Answer) -> str:
    sender = ScriptedSender([first, Answer(200, {"acknowledged": True})])

    class Client:
        async def put_template(self, name: str, body: dict[str, Any]) -> Answer:
            return await sender.send(b"")

    template = Template("logship", {"index_patterns": ["x-*"]}, Path("/etc/t/logship.json"))
    try:
        await install_template(Client(), template, Logger("t", stream=io.StringIO()),
                               retry_base=0.001, retry_cap=0.001)  # fmt: skip
    except TemplateRefused:
        return "final"
    return "retried"


async def dead_letter_outcome(first: Answer, tmp: Path) -> str:
    sender = ScriptedSender([first, stored(1)])
    index = DeadLetterIndex(sender, "dead", fallback=DeadLetterFile(tmp),
                            log=Logger("t", stream=io.StringIO()), retry_base=0.001,
                            retry_cap=0.001)  # fmt: skip
    await index.write(event(), ItemResult(Verdict.DEAD, 400, "mapper_parsing_exception"))
    return "final" if (tmp / "dead-letter.ndjson").exists() else "retried"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(error(401), "retried"), (error(403), "retried"), (error(429), "retried"),
     (error(503), "retried"), (error(404, "not_found"), "retried"), (error(400), "final"),
     (Answer(413, ""), "final")],
)  # fmt: skip
async def test_bulk_template_and_dead_letter_index_treat_an_answer_alike(
    answer: Answer, outcome: str, tmp_path: Path
) -> None:
    assert await bulk_outcome(answer) == outcome
    assert await template_outcome(answer) == outcome
    assert await dead_letter_outcome(answer, tmp_path) == outcome
