"""The Elasticsearch stand-in on a real loopback port, through aiohttp and the official client.

The contract tests pin it to Elasticsearch's documented behaviour; the fault tests show each
fault the way a client experiences it. Nothing here sleeps to wait for something to happen:
waits are bounded polls, and latency is only checked as a lower bound.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import elasticsearch
import pytest
import pytest_asyncio
from elasticsearch import AsyncElasticsearch

from agents.testing.elasticsearch import StandIn
from tests.helpers import free_port

pytestmark = pytest.mark.asyncio

NDJSON = {"Content-Type": "application/x-ndjson"}
COMPAT = "application/vnd.elasticsearch+{kind}; compatible-with={n}"
MAY_1_2024 = 1714521600.0  # 2024-05-01T00:00:00Z, dates the backing indices
TIMESTAMP = "2024-05-01T12:00:00.000Z"


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=7, clock=lambda: MAY_1_2024) as standin:
        yield standin


@pytest_asyncio.fixture
async def client(es: StandIn) -> AsyncIterator[AsyncElasticsearch]:
    """The official client with its own retries off, as a shipper owning its policy runs it."""
    c = AsyncElasticsearch(es.url, max_retries=0, retry_on_status=(), request_timeout=10)
    yield c
    await c.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def post_bulk(
    http: aiohttp.ClientSession,
    es: StandIn,
    body: bytes,
    headers: dict[str, str] | None = None,
    path: str = "/_bulk",
) -> tuple[int, Any]:
    async with http.post(es.url + path, data=body, headers=headers or NDJSON) as response:
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


def item(response: dict[str, Any], n: int) -> dict[str, Any]:
    """The n-th bulk item's body, whatever its action."""
    (body,) = response["items"][n].values()
    return body


# -- info and ping -----------------------------------------------------------------------


