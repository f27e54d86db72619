"""The stand-in's REST API beyond `_bulk`, tried with the examples of Elasticsearch's own
documentation (create index, index/create a document, get, delete, data streams, index
templates, mappings, `_cat`, search), through the official client where it has the call.
Each test names the documentation page its example comes from.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import elasticsearch
import pytest
import pytest_asyncio
from elasticsearch import AsyncElasticsearch

from agents.testing.elasticsearch import StandIn

pytestmark = pytest.mark.asyncio

MAY_1_2024 = 1714521600.0


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=3, clock=lambda: MAY_1_2024) as standin:
        yield standin


@pytest_asyncio.fixture
async def client(es: StandIn) -> AsyncIterator[AsyncElasticsearch]:
    c = AsyncElasticsearch(es.url, max_retries=0, retry_on_status=(), request_timeout=10)
    yield c
    await c.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str,
               body: Any = None) -> tuple[int, Any]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data else {}
    async with http.request(method, url, data=data, headers=headers) as response:
        raw = await response.read()
        if "json" in response.headers.get("Content-Type", ""):
            return response.status, json.loads(raw)
        return response.status, raw.decode()


def without_shards(body: dict[str, Any]) -> dict[str, Any]:
    """A write answer without `_shards`: the documentation's cluster had its replica
    assigned (successful 2), a one-node cluster does not (successful 1)."""
    return {k: v for k, v in body.items() if k != "_shards"}


# -- indices: "Create index API", "Delete index API" -----------------------------------


async def test_create_index_with_settings_as_documented(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    """`PUT /my-index-000001` with number_of_shards 3 and number_of_replicas 2: the
    documented answer; the settings read back as strings under `index`; a second create
    is resource_already_exists_exception; a name with upper case is refused."""
    created = await client.indices.create(
        index="my-index-000001", settings={"number_of_shards": 3, "number_of_replicas": 2}
    )
    assert created.body == {"acknowledged": True, "shards_acknowledged": True,
                            "index": "my-index-000001"}  # fmt: skip
    shown = await client.indices.get(index="my-index-000001")
    settings = shown["my-index-000001"]["settings"]["index"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "2")
    assert await client.indices.exists(index="my-index-000001")
    with pytest.raises(elasticsearch.BadRequestError) as again:
        await client.indices.create(index="my-index-000001")
    assert again.value.error == "resource_already_exists_exception"
    assert re.fullmatch(r"index \[my-index-000001/[\w-]+\] already exists",
                        again.value.body["error"]["reason"])  # fmt: skip
    with pytest.raises(elasticsearch.BadRequestError) as upper:
        await client.indices.create(index="My-Index")
    assert upper.value.error == "invalid_index_name_exception"
    deleted = await client.indices.delete(index="my-index-000001")
    assert deleted.body == {"acknowledged": True}
    assert not await client.indices.exists(index="my-index-000001")


async def test_create_index_with_mappings_then_documents_must_fit_them(
    es: StandIn, client: AsyncElasticsearch
) -> None:
    """The create-index example with `mappings.properties.field1: text`, and
    "Update mapping API": a new keyword field is added; changing a type is refused."""
    await client.indices.create(index="test", mappings={"properties": {"field1": {"type": "text"}}})
    await client.indices.put_mapping(index="test", properties={"email": {"type": "keyword"}})
    mapping = await client.indices.get_mapping(index="test")
    assert mapping.body == {"test": {"mappings": {"properties": {
        "email": {"type": "keyword"}, "field1": {"type": "text"}}}}}  # fmt: skip
    with pytest.raises(elasticsearch.BadRequestError) as changed:
        await client.indices.put_mapping(index="test", properties={"email": {"type": "long"}})
    assert changed.value.body["error"]["reason"] == (
        "mapper [email] cannot be changed from type [keyword] to [long]"
    )


async def test_a_data_stream_name_cannot_be_created_as_an_index(client: AsyncElasticsearch) -> None:
    with pytest.raises(elasticsearch.BadRequestError) as refused:
        await client.indices.create(index="logs-app-default")
    assert refused.value.body["error"]["reason"] == (
        "cannot create index with name [logs-app-default], because it matches with template "
        "[logs] that creates data streams only, use create data stream api instead"
    )


# -- documents: "Index API", "Create API", "Get API", "Delete API" ---------------------

DOC = {"@timestamp": "2099-11-15T13:12:00", "message": "GET /search HTTP/1.1 200 1070000",
       "user": {"id": "kimchy"}}  # fmt: skip


async def test_index_a_document_with_an_id_as_documented(client: AsyncElasticsearch) -> None:
    """`PUT my-index-000001/_doc/1`: created, version 1; again: updated, version 2."""
    first = await client.index(index="my-index-000001", id="1", document=DOC)
    assert first.meta.status == 201
    assert without_shards(first.body) == {"_index": "my-index-000001", "_id": "1",
                                          "_version": 1, "_seq_no": 0, "_primary_term": 1,
                                          "result": "created"}  # fmt: skip
    assert first.body["_shards"]["failed"] == 0
    second = await client.index(index="my-index-000001", id="1", document=DOC)
    assert second.meta.status == 200
    assert (second["result"], second["_version"], second["_seq_no"]) == ("updated", 2, 1)


async def test_post_without_an_id_makes_one_up(es: StandIn, http: aiohttp.ClientSession) -> None:
    """`POST my-index-000001/_doc/`: an auto-generated 20-character id; `PUT` without an
    id is the wrong method (405)."""
    status, body = await call(http, "POST", f"{es.url}/my-index-000001/_doc/", DOC)
    assert status == 201 and body["result"] == "created"
    assert re.fullmatch(r"[\w-]{20}", body["_id"])
    assert es.docs("my-index-000001") == [{**DOC, "_index": "my-index-000001",
                                           "_id": body["_id"]}]  # fmt: skip
    status, refused = await call(http, "PUT", f"{es.url}/my-index-000001/_doc", DOC)
    assert status == 405 and "allowed: [POST]" in refused["error"]


async def test_create_api_conflicts_when_the_document_exists(
    es: StandIn, client: AsyncElasticsearch, http: aiohttp.ClientSession
) -> None:
    """`PUT my-index-000001/_create/1` twice (and `op_type=create`): 409
    version_conflict_engine_exception, the document left as it was."""
    await client.create(index="my-index-000001", id="1", document=DOC)
    with pytest.raises(elasticsearch.ConflictError) as conflict:
        await client.create(index="my-index-000001", id="1", document={"other": 1})
    error = conflict.value.body["error"]
    assert error["type"] == "version_conflict_engine_exception"
    assert error["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert error["root_cause"][0]["type"] == "version_conflict_engine_exception"
    assert conflict.value.body["status"] == 409
    status, _ = await call(http, "PUT", f"{es.url}/my-index-000001/_doc/1?op_type=create", DOC)
    assert status == 409
    assert [d["user"] for d in es.docs("my-index-000001")] == [{"id": "kimchy"}]


async def test_a_bad_document_is_a_request_error_in_the_single_document_api(
    client: AsyncElasticsearch,
) -> None:
    await client.index(index="typed", id="1", document={"n": 1})
    with pytest.raises(elasticsearch.BadRequestError) as refused:
        await client.index(index="typed", id="2", document={"n": "not a number"})
    assert refused.value.error == "document_parsing_exception"
    assert refused.value.body["error"]["caused_by"]["type"] == "number_format_exception"


async def test_delete_a_document_then_get_it_is_not_found(client: AsyncElasticsearch) -> None:
    """ "Delete API": deleted, version 2; then the get API's 404 found:false and a delete
    of what is gone: 404 not_found."""
    await client.index(index="my-index-000001", id="1", document=DOC)
    deleted = await client.delete(index="my-index-000001", id="1")
    assert (deleted["result"], deleted["_version"]) == ("deleted", 2)
    with pytest.raises(elasticsearch.NotFoundError) as gone:
        await client.get(index="my-index-000001", id="1")
    assert gone.value.body["found"] is False
    with pytest.raises(elasticsearch.NotFoundError) as again:
        await client.delete(index="my-index-000001", id="1")
    assert again.value.body["result"] == "not_found"


# -- data streams: "Set up a data stream", "Create/Get/Delete data stream API" ----------


async def test_data_stream_lifecycle_as_documented(es: StandIn, client: AsyncElasticsearch) -> None:
    """A template with `data_stream: {}`, then `PUT _data_stream/my-data-stream`, get it,
    write to it, delete it (with its backing indices)."""
    with pytest.raises(elasticsearch.BadRequestError) as no_template:
        await client.indices.create_data_stream(name="my-data-stream")
    assert no_template.value.body["error"]["reason"] == (
        "no matching index template found for data stream [my-data-stream]"
    )
    await client.indices.put_index_template(
        name="my-index-template", index_patterns=["my-data-stream*"], data_stream={},
        priority=500,
    )  # fmt: skip
    created = await client.indices.create_data_stream(name="my-data-stream")
    assert created.body == {"acknowledged": True}
    got = await client.indices.get_data_stream(name="my-data-stream")
    (stream,) = got["data_streams"]
    assert stream["name"] == "my-data-stream" and stream["template"] == "my-index-template"
    assert stream["timestamp_field"] == {"name": "@timestamp"} and stream["generation"] == 1
    backing = stream["indices"][0]["index_name"]
    assert backing == ".ds-my-data-stream-2024.05.01-000001"
    with pytest.raises(elasticsearch.BadRequestError) as twice:
        await client.indices.create_data_stream(name="my-data-stream")
    assert twice.value.error == "resource_already_exists_exception"
    await client.create(index="my-data-stream", id="1",
                        document={"@timestamp": "2099-03-08T11:06:07.000Z"})  # fmt: skip
    assert es.count("my-data-stream") == 1
    deleted = await client.indices.delete_data_stream(name="my-data-stream")
    assert deleted.body == {"acknowledged": True}
    assert backing not in es.store.indices and "my-data-stream" not in es.store.data_streams
    with pytest.raises(elasticsearch.NotFoundError) as missing:
        await client.indices.delete_data_stream(name="my-data-stream")
    assert missing.value.error == "resource_not_found_exception"
    with pytest.raises(elasticsearch.NotFoundError):
        await client.indices.get_data_stream(name="my-data-stream")


async def test_a_template_without_data_stream_cannot_make_one(client: AsyncElasticsearch) -> None:
    await client.indices.put_index_template(name="plain", index_patterns=["plain-*"])
    with pytest.raises(elasticsearch.BadRequestError) as refused:
        await client.indices.create_data_stream(name="plain-one")
    assert refused.value.body["error"]["reason"] == (
        "matching index template [plain] for data stream [plain-one] has no data stream template"
    )


# -- index templates: "Create or update index template API", "Get index template API" ---


async def test_template_settings_read_back_as_elasticsearch_stores_them(
    client: AsyncElasticsearch,
) -> None:
    """The documented `template_1` (patterns te*, bar*; number_of_shards 1): GET shows the
    settings nested under `index`, as strings."""
    await client.indices.put_index_template(
        name="template_1", index_patterns=["te*", "bar*"],
        template={"settings": {"number_of_shards": 1, "index.mapping.ignore_malformed": True},
                  "mappings": {"_source": {"enabled": True},
                               "properties": {"host_name": {"type": "keyword"}}}},
    )  # fmt: skip
    got = await client.indices.get_index_template(name="template_1")
    (template,) = got["index_templates"]
    assert template["index_template"]["template"]["settings"] == {
        "index": {"number_of_shards": "1", "mapping": {"ignore_malformed": "true"}}
    }
    assert template["index_template"]["index_patterns"] == ["te*", "bar*"]


async def test_a_template_pattern_matching_nothing_is_404(
    es: StandIn, http: aiohttp.ClientSession
) -> None:
    """`GET _index_template/temp*` when no template matches: 404 with an empty list (the
    REST layer answers NOT_FOUND for an empty answer to a named request); a missing plain
    name is resource_not_found_exception; no name at all is 200."""
    status, body = await call(http, "GET", f"{es.url}/_index_template/temp*")
    assert (status, body) == (404, {"index_templates": []})
    status, body = await call(http, "GET", f"{es.url}/_index_template/nope")
    assert status == 404 and body["error"]["type"] == "resource_not_found_exception"
    status, body = await call(http, "GET", f"{es.url}/_index_template")
    assert status == 200 and [t["name"] for t in body["index_templates"]] == ["logs"]


# -- _cat: "cat count API", "cat indices API" -------------------------------------------


async def test_cat_count_and_indices_as_people_read_them(
    es: StandIn, client: AsyncElasticsearch, http: aiohttp.ClientSession
) -> None:
    """`GET /_cat/count/my-index-000001?v=true`: a header, then epoch, time and count;
    `format=json` the same as strings. `GET /_cat/indices/my-index-*?v=true&s=index`: the
    default columns, one row per index, sorted."""
    for n in range(3):
        await client.index(index="my-index-000001", id=str(n), document={"n": n})
    await client.index(index="my-index-000002", id="0", document={"n": 0})
    status, text = await call(http, "GET", f"{es.url}/_cat/count/my-index-000001?v=true")
    header, row = text.splitlines()
    assert header.split() == ["epoch", "timestamp", "count"]
    assert row.split() == [str(int(MAY_1_2024)), "00:00:00", "3"]
    status, rows = await call(http, "GET", f"{es.url}/_cat/count?format=json")
    assert status == 200
    assert rows == [{"epoch": "1714521600", "timestamp": "00:00:00", "count": "4"}]
    status, text = await call(http, "GET", f"{es.url}/_cat/indices/my-index-*?v=true&s=index")
    assert status == 200
    lines = text.splitlines()
    assert lines[0].split() == ["health", "status", "index", "uuid", "pri", "rep",
                                "docs.count", "docs.deleted", "store.size",
                                "pri.store.size"]  # fmt: skip
    assert [line.split()[2] for line in lines[1:]] == ["my-index-000001", "my-index-000002"]
    assert [line.split()[6] for line in lines[1:]] == ["3", "1"]
    wanted = "format=json&h=index,docs.count&s=index"
    _, rows = await call(http, "GET", f"{es.url}/_cat/indices?{wanted}")
    assert rows == [{"index": "my-index-000001", "docs.count": "3"},
                    {"index": "my-index-000002", "docs.count": "1"}]  # fmt: skip


# -- search: "Search your data", "Match query", "Retrieve selected fields" -------------


async def _messages(client: AsyncElasticsearch) -> None:
    lines = ["this is a test", "Quick brown fox", "a fox-hunting test", "nothing here",
             "Failed to connect to db.internal:5432"]  # fmt: skip
    for n, message in enumerate(lines):
        await client.index(index="my-index-000001", id=str(n),
                           document={"message": message, "n": n,
                                     "user": {"id": "kimchy" if n % 2 else "elkbee",
                                              "description": f"user {n}"}})  # fmt: skip


async def test_match_runs_on_analysed_text(client: AsyncElasticsearch) -> None:
    """The match query's example: `"message": {"query": "this is a test"}` matches any of
    its words (operator or), `operator: and` all of them; case does not matter in text; a
    `term` looks for one token; `.keyword` is the whole value."""
    await _messages(client)

    async def ids(query: dict[str, Any]) -> list[str]:
        found = await client.search(index="my-index-000001", query=query, size=100)
        return sorted(h["_id"] for h in found["hits"]["hits"])

    assert await ids({"match": {"message": {"query": "this is a test"}}}) == ["0", "2"]
    assert await ids({"match": {"message": {"query": "this is a test", "operator": "and"}}}) == [
        "0"
    ]
    assert await ids({"match": {"message": "QUICK"}}) == ["1"]
    assert await ids({"match": {"message": "hunting"}}) == ["2"]  # "fox-hunting" is split
    assert await ids({"match": {"message": "db.internal"}}) == ["4"]  # kept whole
    assert await ids({"term": {"message": "fox"}}) == ["1", "2"]
    assert await ids({"term": {"message": "Quick brown fox"}}) == []
    assert await ids({"term": {"message.keyword": "Quick brown fox"}}) == ["1"]
    assert await ids({"match_phrase": {"message": "brown fox"}}) == ["1"]
    assert await ids({"match_phrase": {"message": "fox brown"}}) == []


async def test_uri_search_with_q(es: StandIn, http: aiohttp.ClientSession,
                                 client: AsyncElasticsearch) -> None:  # fmt: skip
    """ "Search API": `GET /my-index-000001/_search?q=user.id:kimchy`; a bare word searches
    every field; `q=*` everything; AND and - as in the query string syntax."""
    await _messages(client)

    async def ids(q: str) -> list[str]:
        status, body = await call(http, "GET", f"{es.url}/my-index-000001/_search?q={q}&size=50")
        assert status == 200, body
        return sorted(h["_id"] for h in body["hits"]["hits"])

    assert await ids("user.id:kimchy") == ["1", "3"]
    assert await ids("fox") == ["1", "2"]
    assert await ids("*") == ["0", "1", "2", "3", "4"]
    assert await ids("fox AND test") == ["2"]
    assert await ids("test -fox") == ["0"]
    assert await ids('message:"brown fox"') == ["1"]
    status, body = await call(http, "GET", f"{es.url}/my-index-000001/_search?q=n:[1 TO 3]")
    assert status == 400 and body["error"]["type"] == "query_shard_exception"


async def test_sort_and_source_filtering(client: AsyncElasticsearch) -> None:
    """Sort descending on a number; `_source: false`; includes/excludes with wildcards as
    in "Retrieve selected fields" (`"excludes": ["*.description"]`)."""
    await _messages(client)
    found = await client.search(index="my-index-000001", sort=[{"n": "desc"}], size=2,
                                source=False)  # fmt: skip
    assert [h["_id"] for h in found["hits"]["hits"]] == ["4", "3"]
    assert all("_source" not in h for h in found["hits"]["hits"])
    found = await client.search(index="my-index-000001", sort=["n"], size=1,
                                source={"includes": ["user.*"],
                                        "excludes": ["*.description"]})  # fmt: skip
    assert found["hits"]["hits"][0]["_source"] == {"user": {"id": "elkbee"}}
    found = await client.search(index="my-index-000001", sort=["n"], size=1,
                                source_includes=["message"])  # fmt: skip
    assert found["hits"]["hits"][0]["_source"] == {"message": "this is a test"}
