"""The stand-in's pure parts: NDJSON parsing, header checks, the mapping check, the store."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from typing import Any

import pytest

from agents.testing.elasticsearch import (
    BodyTooLarge,
    EsError,
    IndexMapping,
    Rule,
    Store,
    check_document,
    check_media_types,
    decode_body,
    filter_path,
    index_name_problem,
    looks_like_date,
    parse_bulk,
)


def lines(*objs: Any) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def error_of(call: Any, *args: Any) -> EsError:
    with pytest.raises(EsError) as raised:
        call(*args)
    return raised.value


# -- parse_bulk --------------------------------------------------------------------------


def test_actions_sources_and_defaults() -> None:
    body = lines(
        {"index": {"_id": 1}},
        {"a": 1},
        {"delete": {"_index": "x", "_id": "2"}},
        {"update": {"_id": "3"}},
        {"doc": {"b": 2}},
        {"index": {"op_type": "create"}},
        {"c": 3},
    )
    ops = parse_bulk(body, "dflt")
    assert [(o.action, o.index, o.id) for o in ops] == [
        ("index", "dflt", "1"),  # a numeric _id is read as text, like ES
        ("delete", "x", "2"),
        ("update", "dflt", "3"),
        ("create", "dflt", None),  # index with op_type=create is a create
    ]
    assert ops[0].source == b'{"a": 1}' and ops[1].source is None
    assert ops[2].update == {"doc": {"b": 2}}


def test_crlf_and_blank_lines_are_tolerated() -> None:
    body = b'\n{"index":{"_index":"a"}}\r\n{"x":1}\r\n\n'
    (op,) = parse_bulk(body)
    assert op.source == b'{"x":1}' and op.line == 2


def test_an_action_without_its_source_at_the_end_is_dropped_like_es_does() -> None:
    ops = parse_bulk(lines({"delete": {"_index": "a", "_id": "1"}}, {"index": {"_index": "a"}}))
    assert [o.action for o in ops] == ["delete"]


@pytest.mark.parametrize(
    ("body", "error_type", "reason"),
    [
        (b"", "parse_exception", "request body is required"),
        (b'{"index":{}}\n{}', "illegal_argument_exception",
         "The bulk request must be terminated by a newline [\\n]"),
        (b"{}\n", "illegal_argument_exception",
         "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"),
        (b'{"index": "a"}\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found "
         "[VALUE_STRING]"),
        (b'{"index": {"_id": ["a"]}}\n{}\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected a simple value for field [_id] but "
         "found [START_ARRAY]"),
        (b'{"index": {"_index": "a", "refresh": true}}\n{}\n', "illegal_argument_exception",
         "Action/metadata line [1] contains an unknown parameter [refresh]"),
        (b'{"index": {}}\n{}\n', "action_request_validation_exception",
         "Validation Failed: 1: index is missing;"),
        (b'{"update": {"_index": "a"}}\n{"upsert": {}}\n', "action_request_validation_exception",
         "Validation Failed: 1: id is missing;2: script or doc is missing;"),
        (b'{"update": {"_index": "a", "_id": "1"}}\n{"dock": {}}\n', "x_content_parse_exception",
         "[1:2] [UpdateRequest] unknown field [dock]"),
        (b'{"index": {"_index": "a", "_index": "b"}}\n{}\n', "x_content_parse_exception",
         "[1:1] Duplicate field '_index'"),
    ],
)  # fmt: skip
def test_request_level_errors(body: bytes, error_type: str, reason: str) -> None:
    error = error_of(parse_bulk, body)
    assert (error.status, error.type, error.reason) == (400, error_type, reason)


def test_error_bodies_have_es_shape() -> None:
    error = EsError(400, "x", "why", caused_by=EsError(400, "y", "because"), index="i")
    assert error.body() == {
        "error": {
            "root_cause": [{"type": "x", "reason": "why", "index": "i"}],
            "type": "x",
            "reason": "why",
            "index": "i",
            "caused_by": {"type": "y", "reason": "because"},
        },
        "status": 400,
    }


# -- compatibility headers ---------------------------------------------------------------

V = "application/vnd.elasticsearch+json; compatible-with={}"


@pytest.mark.parametrize(
    ("major", "accept", "content_type", "has_body", "ok"),
    [
        (8, None, None, False, True),
        (8, "application/json", "application/json", True, True),
        (8, V.format(8), V.format(8), True, True),
        (8, V.format(7), V.format(7), True, True),
        (8, V.format(9), V.format(9), True, False),
        (8, V.format(9), None, False, False),
        (8, V.format(8), "application/json", True, False),  # both or neither
        (8, V.format(8), V.format(7), True, False),  # must match
        (8, "application/json", V.format(9), False, True),  # no body: Content-Type unread
        (9, V.format(8), V.format(8), True, True),
        (9, V.format(9), V.format(9), True, True),
        (9, V.format(7), V.format(7), True, False),
        (9, V.format(10), None, False, False),
    ],
)
def test_compatible_with_rules(
    major: int, accept: str | None, content_type: str | None, has_body: bool, ok: bool
) -> None:
    versions = (major - 1, major)
    if ok:
        check_media_types(accept, content_type, has_body, versions)
    else:
        error = error_of(check_media_types, accept, content_type, has_body, versions)
        assert error.type == "media_type_header_exception" and error.status == 400
        assert error.caused_by is not None and error.caused_by.type == "status_exception"


# -- the mapping check -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "later", "accepted"),
    [
        ("text", 5, True),
        ("text", True, True),
        ("text", {"a": 1}, False),
        ({"a": 1}, "flat", False),
        (1, 2.5, True),  # long takes a float (truncates)
        (1, "12", True),  # and a numeric string
        (1, "twelve", False),
        (1, True, False),
        (1.5, 2, True),
        (True, "false", True),
        (True, "yes", False),
        (True, 1, False),
        ("2024-05-01T10:00:00Z", "2024-05-02", True),  # dynamic date detection
        ("2024-05-01T10:00:00Z", 1714521600000, True),  # epoch millis
        ("2024-05-01T10:00:00Z", "soon", False),
        (None, {"a": 1}, True),  # null maps nothing
        ([1, 2], 3, True),  # arrays are several values of one field
        ([], "x", True),
    ],
)
def test_conflicts_are_what_es_itself_refuses(first: Any, later: Any, accepted: bool) -> None:
    mapping = IndexMapping()
    mapping.fields.update(check_document(mapping, {"f": first}, "1", b"{}"))
    if accepted:
        check_document(mapping, {"f": later}, "2", b"{}")
    else:
        error = error_of(check_document, mapping, {"f": later}, "2", b'{"f": 0}')
        assert (error.status, error.type) == (400, "document_parsing_exception")
        assert error.reason.startswith("[1:2] ")


def test_dotted_names_are_object_paths() -> None:
    mapping = IndexMapping()
    mapping.fields.update(check_document(mapping, {"log.level": "info"}, "1", b"{}"))
    assert mapping.fields == {"log": "object", "log.level": "text"}
    check_document(mapping, {"log": {"level": "warn"}}, "2", b"{}")
    error = error_of(check_document, mapping, {"log": "flat"}, "3", b"{}")
    assert "object mapping for [log]" in error.reason
    flat = IndexMapping(fields={"host": "keyword"})
    error = error_of(check_document, flat, {"host.name": "a"}, "4", b"{}")
    assert "Existing mapping for [host] must be of type object but found [keyword]" in (
        error.reason
    )


def test_ignore_malformed_drops_scalar_misfits_but_not_in_timestamp() -> None:
    mapping = IndexMapping(fields={"n": "long", "@timestamp": "date"}, ignore_malformed=True)
    check_document(mapping, {"n": "abc", "@timestamp": "2024-05-01"}, "1", b"{}")
    with pytest.raises(EsError):
        check_document(mapping, {"@timestamp": "later"}, "2", b"{}")


def test_strict_dynamic_mapping_refuses_new_fields() -> None:
    mapping = IndexMapping(fields={"a": "keyword"}, dynamic="strict")
    check_document(mapping, {"a": "x"}, "1", b"{}")
    error = error_of(check_document, mapping, {"b": 1}, "2", b'{"b": 1}')
    assert error.type == "strict_dynamic_mapping_exception"


@pytest.mark.parametrize(
    ("text", "is_date"),
    [
        ("2024-05-01", True),
        ("2024-05-01T10:00", True),
        ("2024-05-01T10:00:00.123456789+02:00", True),
        ("2024/05/01 10:00:00", True),
        ("2024-13-01", False),
        ("05/01/2024", False),
        ("1714521600", False),
    ],
)
def test_dynamic_date_detection(text: str, is_date: bool) -> None:
    assert looks_like_date(text) is is_date


# -- bodies, names, filters, rules -------------------------------------------------------


def test_decode_body_handles_gzip_and_deflate_within_the_limit() -> None:
    raw = b'{"index":{}}\n' * 100
    assert decode_body(gzip.compress(raw), "gzip", 10_000) == raw
    assert decode_body(zlib.compress(raw), "deflate", 10_000) == raw
    assert decode_body(raw, None, 10_000) == raw
    with pytest.raises(BodyTooLarge):
        decode_body(gzip.compress(raw), "gzip", 100)
    assert error_of(decode_body, b"not gzip", "gzip", 100).status == 400
    assert error_of(decode_body, raw, "br", 10_000).status == 400


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("logs-app-default", None),
        ("Logs", "must be lowercase"),
        ("a*b", "must not contain"),
        ("_private", "must not start with"),
        ("..", "must not be '.' or '..'"),
    ],
)
def test_index_names(name: str, problem: str | None) -> None:
    found = index_name_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_filter_path_wildcards_and_arrays() -> None:
    response = {
        "took": 3,
        "errors": True,
        "items": [
            {"create": {"_id": "1", "status": 201}},
            {"create": {"_id": "2", "status": 429, "error": {"type": "x", "reason": "y"}}},
        ],
    }
    assert filter_path(response, "items.*.error") == {
        "items": [{"create": {"error": {"type": "x", "reason": "y"}}}]
    }
    assert filter_path(response, "took,**.type") == {
        "took": 3,
        "items": [{"create": {"error": {"type": "x"}}}],
    }
    assert filter_path(response, "nothing") == {}


def test_rules_count_down_and_probabilities_follow_the_seed() -> None:
    rng = random.Random(1)
    twice = Rule(count=2)
    assert [twice.fires(rng) for _ in range(4)] == [True, True, False, False]
    draws = [Rule(probability=0.5).fires(random.Random(9)) for _ in range(3)]
    assert len(set(draws)) == 1, "one seed, one decision"
    with pytest.raises(ValueError, match="probability"):
        Rule(probability=1.5)


# -- the store ---------------------------------------------------------------------------


def store() -> Store:
    return Store(rng=random.Random(0), clock=lambda: 1714521600.0)


def first(response: dict[str, Any]) -> dict[str, Any]:
    (body,) = response["items"][0].values()
    return body


def test_versions_continue_across_a_delete() -> None:
    s = store()
    put = lines({"index": {"_index": "a", "_id": "1"}}, {"v": 1})
    delete = lines({"delete": {"_index": "a", "_id": "1"}})
    versions = [first(s.bulk(parse_bulk(b)))["_version"] for b in (put, delete, put)]
    assert versions == [1, 2, 3]


def test_an_update_that_changes_nothing_is_a_noop() -> None:
    s = store()
    s.bulk(parse_bulk(lines({"index": {"_index": "a", "_id": "1"}}, {"v": 1})))
    result = first(
        s.bulk(parse_bulk(lines({"update": {"_index": "a", "_id": "1"}}, {"doc": {"v": 1}})))
    )
    assert (result["result"], result["_version"], result["status"]) == ("noop", 1, 200)


def test_upserts_create_missing_documents() -> None:
    s = store()
    body = lines(
        {"update": {"_index": "a", "_id": "1"}},
        {"doc": {"v": 1}, "doc_as_upsert": True},
        {"update": {"_index": "a", "_id": "2"}},
        {"doc": {"v": 2}, "upsert": {"v": 0}},
    )
    response = s.bulk(parse_bulk(body))
    assert [next(iter(i.values()))["status"] for i in response["items"]] == [201, 201]
    assert {d: doc.source for _, d, doc in s.documents("a")} == {"1": {"v": 1}, "2": {"v": 0}}


def test_writing_to_a_backing_index_directly_is_refused_but_delete_works() -> None:
    s = store()
    created = first(
        s.bulk(parse_bulk(lines({"create": {"_index": "logs-a-b", "_id": "1"}}, {"@timestamp": 1})))
    )
    backing = created["_index"]
    assert backing == ".ds-logs-a-b-2024.05.01-000001"
    refused = first(s.bulk(parse_bulk(lines({"create": {"_index": backing}}, {"@timestamp": 1}))))
    assert (
        refused["status"] == 400
        and "targeting backing indices is disallowed" in (refused["error"]["reason"])
    )
    deleted = first(s.bulk(parse_bulk(lines({"delete": {"_index": backing, "_id": "1"}}))))
    assert deleted["result"] == "deleted"


def test_patterns_skip_hidden_indices_but_reach_data_streams() -> None:
    s = store()
    s.bulk(parse_bulk(lines({"create": {"_index": "logs-a-b"}}, {"@timestamp": 1})))
    s.bulk(parse_bulk(lines({"index": {"_index": ".hidden"}}, {"x": 1})))
    assert s.resolve("*") == [".ds-logs-a-b-2024.05.01-000001"]
    assert s.resolve(".h*") == [".hidden"]
    assert error_of(s.resolve, "missing").status == 404


def test_older_versions_call_a_bad_document_a_mapper_parsing_exception() -> None:
    s = Store(version="8.7.1", rng=random.Random(0))
    s.bulk(parse_bulk(lines({"index": {"_index": "a"}}, {"f": "x"})))
    failed = first(s.bulk(parse_bulk(lines({"index": {"_index": "a"}}, {"f": {"o": 1}}))))
    assert failed["error"]["type"] == "mapper_parsing_exception"