async def test_info_and_ping_pass_the_official_clients_product_check(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    assert await client.ping() is True
    info = await client.info()
    assert info["version"]["number"] == "8.15.0"
    assert info["tagline"] == "You Know, for Search"
    assert info["cluster_name"] == "standin" and info["cluster_uuid"] and info["name"]
    assert info.meta.headers["X-Elastic-Product"] == "Elasticsearch"


async def test_head_root_answers_without_a_body(es: StandIn, http: aiohttp.ClientSession) -> None:
    async with http.head(es.url + "/") as response:
        assert response.status == 200
        assert response.headers["X-Elastic-Product"] == "Elasticsearch"
        assert await response.read() == b""


async def test_errors_carry_the_product_header_too(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    async with http.get(es.url + "/no-such-index/_search") as response:
        assert response.status == 404
        assert response.headers["X-Elastic-Product"] == "Elasticsearch"
        body = await response.json()
    assert body["error"]["type"] == "index_not_found_exception"
    assert body["error"]["root_cause"][0]["reason"] == "no such index [no-such-index]"
    assert body["status"] == 404


async def test_a_wrong_method_and_an_unknown_path_answer_like_es(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    async with http.get(es.url + "/_bulk") as response:
        assert response.status == 405
        assert (
            "Incorrect HTTP method for uri [/_bulk] and method [GET]"
            in (await response.json())["error"]
        )
    async with http.get(es.url + "/_no_such_api") as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith("no handler found for uri")


# -- the documented bulk example (contract) ------------------------------------------------

DOCUMENTED_REQUEST = b"""\
{ "index" : { "_index" : "test", "_id" : "1" } }
{ "field1" : "value1" }
{ "delete" : { "_index" : "test", "_id" : "2" } }
{ "create" : { "_index" : "test", "_id" : "3" } }
{ "field1" : "value3" }
{ "update" : {"_id" : "1", "_index" : "test"} }
{ "doc" : {"field2" : "value2"} }
"""
# The response the Bulk API reference documents for it (8.x: no _type). Its test harness
# substitutes took, _seq_no and _primary_term with whatever the server sent, so do we.
_SHARDS = {"total": 2, "successful": 1, "failed": 0}
DOCUMENTED_RESPONSE = {
    "took": 30,
    "errors": False,
    "items": [
        {"index": {"_index": "test", "_id": "1", "_version": 1, "result": "created",
                   "_shards": _SHARDS, "status": 201, "_seq_no": 0, "_primary_term": 1}},
        {"delete": {"_index": "test", "_id": "2", "_version": 1, "result": "not_found",
                    "_shards": _SHARDS, "status": 404, "_seq_no": 1, "_primary_term": 2}},
        {"create": {"_index": "test", "_id": "3", "_version": 1, "result": "created",
                    "_shards": _SHARDS, "status": 201, "_seq_no": 2, "_primary_term": 3}},
        {"update": {"_index": "test", "_id": "1", "_version": 2, "result": "updated",
                    "_shards": _SHARDS, "status": 200, "_seq_no": 3, "_primary_term": 4}},
    ],
}  # fmt: skip


def _as_documented(response: dict[str, Any]) -> dict[str, Any]:
    """Apply the docs' TESTRESPONSE substitutions: took, _seq_no, _primary_term are free."""
    out = json.loads(json.dumps(response))
    out["took"] = DOCUMENTED_RESPONSE["took"]
    for mine, theirs in zip(out["items"], DOCUMENTED_RESPONSE["items"], strict=True):
        (body,), (documented,) = mine.values(), theirs.values()
        body["_seq_no"], body["_primary_term"] = documented["_seq_no"], documented["_primary_term"]
    return out


async def test_contract_the_documented_bulk_example_gets_the_documented_response(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    status, response = await post_bulk(http, es, DOCUMENTED_REQUEST)
    assert status == 200
    assert isinstance(response["took"], int)
    assert list(response) == ["took", "errors", "items"]
    seq_nos = [item(response, n)["_seq_no"] for n in range(4)]
    assert seq_nos == sorted(seq_nos) and len(set(seq_nos)) == 4
    assert _as_documented(response) == DOCUMENTED_RESPONSE
    assert es.docs("test") == [
        {"field1": "value3", "_index": "test", "_id": "3"},
        {"field1": "value1", "field2": "value2", "_index": "test", "_id": "1"},
    ]


async def test_contract_holds_through_the_official_client(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    operations = [json.loads(line) for line in DOCUMENTED_REQUEST.splitlines()]
    response = await client.bulk(operations=operations)
    assert _as_documented(response.body) == DOCUMENTED_RESPONSE


# -- bulk semantics ----------------------------------------------------------------------


async def test_bulk_through_the_client_stores_documents(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    response = await client.bulk(
        operations=[
            {"index": {"_index": "app", "_id": "a"}},
            {"message": "one"},
            {"create": {"_index": "app"}},
            {"message": "two"},
        ]
    )
    assert response["errors"] is False
    assert [item(response.body, n)["status"] for n in range(2)] == [201, 201]
    auto_id = item(response.body, 1)["_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", auto_id)
    assert es.docs("app") == [
        {"message": "one", "_index": "app", "_id": "a"},
        {"message": "two", "_index": "app", "_id": auto_id},
    ]
    assert es.count("app") == 2
    (request,) = es.bulk_requests()
    assert request.items == 2 and request.status == 200 and request.content_encoding is None


async def test_the_index_in_the_path_is_the_default_for_items(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    body = ndjson({"index": {"_id": "1"}}, {"a": 1}, {"index": {"_index": "other"}}, {"a": 2})
    status, response = await post_bulk(http, es, body, path="/mine/_bulk")
    assert status == 200
    assert [item(response, n)["_index"] for n in range(2)] == ["mine", "other"]


@pytest.mark.parametrize("compress", [False, True])
async def test_raw_preserialised_ndjson_with_and_without_gzip(
    es: StandIn, http: aiohttp.ClientSession, compress: bool
) -> None:
    lines = []
    for n in range(50):
        lines += [{"create": {"_index": "logs-app-default", "_id": f"doc-{n}"}}]
        lines += [{"@timestamp": TIMESTAMP, "message": f"line {n}"}]
    body = ndjson(*lines)
    headers = dict(NDJSON)
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    status, response = await post_bulk(http, es, body, headers)
    assert status == 200 and response["errors"] is False
    assert es.count("logs-app-default") == 50
    (request,) = es.bulk_requests()
    assert request.body_bytes == len(body) and request.items == 50
    assert request.content_encoding == ("gzip" if compress else None)
    assert (request.decoded_bytes > request.body_bytes) is compress


async def test_the_clients_http_compress_sends_gzip_that_is_decoded(es: StandIn) -> None:
    async with AsyncElasticsearch(es.url, http_compress=True, max_retries=0) as client:
        await client.bulk(operations=[{"index": {"_index": "z", "_id": "1"}}, {"n": 1}])
    assert es.bulk_requests()[0].content_encoding == "gzip"
    assert es.docs("z") == [{"n": 1, "_index": "z", "_id": "1"}]


async def test_an_empty_id_is_refused_per_item_and_nothing_is_stored(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    """Elasticsearch validates each index/create item: an `_id` that is given must not be
    empty (400 on that item, the others stored)."""
    operations = [{"create": {"_index": "app", "_id": ""}}, {"n": 1},
                  {"index": {"_index": "app", "_id": ""}}, {"n": 2},
                  {"create": {"_index": "app", "_id": "ok"}}, {"n": 3}]  # fmt: skip
    response = await client.bulk(operations=operations)
    assert response["errors"] is True
    for n in (0, 1):
        refused = item(response.body, n)
        assert refused["status"] == 400 and refused["_id"] == ""
        assert refused["error"]["type"] == "illegal_argument_exception"
        assert refused["error"]["reason"] == "if _id is specified it must not be empty"
    assert item(response.body, 2)["status"] == 201
    assert es.docs("app") == [{"n": 3, "_index": "app", "_id": "ok"}]


async def test_create_twice_is_a_409_conflict_saying_the_document_exists(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    operations = [{"create": {"_index": "app", "_id": "x1"}}, {"n": 1}]
    first = await client.bulk(operations=operations)
    again = await client.bulk(operations=operations)
    assert item(first.body, 0)["status"] == 201
    conflict = item(again.body, 0)
    assert again["errors"] is True
    assert conflict["status"] == 409 and conflict["_index"] == "app" and conflict["_id"] == "x1"
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == (
        "[x1]: version conflict, document already exists (current version [1])"
    )
    assert conflict["error"]["index"] == "app" and conflict["error"]["shard"] == "0"
    assert es.count("app") == 1


async def test_index_overwrites_with_updated_and_delete_answers_deleted_then_not_found(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    put = [{"index": {"_index": "app", "_id": "k"}}, {"v": 1}]
    delete = [{"delete": {"_index": "app", "_id": "k"}}]
    created = item((await client.bulk(operations=put)).body, 0)
    updated = item((await client.bulk(operations=put)).body, 0)
    deleted = item((await client.bulk(operations=delete)).body, 0)
    missing = await client.bulk(operations=delete)
    assert (created["result"], created["status"], created["_version"]) == ("created", 201, 1)
    assert (updated["result"], updated["status"], updated["_version"]) == ("updated", 200, 2)
    assert (deleted["result"], deleted["status"], deleted["_version"]) == ("deleted", 200, 3)
    assert item(missing.body, 0)["result"] == "not_found" and missing["errors"] is False
    assert es.count("app") == 0


async def test_update_merges_a_partial_document_and_misses_with_404(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    await client.bulk(operations=[{"index": {"_index": "u", "_id": "1"}}, {"a": {"b": 1}, "c": 2}])
    response = await client.bulk(
        operations=[
            {"update": {"_index": "u", "_id": "1"}},
            {"doc": {"a": {"d": 3}}},
            {"update": {"_index": "u", "_id": "nope"}},
            {"doc": {"a": 1}},
        ]
    )
    assert item(response.body, 0)["result"] == "updated"
    missing = item(response.body, 1)
    assert missing["status"] == 404
    assert missing["error"]["type"] == "document_missing_exception"
    assert missing["error"]["reason"] == "[nope]: document missing"
    assert es.docs("u") == [{"a": {"b": 1, "d": 3}, "c": 2, "_index": "u", "_id": "1"}]


# -- data streams --------------------------------------------------------------------------

BACKING = ".ds-logs-app-default-2024.05.01-000001"


async def test_logs_dash_dash_names_are_data_streams_that_take_only_create(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    response = await client.bulk(
        operations=[
            {"index": {"_index": "logs-app-default"}},
            {"@timestamp": TIMESTAMP, "message": "refused"},
            {"create": {"_index": "logs-app-default", "_id": "c1"}},
            {"@timestamp": TIMESTAMP, "message": "kept"},
        ]
    )
    refused, kept = item(response.body, 0), item(response.body, 1)
    assert refused["status"] == 400 and refused["_index"] == "logs-app-default"
    assert refused["error"] == {
        "type": "illegal_argument_exception",
        "reason": "only write ops with an op_type of create are allowed in data streams",
    }
    assert kept["status"] == 201 and kept["_index"] == BACKING
    assert es.docs("logs-app-default") == [
        {"@timestamp": TIMESTAMP, "message": "kept", "_index": BACKING, "_id": "c1"}
    ]
    streams = await client.indices.get_data_stream(name="logs-app-default")
    assert streams["data_streams"][0]["indices"][0]["index_name"] == BACKING


async def test_a_data_stream_document_needs_a_timestamp(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    response = await client.bulk(
        operations=[{"create": {"_index": "logs-app-default", "_id": "t"}}, {"message": "no ts"}]
    )
    failure = item(response.body, 0)
    assert failure["status"] == 400 and failure["_index"] == BACKING and failure["_id"] == "t"
    assert failure["error"]["type"] == "document_parsing_exception"
    assert failure["error"]["reason"].endswith(
        "failed to parse: data stream timestamp field [@timestamp] is missing"
    )
    assert failure["error"]["caused_by"]["type"] == "illegal_argument_exception"
    assert es.count("logs-*") == 0


async def test_other_names_stay_plain_indices(es: StandIn, client: AsyncElasticsearch) -> None:
    response = await client.bulk(operations=[{"index": {"_index": "logs-app"}}, {"m": 1}])
    assert (
        item(response.body, 0)["status"] == 201 and item(response.body, 0)["_index"] == "logs-app"
    )


async def test_the_stack_pipeline_variant_fills_a_missing_timestamp() -> None:
    async with (
        StandIn(fill_missing_timestamp=True, clock=lambda: MAY_1_2024) as es,
        AsyncElasticsearch(es.url, max_retries=0) as client,
    ):
        response = await client.bulk(
            operations=[{"create": {"_index": "logs-app-default"}}, {"message": "x"}]
        )
    assert response["errors"] is False
    assert es.docs("logs-*")[0]["@timestamp"] == "2024-05-01T00:00:00.000Z"


# -- mappings ------------------------------------------------------------------------------


async def test_a_field_changing_from_string_to_object_is_a_mapping_error(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    await client.bulk(operations=[{"index": {"_index": "m"}}, {"user": "alice", "n": 1}])
    response = await client.bulk(
        operations=[
            {"index": {"_index": "m", "_id": "bad"}},
            {"user": {"name": "bob"}},
            {"index": {"_index": "m", "_id": "coerced"}},
            {"user": 42, "n": "12"},
        ]
    )
    bad, coerced = item(response.body, 0), item(response.body, 1)
    assert bad["status"] == 400
    assert bad["error"]["type"] == "document_parsing_exception"
    assert (
        "failed to parse field [user] of type [text] in document with id 'bad'"
        in (bad["error"]["reason"])
    )
    assert coerced["status"] == 201, "ES coerces a number into a text field and '12' into long"
    mapping = await client.indices.get_mapping(index="m")
    assert mapping["m"]["mappings"]["properties"]["user"] == {"type": "text"}


async def test_an_object_where_a_value_was_mapped_is_refused_in_a_data_stream_too(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    doc = {"@timestamp": TIMESTAMP, "service": {"name": "a"}}
    clash = {"@timestamp": TIMESTAMP, "service": "flat"}
    response = await client.bulk(
        operations=[
            {"create": {"_index": "logs-app-default"}},
            doc,
            {"create": {"_index": "logs-app-default"}},
            clash,
        ]
    )
    assert item(response.body, 1)["error"]["reason"].endswith(
        "object mapping for [service] tried to parse field [service] as object, "
        "but found a concrete value"
    )


# -- request-level errors ------------------------------------------------------------------


async def test_a_body_without_the_final_newline_is_refused(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    body = ndjson({"index": {"_index": "a"}}, {"f": 1})[:-1]
    status, response = await post_bulk(http, es, body)
    assert status == 400
    assert response == {
        "error": {
            "root_cause": [
                {
                    "type": "illegal_argument_exception",
                    "reason": "The bulk request must be terminated by a newline [\\n]",
                }
            ],
            "type": "illegal_argument_exception",
            "reason": "The bulk request must be terminated by a newline [\\n]",
        },
        "status": 400,
    }
    assert es.count() == 0


@pytest.mark.parametrize(
    ("body", "error_type", "reason"),
    [
        (b'{"index": {"_index": "a"}\n{"f": 1}\n', "x_content_parse_exception", None),
        (b'{"upsert": {"_index": "a"}}\n{"f": 1}\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected field [create], [delete], [index] or "
         "[update] but found [upsert]"),
        (b'["index"]\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"),
        (b'{"index": {"_index": "a", "_type": "_doc"}}\n{}\n', "illegal_argument_exception",
         "Action/metadata line [1] contains an unknown parameter [_type]"),
        (b'{"delete": {"_index": "a"}}\n', "action_request_validation_exception",
         "Validation Failed: 1: id is missing;"),
        (b"\n", "action_request_validation_exception", "Validation Failed: 1: no requests added;"),
    ],
)  # fmt: skip
async def test_malformed_bulk_bodies_fail_the_whole_request(
    es: StandIn, http: aiohttp.ClientSession, body: bytes, error_type: str, reason: str | None
) -> None:
    status, response = await post_bulk(http, es, body)
    assert status == 400 and response["status"] == 400
    assert response["error"]["type"] == error_type
    assert response["error"]["root_cause"][0]["type"] == error_type
    if reason is not None:
        assert response["error"]["reason"] == reason


async def test_a_malformed_document_fails_only_its_item(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    body = b'{"index":{"_index":"a"}}\n{"broken": \n{"index":{"_index":"a"}}\n{"fine": 1}\n'
    status, response = await post_bulk(http, es, body)
    assert status == 200 and response["errors"] is True
    assert item(response, 0)["error"]["type"] == "document_parsing_exception"
    assert item(response, 1)["status"] == 201


async def test_a_body_needs_a_json_content_type(es: StandIn, http: aiohttp.ClientSession) -> None:
    body = ndjson({"index": {"_index": "a"}}, {"f": 1})
    status, response = await post_bulk(http, es, body, {"Content-Type": "text/plain"})
    assert (status, response) == (
        406,
        {"error": "Content-Type header [text/plain] is not supported", "status": 406},
    )


# -- compatibility headers -----------------------------------------------------------------


def compat_headers(n: int) -> dict[str, str]:
    return {
        "Accept": COMPAT.format(kind="json", n=n),
        "Content-Type": COMPAT.format(kind="x-ndjson", n=n),
    }


async def test_an_es8_stand_in_refuses_compatible_with_9(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    body = ndjson({"index": {"_index": "a"}}, {"f": 1})
    status, response = await post_bulk(http, es, body, compat_headers(9))
    assert status == 400
    assert response["error"]["type"] == "media_type_header_exception"
    assert response["error"]["reason"] == (
        "Invalid media-type value on headers [Accept, Content-Type]"
    )
    assert response["error"]["caused_by"]["reason"].startswith(
        "Accept version must be either version 8 or 7, but found 9."
    )
    for accepted in (7, 8):
        status, _ = await post_bulk(http, es, body, compat_headers(accepted))
        assert status == 200
    assert es.count("a") == 2


async def test_an_es9_stand_in_accepts_9_and_8_and_refuses_7(
    http: aiohttp.ClientSession,
) -> None:
    body = ndjson({"index": {"_index": "a"}}, {"f": 1})
    async with StandIn("9.0.0") as es9:
        assert (await post_bulk(http, es9, body, compat_headers(9)))[0] == 200
        assert (await post_bulk(http, es9, body, compat_headers(8)))[0] == 200
        status, response = await post_bulk(http, es9, body, compat_headers(7))
        assert status == 400
        assert response["error"]["caused_by"]["reason"].startswith(
            "Accept version must be either version 9 or 8, but found 7."
        )
        async with AsyncElasticsearch(es9.url, max_retries=0) as client:  # an 8.x client
            assert (await client.info())["version"]["number"] == "9.0.0"


async def test_the_answer_uses_the_media_type_asked_for(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    async with http.get(es.url + "/", headers={"Accept": COMPAT.format(kind="json", n=8)}) as r:
        assert r.headers["Content-Type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    async with http.get(es.url + "/") as r:
        assert r.headers["Content-Type"] == "application/json"


async def test_mismatched_accept_and_content_type_versions_are_refused(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    headers = {**compat_headers(8), "Accept": COMPAT.format(kind="json", n=7)}
    status, response = await post_bulk(
        http, es, ndjson({"delete": {"_index": "a", "_id": "1"}}), headers
    )
    assert status == 400
    assert "the compatible versions must match" in response["error"]["caused_by"]["reason"]


# -- reads: count, search, mappings ---------------------------------------------------------


async def test_count_and_search_resolve_patterns_and_data_streams(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    operations: list[dict[str, Any]] = []
    for n in range(15):
        operations += [{"create": {"_index": "logs-app-default", "_id": f"{n:02}"}}]
        operations += [{"@timestamp": TIMESTAMP, "n": n}]
    operations += [{"index": {"_index": "other", "_id": "o"}}, {"n": 100}]
    await client.bulk(operations=operations)

    assert (await client.count(index="logs-app-default"))["count"] == 15
    assert (await client.count(index="logs-*"))["count"] == 15
    assert (await client.count())["count"] == 16
    assert (await client.count(index="logs-*,other"))["count"] == 16

    default = await client.search(index="logs-app-default")
    assert default["hits"]["total"] == {"value": 15, "relation": "eq"}
    assert len(default["hits"]["hits"]) == 10  # size defaults to 10
    assert default["hits"]["hits"][0]["_index"] == BACKING
    page = await client.search(
        index="logs-*", size=3, sort=[{"n": "desc"}], query={"match_all": {}}
    )
    assert [hit["_source"]["n"] for hit in page["hits"]["hits"]] == [14, 13, 12]
    term = await client.search(index="*", query={"term": {"n": 100}})
    assert [hit["_id"] for hit in term["hits"]["hits"]] == ["o"]


async def test_an_unmatched_pattern_is_empty_but_a_missing_name_is_404(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    assert (await client.count(index="nothing-*"))["count"] == 0
    with pytest.raises(elasticsearch.NotFoundError) as raised:
        await client.count(index="nothing")
    assert raised.value.error == "index_not_found_exception"


async def test_filter_path_trims_a_bulk_response(es: StandIn, http: aiohttp.ClientSession) -> None:
    body = ndjson({"create": {"_index": "a", "_id": "1"}}, {"f": 1}) * 2
    path = "/_bulk?filter_path=errors,items.*.status,items.*.error.type"
    status, response = await post_bulk(http, es, body, path=path)
    assert status == 200
    assert response == {
        "errors": True,
        "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        ],
    }


# -- index templates -----------------------------------------------------------------------


async def test_index_templates_put_get_head_delete(es: StandIn, client: AsyncElasticsearch) -> None:
    assert (await client.indices.exists_index_template(name="app")).body is False
    await client.indices.put_index_template(
        name="app", index_patterns=["app-*"], priority=200, data_stream={}
    )
    assert (await client.indices.exists_index_template(name="app")).body is True
    got = await client.indices.get_index_template(name="app")
    assert got["index_templates"][0]["index_template"]["index_patterns"] == ["app-*"]
    builtin = await client.indices.get_index_template(name="logs")
    assert builtin["index_templates"][0]["index_template"]["index_patterns"] == ["logs-*-*"]

    # the template makes app-* a data stream
    response = await client.bulk(
        operations=[{"create": {"_index": "app-x"}}, {"@timestamp": TIMESTAMP}]
    )
    assert item(response.body, 0)["_index"] == ".ds-app-x-2024.05.01-000001"
    with pytest.raises(elasticsearch.BadRequestError, match="in use by a data streams"):
        await client.indices.delete_index_template(name="app")

    await client.indices.put_index_template(name="plain", index_patterns=["plain-*"])
    await client.indices.delete_index_template(name="plain")
    with pytest.raises(elasticsearch.NotFoundError):
        await client.indices.get_index_template(name="plain")
    with pytest.raises(elasticsearch.NotFoundError):
        await client.indices.delete_index_template(name="plain")


async def test_a_higher_priority_template_turns_logs_names_into_plain_indices(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    await client.indices.put_index_template(
        name="no-ds",
        index_patterns=["logs-legacy-*"],
        priority=500,
        template={"mappings": {"properties": {"code": {"type": "keyword"}}}},
    )
    response = await client.bulk(
        operations=[{"index": {"_index": "logs-legacy-app"}}, {"code": 404}]
    )
    assert item(response.body, 0)["status"] == 201
    assert item(response.body, 0)["_index"] == "logs-legacy-app"
    mapping = await client.indices.get_mapping(index="logs-legacy-app")
    assert mapping["logs-legacy-app"]["mappings"]["properties"]["code"] == {"type": "keyword"}


async def test_overlapping_templates_need_different_priorities(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    with pytest.raises(elasticsearch.BadRequestError) as raised:
        await client.indices.put_index_template(
            name="mine", index_patterns=["logs-*"], priority=100
        )
    assert "that have the same priority [100]" in str(raised.value.info)


# -- cluster health ------------------------------------------------------------------------


async def test_health_is_green_and_yellow_is_configurable(es: StandIn) -> None:
    async with AsyncElasticsearch(es.url, max_retries=0) as client:
        assert (await client.cluster.health())["status"] == "green"
    async with (
        StandIn(health="yellow") as yellow,
        AsyncElasticsearch(yellow.url, max_retries=0) as client,
    ):
        health = await client.cluster.health()
        assert health["status"] == "yellow" and health["timed_out"] is False
        waited = await client.options(ignore_status=408).cluster.health(
            wait_for_status="green", timeout="50ms"
        )
        assert waited.meta.status == 408 and waited["timed_out"] is True


async def test_waiting_for_green_returns_when_health_turns_green(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    es.set_health("yellow")
    url = es.url + "/_cluster/health?wait_for_status=green&timeout=30s"
    waiting = asyncio.ensure_future(http.get(url))
    await asyncio.sleep(0)  # let the request start waiting (correct either way)
    async with http.post(es.url + "/_standin/health", json={"status": "green"}) as r:
        assert r.status == 200
    async with await asyncio.wait_for(waiting, 10) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "green"


# -- faults, as a client sees them ---------------------------------------------------------

ONE_DOC = [{"create": {"_index": "app", "_id": "1"}}, {"n": 1}]


async def wait_until_listening(url: str, deadline: float = 10.0) -> float:
    """Poll GET / until it answers; how long that took. Bounded, so never hangs a test."""
    started = time.monotonic()
    while True:
        try:
            async with aiohttp.ClientSession() as session, session.get(url + "/") as response:
                if response.status == 200:
                    return time.monotonic() - started
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() - started > deadline:
            raise AssertionError(f"{url} did not come back within {deadline}s")
        await asyncio.sleep(0.02)


async def test_down_refuses_connections_and_up_listens_on_the_same_port(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    port = es.port
    await client.bulk(operations=ONE_DOC)  # a pooled keep-alive connection now exists
    await es.down()
    assert not es.listening
    with pytest.raises(elasticsearch.ConnectionError):
        await client.info()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(es.url + "/")
    await es.up()
    assert es.port == port and es.listening
    assert (await client.info())["version"]["number"] == "8.15.0"
    assert es.count("app") == 1, "documents survive an outage"


async def test_down_for_a_while_comes_back_by_itself(es: StandIn) -> None:
    await es.down(seconds=0.2)
    took = await wait_until_listening(es.url)
    assert took >= 0.1  # it really was down (lower bound only: no upper bound to flake on)


async def test_down_over_http_acknowledges_then_refuses(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    async with http.post(es.url + "/_standin/down", json={"seconds": None}) as response:
        assert (response.status, await response.json()) == (200, {"acknowledged": True})
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await fresh.get(es.url + "/")
    await es.up()
    await wait_until_listening(es.url)


async def test_request_429_has_the_es_rejection_body(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    es.fail_requests(429, count=1)
    with pytest.raises(elasticsearch.ApiError) as raised:
        await client.bulk(operations=ONE_DOC)
    assert raised.value.meta.status == 429
    body = raised.value.body
    assert body["status"] == 429
    assert body["error"]["type"] == "es_rejected_execution_exception"
    assert body["error"]["root_cause"][0]["type"] == "es_rejected_execution_exception"
    assert body["error"]["reason"].startswith("rejected execution of coordinating operation")
    assert es.count() == 0
    assert item((await client.bulk(operations=ONE_DOC)).body, 0)["status"] == 201  # count=1 used


async def test_the_official_transport_retries_429_itself_unless_told_not_to(es: StandIn) -> None:
    es.fail_requests(429, count=2)
    async with AsyncElasticsearch(es.url) as default_client:  # max_retries=3, retries 429
        response = await default_client.bulk(operations=ONE_DOC)
    assert item(response.body, 0)["status"] == 201
    assert [r.status for r in es.bulk_requests()] == [429, 429, 200]


@pytest.mark.parametrize(
    ("status", "error_type"), [(503, "cluster_block_exception"), (500, "exception")]
)
async def test_request_level_5xx_answers_in_es_form(
    es: StandIn, http: aiohttp.ClientSession, status: int, error_type: str
) -> None:
    es.fail_requests(status)
    got, body = await post_bulk(http, es, ndjson(*ONE_DOC))
    assert got == status and body["status"] == status and body["error"]["type"] == error_type
    async with http.get(es.url + "/") as response:
        assert response.status == 200, "scope='bulk' leaves other endpoints alone"


async def test_a_502_comes_from_a_proxy_not_from_es(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    es.fail_requests(502, scope="all")
    async with http.get(es.url + "/") as response:
        assert response.status == 502
        assert "X-Elastic-Product" not in response.headers
        assert response.headers["Content-Type"].startswith("text/html")


async def test_per_item_429_inside_a_200_response(es: StandIn, client: AsyncElasticsearch) -> None:
    es.fail_items(429, count=1)
    response = await client.bulk(
        operations=[
            {"create": {"_index": "app", "_id": "a"}},
            {"n": 1},
            {"create": {"_index": "app", "_id": "b"}},
            {"n": 2},
        ]
    )
    assert response.meta.status == 200 and response["errors"] is True
    rejected, stored = item(response.body, 0), item(response.body, 1)
    assert rejected["status"] == 429 and rejected["_id"] == "a" and rejected["_index"] == "app"
    assert rejected["error"]["type"] == "es_rejected_execution_exception"
    assert stored["status"] == 201
    assert [d["_id"] for d in es.docs("app")] == ["b"]


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (503, None, "unavailable_shards_exception"),
        (400, None, "mapper_parsing_exception"),
        (429, "cluster_block_exception", "cluster_block_exception"),
    ],
)
async def test_other_per_item_failures(
    es: StandIn, client: AsyncElasticsearch, status: int, error_type: str | None, expected: str
) -> None:
    es.fail_items(status, error_type=error_type)
    response = await client.bulk(operations=ONE_DOC)
    failure = item(response.body, 0)
    assert (failure["status"], failure["error"]["type"]) == (status, expected)


async def test_item_failures_with_a_probability_are_reproducible_from_the_seed() -> None:
    operations: list[dict[str, Any]] = []
    for n in range(200):
        operations += [{"create": {"_index": "app", "_id": str(n)}}, {"n": n}]

    async def statuses(seed: int) -> list[int]:
        async with StandIn(seed=seed) as es, AsyncElasticsearch(es.url, max_retries=0) as c:
            es.fail_items(429, probability=0.25)
            response = await c.bulk(operations=operations)
            return [item(response.body, n)["status"] for n in range(200)]

    first, again, other = await statuses(3), await statuses(3), await statuses(4)
    assert first == again
    assert first != other
    assert 20 <= first.count(429) <= 80  # ~50 expected; fixed by the seed anyway
    assert set(first) == {201, 429}


async def test_latency_delays_the_answer(es: StandIn, client: AsyncElasticsearch) -> None:
    es.latency(0.2)
    started = time.monotonic()
    await client.info()
    assert time.monotonic() - started >= 0.2
    es.latency(1.0)
    with pytest.raises(elasticsearch.ConnectionTimeout):
        await client.options(request_timeout=0.2).info()


async def test_a_dropped_connection_is_a_client_error(
    es: StandIn, client: AsyncElasticsearch, http: aiohttp.ClientSession
) -> None:
    es.drop_connections(count=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_bulk(http, es, ndjson(*ONE_DOC))  # POST: aiohttp does not resend it
    # The official client bulks with PUT, which aiohttp resends once by itself on a
    # dropped connection (even with max_retries=0): it takes two drops to see the error.
    es.drop_connections(count=2)
    with pytest.raises(elasticsearch.ConnectionError):
        await client.bulk(operations=ONE_DOC)
    assert es.count() == 0
    assert [r.status for r in es.bulk_requests()] == [None, None, None]
    assert item((await client.bulk(operations=ONE_DOC)).body, 0)["status"] == 201


async def test_dropped_after_processing_the_resend_of_a_create_is_409(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    es.drop_connections(count=1, after_processing=True)
    response = await client.bulk(operations=ONE_DOC)  # aiohttp's own resend of the PUT
    assert item(response.body, 0)["status"] == 409, "stored by the first, unanswered request"
    assert es.count() == 1
    assert [r.status for r in es.bulk_requests()] == [None, 200]

    es.drop_connections(count=1, after_processing=True)
    body = ndjson({"create": {"_index": "app", "_id": "2"}}, {"n": 2})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.post(es.url + "/_bulk", data=body, headers=NDJSON)
    assert es.count() == 2, "stored although the client never heard so"


async def test_over_max_body_bytes_is_413_with_an_empty_body(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    es.max_body_bytes = 1000
    small = ndjson(*ONE_DOC)
    large = ndjson(*[line for n in range(30) for line in ({"index": {"_index": "a"}}, {"n": n})])
    assert len(large) > 1000
    async with http.post(es.url + "/_bulk", data=large, headers=NDJSON) as response:
        assert response.status == 413
        assert await response.read() == b""
    gzipped = gzip.compress(large)
    assert len(gzipped) < 1000, "the limit is on the decoded body, as ES decodes first"
    headers = {**NDJSON, "Content-Encoding": "gzip"}
    async with http.post(es.url + "/_bulk", data=gzipped, headers=headers) as response:
        assert response.status == 413
    assert (await post_bulk(http, es, small))[0] == 200
    es.reset_faults()
    assert es.max_body_bytes == 100 * 1024 * 1024
    assert (await post_bulk(http, es, large))[0] == 200


async def test_reset_faults_and_clear(es: StandIn, client: AsyncElasticsearch) -> None:
    await client.bulk(operations=ONE_DOC)
    es.fail_requests(503, scope="all")
    es.fail_items(429)
    es.latency(0.5)
    es.drop_connections(probability=0.5)
    es.reset_faults()
    assert item((await client.bulk(operations=ONE_DOC)).body, 0)["status"] == 409
    es.clear()
    assert es.count() == 0 and es.requests == []
    assert item((await client.bulk(operations=ONE_DOC)).body, 0)["status"] == 201


# -- the control API for out-of-process users ----------------------------------------------


async def test_faults_and_inspection_over_http(es: StandIn, http: aiohttp.ClientSession) -> None:
    async def control(name: str, args: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with http.post(f"{es.url}/_standin/{name}", json=args or {}) as response:
            return response.status, await response.json()

    assert await control("fail_items", {"status": 429, "count": 1}) == (200, {"acknowledged": True})
    _, response = await post_bulk(
        http, es, ndjson(*ONE_DOC) + ndjson({"index": {"_index": "b"}}, {"m": 2})
    )
    assert [item(response, n)["status"] for n in range(2)] == [429, 201]

    async with http.get(es.url + "/_standin/docs?index=b") as r:
        assert (await r.json())["docs"] == [
            {"m": 2, "_index": "b", "_id": item(response, 1)["_id"]}
        ]
    async with http.get(es.url + "/_standin/count") as r:
        assert await r.json() == {"count": 1}
    async with http.get(es.url + "/_standin/requests") as r:
        (logged,) = (await r.json())["requests"]
    assert (logged["method"], logged["path"], logged["items"], logged["status"]) == (
        "POST", "/_bulk", 2, 200,
    )  # fmt: skip
    assert logged["headers"]["Content-Type"] == "application/x-ndjson"

    assert (await control("fail_requests", {"status": 503, "count": 1}))[0] == 200
    assert (await post_bulk(http, es, ndjson(*ONE_DOC)))[0] == 503
    assert (await control("max_body_bytes", {"bytes": 10}))[0] == 200
    assert (await post_bulk(http, es, ndjson(*ONE_DOC)))[0] == 413
    assert (await control("reset_faults"))[0] == 200
    assert (await control("clear"))[0] == 200
    assert es.count() == 0

    assert (await control("fail_requests", {"status": 418}))[0] == 400
    assert (await control("fail_items", {"probability": 2, "status": 429}))[0] == 400
    assert (await control("no_such_fault"))[0] == 404


# -- the process form ----------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_runs_as_a_process_and_stops_cleanly_on_a_signal(signum: int) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.testing.elasticsearch",
        "--port", str(port), "--version", "9.0.0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}" in line
        async with AsyncElasticsearch(f"http://127.0.0.1:{port}", max_retries=0) as client:
            assert (await client.info())["version"]["number"] == "9.0.0"
            await client.bulk(operations=ONE_DOC)
            assert (await client.count(index="app"))["count"] == 1
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = (await process.stderr.read()).decode()  # type: ignore[union-attr]
        assert "Traceback" not in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("flavor", "version", "said"),
    [("elasticsearch", "7.16.3", b"elasticsearch 7.17, 8 and 9, not 7.16.3"),
     ("elasticsearch", "6", b"elasticsearch 7.17, 8 and 9, not 6"),
     ("opensearch", "4.0.0", b"opensearch 1, 2 and 3, not 4.0.0")],
)  # fmt: skip
async def test_the_process_refuses_an_unsupported_version(
    flavor: str, version: str, said: bytes
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.testing.elasticsearch", "--flavor", flavor,
        "--version", version, "--port", "0", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 2
    assert b"the stand-in plays " + said in stderr


async def test_get_by_id_and_refresh_answer_as_the_documentation_shows(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    """The get API's documented example (`GET my-index-000001/_doc/0`): the document with
    _version, _seq_no, _primary_term and found; 404 with found false when missing, and
    index_not_found_exception for a missing index. `_refresh` answers its shards header."""
    await client.bulk(operations=[{"create": {"_index": "my-index-000001", "_id": "0"}},
                                  {"user": {"id": "kimchy"}}])  # fmt: skip
    found = await client.get(index="my-index-000001", id="0")
    assert found.body == {"_index": "my-index-000001", "_id": "0", "_version": 1,
                          "_seq_no": 0, "_primary_term": 1, "found": True,
                          "_source": {"user": {"id": "kimchy"}}}  # fmt: skip
    with pytest.raises(elasticsearch.NotFoundError) as missing:
        await client.get(index="my-index-000001", id="1")
    assert missing.value.body == {"_index": "my-index-000001", "_id": "1", "found": False}
    with pytest.raises(elasticsearch.NotFoundError) as no_index:
        await client.get(index="nope", id="0")
    assert no_index.value.body["error"]["type"] == "index_not_found_exception"
    refreshed = await client.indices.refresh(index="my-index-000001")
    assert refreshed.body == {"_shards": {"total": 1, "successful": 1, "failed": 0}}
