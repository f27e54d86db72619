import io
import json
from pathlib import Path

import pytest

from agents._log import Logger
from agents.logship.bulk import Event, ItemResult, Verdict
from agents.logship.output.deadletter import FILENAME, DeadLetterFile, DeadLetterIndex, wrap
from agents.logship.output.elasticsearch import Answer, SendFailed

REFUSED = ItemResult(
    Verdict.DEAD, 400, "failed to parse field [user]", "document_parsing_exception"
)


def event() -> Event:
    doc = b'{"@timestamp":"2026-01-01T00:00:00.000Z","message":"two","user":{"name":"bob"}}'
    return Event("key", 2, 34, 80, "logship-2026.01.01", doc, "/var/log/app.log")


def test_wrap_keeps_the_document_as_one_string_and_the_id() -> None:
    letter = wrap(event(), REFUSED, "dead-letters", 0.0)
    assert letter.index == "dead-letters" and letter.id == event().id
    assert (letter.key, letter.generation, letter.offset, letter.end) == ("key", 2, 34, 80)
    doc = json.loads(letter.doc)
    assert doc["@timestamp"] == "1970-01-01T00:00:00.000Z"
    assert doc["event"] == {"kind": "pipeline_error", "original": event().doc.decode()}
    assert doc["error"] == {"type": "document_parsing_exception",
                            "message": "failed to parse field [user]", "code": "400"}  # fmt: skip
    assert doc["log"] == {"file": {"path": "/var/log/app.log"}, "offset": 34}
    assert doc["labels"] == {"target_index": "logship-2026.01.01", "target_id": "key-2-22"}
    # strings everywhere but log.offset: nothing left to conflict with a mapping
    assert {type(v) for v in doc["error"].values()} == {str}


def test_wrap_names_a_request_level_refusal_by_its_status() -> None:
    result = ItemResult(Verdict.DEAD, 413, "HTTP 413 for a single event")
    assert json.loads(wrap(event(), result, "dl", 0.0).doc)["error"]["type"] == "http_413"


def bulk_answer(status: int, error_type: str = "") -> Answer:
    item: dict[str, object] = {"_index": "dead-letters", "_id": "key-2-22", "status": status}
    if error_type:
        item["error"] = {"type": error_type, "reason": "no"}
    return Answer(200, {"errors": bool(error_type), "items": [{"create": item}]})


class FakeSender:
    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []

    async def send(self, body: bytes) -> Answer:
        self.bodies.append(body)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def dead_letters(sender: FakeSender, tmp_path: Path) -> DeadLetterIndex:
    return DeadLetterIndex(sender, "dead-letters", fallback=DeadLetterFile(tmp_path),
                           log=Logger("t", stream=io.StringIO()), retry_base=0.001)  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "stored", [bulk_answer(201), bulk_answer(409, "version_conflict_engine_exception")]
)
async def test_a_stored_dead_letter_stays_out_of_the_file(tmp_path: Path, stored: Answer) -> None:
    sender = FakeSender(stored)
    await dead_letters(sender, tmp_path).write(event(), REFUSED)
    action, source = sender.bodies[0].splitlines()
    assert json.loads(action) == {"create": {"_index": "dead-letters", "_id": "key-2-22"}}
    assert json.loads(source)["event"]["original"] == event().doc.decode()
    assert not (tmp_path / FILENAME).exists()


@pytest.mark.asyncio
async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    rejected = bulk_answer(429, "es_rejected_execution_exception")
    sender = FakeSender(SendFailed("refused"), Answer(503, {}), rejected, bulk_answer(201))
    await dead_letters(sender, tmp_path).write(event(), REFUSED)
    assert len(sender.bodies) == 4 and len(set(sender.bodies)) == 1
    assert not (tmp_path / FILENAME).exists()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (bulk_answer(400, "strict_dynamic_mapping_exception"), "strict_dynamic_mapping_exception"),
        (bulk_answer(403, "security_exception"), "security_exception"),
        (Answer(413, None), "HTTP 413"),
    ],
)
async def test_a_refused_dead_letter_goes_to_the_file(
    tmp_path: Path, answer: Answer, why: str
) -> None:
    await dead_letters(FakeSender(answer), tmp_path).write(event(), REFUSED)
    (record,) = [json.loads(x) for x in (tmp_path / FILENAME).read_text().splitlines()]
    assert record["document"] == event().doc.decode() and record["status"] == 400
    assert record["reason"] == "failed to parse field [user]"
    assert why in record["dead_letter_index_error"]
