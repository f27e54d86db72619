import json

import pytest

from agents.logship.bulk import (
    Event,
    Verdict,
    build_body,
    classify_item,
    classify_response,
)


def event(offset: int = 0) -> Event:
    return Event("abc", 0, offset, offset + 10, "logs-2026.11.21", b'{"message":"hi"}')


def test_body_is_ndjson_create_with_deterministic_ids() -> None:
    body = build_body([event(0), event(10)])
    assert body.endswith(b"\n")
    lines = body.split(b"\n")[:-1]
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert first == {"create": {"_index": "logs-2026.11.21", "_id": "abc-0-0"}}
    assert json.loads(lines[1]) == {"message": "hi"}
    assert json.loads(lines[2])["create"]["_id"] == "abc-0-a"
    assert build_body([event(0)]) == build_body([event(0)])


def item(status: int, error_type: str = "", reason: str = "") -> dict:  # type: ignore[type-arg]
    body: dict = {"_index": "i", "_id": "x", "status": status}  # type: ignore[type-arg]
    if error_type:
        body["error"] = {"type": error_type, "reason": reason}
    return {"create": body}


@pytest.mark.parametrize(
    ("entry", "verdict"),
    [
        (item(201), Verdict.STORED),
        (item(200), Verdict.STORED),
        (item(409, "version_conflict_engine_exception"), Verdict.STORED),
        (item(429, "es_rejected_execution_exception"), Verdict.RETRY),
        (item(429, "cluster_block_exception"), Verdict.RETRY),
        (item(503, "unavailable_shards_exception"), Verdict.RETRY),
        (item(500, "exception"), Verdict.RETRY),
        (item(400, "document_parsing_exception", "failed to parse field"), Verdict.DEAD),
        (item(400, "mapper_parsing_exception"), Verdict.DEAD),
        (item(404, "index_not_found_exception"), Verdict.DEAD),
        (item(409, "something_else"), Verdict.DEAD),
        ({"create": {"_id": "x"}}, Verdict.RETRY),
        ({"create": "nonsense"}, Verdict.RETRY),
        ([], Verdict.RETRY),
    ],
)
def test_item_verdicts(entry: object, verdict: Verdict) -> None:
    assert classify_item(entry).verdict is verdict


def test_dead_items_keep_their_reason() -> None:
    result = classify_item(item(400, "document_parsing_exception", "failed to parse [n]"))
    assert (result.status, result.error_type, result.reason) == (
        400, "document_parsing_exception", "failed to parse [n]",
    )  # fmt: skip


def test_a_response_with_the_wrong_item_count_retries_everything() -> None:
    results = classify_response({"errors": False, "items": [item(201)]}, 2)
    assert [r.verdict for r in results] == [Verdict.RETRY, Verdict.RETRY]
    assert "1 items for 2 events" in results[0].reason
    assert classify_response("garbage", 1)[0].verdict is Verdict.RETRY


def test_mixed_response() -> None:
    body = {"errors": True, "items": [item(201), item(429, "es_rejected_execution_exception"),
                                      item(400, "document_parsing_exception")]}  # fmt: skip
    assert [r.verdict for r in classify_response(body, 3)] == [
        Verdict.STORED, Verdict.RETRY, Verdict.DEAD,
    ]  # fmt: skip


def test_docs_slices_are_the_runs_events_in_order() -> None:
    from agents.logship.bulk import Docs

    entries = [b'{"create":{"_id":"k-0-%x"}}\n{"m":%d}\n' % (o, o) for o in (0, 20, 45, 70)]
    docs = Docs("k", 0, "logs", "/x", entries=entries, starts=[0, 20, 45, 70, 99],
                action_bytes=len(b'{"create":{"_id":"k-0-"}}\n') + 1)  # fmt: skip
    parts = [docs.slice(0, 1), docs.slice(1, 3), docs.slice(3, 4)]
    assert b"".join(p.body for p in parts) == docs.body
    assert [(p.start, p.end, len(p)) for p in parts] == [(0, 20, 1), (20, 70, 2), (70, 99, 1)]
    assert [p.event(i).doc for p in parts for i in range(len(p))] == [
        docs.event(i).doc for i in range(4)
    ]
    assert parts[1].source_bytes(0, 2) == docs.source_bytes(1, 3)
