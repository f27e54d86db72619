"""The stand-in as each server it plays: Elasticsearch 7.17, 8, 9 and OpenSearch 1, 2, 3.
What differs is checked against the official clients where they have an opinion
(elasticsearch-py 8, opensearch-py), and against `agents.testing.elasticsearch.flavors`'s
sources where they do not.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import elasticsearch
import pytest
import pytest_asyncio
from elasticsearch import AsyncElasticsearch
from opensearchpy import AsyncOpenSearch

from agents.testing.elasticsearch import StandIn

pytestmark = pytest.mark.asyncio

MAY_1_2024 = 1714521600.0
SERVERS = [("elasticsearch", "7"), ("elasticsearch", "8"), ("elasticsearch", "9"),
           ("opensearch", "1"), ("opensearch", "2"), ("opensearch", "3")]  # fmt: skip
NDJSON = {"Content-Type": "application/x-ndjson"}
VND = "application/vnd.elasticsearch+{kind}; compatible-with={n}"


@pytest_asyncio.fixture(params=SERVERS, ids=[f"{f}-{v}" for f, v in SERVERS])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[StandIn]:
    flavor, version = request.param
    async with StandIn(version, flavor=flavor, seed=5, clock=lambda: MAY_1_2024) as es:
        yield es


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    async with http.request(method, url, data=body, headers=headers or {}) as response:
        raw = await response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return response.status, parsed, dict(response.headers)


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def test_the_root_document_names_the_distribution(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    status, root, headers = await call(http, "GET", server.url + "/")
    assert status == 200
    version = root["version"]
    assert version["number"].split(".")[0] == str(server.major)
    if server.profile.opensearch:
        assert version["distribution"] == "opensearch" and "build_flavor" not in version
        assert root["tagline"] == "The OpenSearch Project: https://opensearch.org/"
        assert "X-Elastic-Product" not in headers
    else:
        assert "distribution" not in version and version["build_flavor"] == "default"
        assert root["tagline"] == "You Know, for Search"
        assert headers["X-Elastic-Product"] == "Elasticsearch"
    if (server.profile.flavor, server.major) == ("elasticsearch", 7):
        assert server.version.startswith("7.17.")


async def test_media_types_each_server_takes_and_refuses(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    """Plain JSON and NDJSON everywhere; `compatible-with=8` on ES 8 and 9, answered in
    kind; ES 7.17 takes it and answers plain 7.x JSON; OpenSearch does not know the type
    (406 for a body); `compatible-with=7` is refused by ES 9."""
    body = ndjson({"create": {"_index": "app", "_id": "1"}}, {"n": 1})
    status, _, _ = await call(http, "POST", server.url + "/_bulk", body, NDJSON)
    assert status == 200
    vnd = {"Content-Type": VND.format(kind="x-ndjson", n=8),
           "Accept": VND.format(kind="json", n=8)}  # fmt: skip
    body = ndjson({"create": {"_index": "app", "_id": "2"}}, {"n": 2})
    status, answer, headers = await call(http, "POST", server.url + "/_bulk", body, vnd)
    if server.profile.opensearch:
        refused = f"Content-Type header [{vnd['Content-Type']}] is not supported"
        assert (status, answer) == (406, {"error": refused, "status": 406})
        status, _, _ = await call(http, "GET", server.url + "/", None, {"Accept": vnd["Accept"]})
        assert status == 200  # an Accept it does not know is ignored
        return
    assert status == 200 and answer["errors"] is False
    if server.major == 7:
        assert headers["Content-Type"].startswith("application/json")
    else:
        assert headers["Content-Type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    old = {"Accept": VND.format(kind="json", n=7)}
    status, answer, _ = await call(http, "GET", server.url + "/", None, old)
    if server.major == 9:
        assert status == 400 and answer["error"]["type"] == "media_type_header_exception"
        assert answer["error"]["caused_by"]["reason"].startswith(
            "Accept version must be either version 9 or 8, but found 7."
        )
    else:
        assert status == 200


async def test_write_answers_carry_type_where_the_version_did(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    body = ndjson({"create": {"_index": "app", "_id": "1"}}, {"n": 1},
                  {"create": {"_index": "app", "_id": "1"}}, {"n": 1})  # fmt: skip
    _, answer, _ = await call(http, "POST", server.url + "/_bulk", body, NDJSON)
    stored, conflict = (item["create"] for item in answer["items"])
    typed = server.major == 7 or (server.profile.opensearch and server.major == 1)
    assert ("_type" in stored, "_type" in conflict) == (typed, typed)
    assert conflict["status"] == 409


async def test_logs_names_are_data_streams_only_where_a_template_says_so(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    """ES has the built-in logs-*-* template: a create to logs-app-default makes a data
    stream (backing index dated). OpenSearch has none: the same create makes a plain
    index, until a template with `data_stream: {}` exists (backing index not dated)."""
    doc = {"@timestamp": "2024-05-01T12:00:00Z", "message": "hello"}
    body = ndjson({"create": {"_index": "logs-app-default"}}, doc)
    _, answer, _ = await call(http, "POST", server.url + "/_bulk", body, NDJSON)
    landed = answer["items"][0]["create"]["_index"]
    if not server.profile.opensearch:
        assert landed == ".ds-logs-app-default-2024.05.01-000001"
        return
    assert landed == "logs-app-default" and not server.store.data_streams
    template = json.dumps({"index_patterns": ["logs-web-*"], "data_stream": {}}).encode()
    status, _, _ = await call(http, "PUT", server.url + "/_index_template/logs-web", template,
                              {"Content-Type": "application/json"})  # fmt: skip
    assert status == 200
    body = ndjson({"create": {"_index": "logs-web-default"}}, doc)
    _, answer, _ = await call(http, "POST", server.url + "/_bulk", body, NDJSON)
    assert answer["items"][0]["create"]["_index"] == ".ds-logs-web-default-000001"
    status, streams, _ = await call(http, "GET", server.url + "/_data_stream/logs-web-default")
    (stream,) = streams["data_streams"]
    assert stream["template"] == "logs-web" and "hidden" not in stream


async def test_has_privileges_is_an_elasticsearch_api(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    server.security(users={"shipper": "pw"})
    auth = "Basic " + base64.b64encode(b"shipper:pw").decode()
    status, answer, _ = await call(
        http, "POST", server.url + "/_security/user/_has_privileges", b"{}",
        {"Authorization": auth, "Content-Type": "application/json"},
    )  # fmt: skip
    if server.profile.opensearch:
        reason = "no handler found for uri [/_security/user/_has_privileges] and method [POST]"
        assert (status, answer) == (400, {"error": reason})
    else:
        assert status == 200 and answer["username"] == "shipper"


async def test_refused_credentials_answer_as_each_security_layer_does(
    server: StandIn, http: aiohttp.ClientSession
) -> None:
    """x-pack security: a JSON security_exception; OpenSearch's security plugin: a plain
    `Unauthorized` with its own realm."""
    server.security(users={"shipper": "pw"})
    wrong = "Basic " + base64.b64encode(b"shipper:nope").decode()
    status, answer, headers = await call(http, "GET", server.url + "/", None,
                                         {"Authorization": wrong})  # fmt: skip
    assert status == 401
    if server.profile.opensearch:
        assert answer == "Unauthorized"
        assert headers["WWW-Authenticate"] == 'Basic realm="OpenSearch Security"'
    else:
        assert answer["error"]["type"] == "security_exception"


@pytest.mark.parametrize("version", ["1", "2", "3"])
async def test_opensearch_py_works_against_the_opensearch_stand_in(version: str) -> None:
    """OpenSearch's official client: info, bulk, a data stream and a search, as against a
    real OpenSearch (it sends application/json, no vnd types, no product check)."""
    async with StandIn(version, flavor="opensearch", seed=1) as server:
        client = AsyncOpenSearch(hosts=[server.url], max_retries=0)
        try:
            info = await client.info()
            assert info["version"]["distribution"] == "opensearch"
            assert info["version"]["number"].startswith(f"{version}.")
            await client.indices.put_index_template(
                name="logs", body={"index_patterns": ["logs-*"], "data_stream": {}}
            )
            await client.indices.create_data_stream(name="logs-app-default")
            answer = await client.bulk(body=[{"create": {"_index": "logs-app-default"}},
                                             {"@timestamp": "2024-05-01T00:00:00Z",
                                              "message": "hello there"}])  # fmt: skip
            assert answer["errors"] is False
            query = {"query": {"match": {"message": "hello"}}}
            found = await client.search(index="logs-app-default", body=query)
            assert found["hits"]["total"]["value"] == 1
        finally:
            await client.close()
        sent = server.requests[-1].headers
        assert sent["Content-Type"] == "application/json"
        assert "compatible-with" not in sent.get("Accept", "")


async def test_the_elasticsearch_8_client_passes_on_7_17_and_fails_on_opensearch() -> None:
    """elasticsearch-py 8 sends compatible-with=8 and checks the product header: 7.17 takes
    the types and sends the header (7.14+), so it works; OpenSearch answers GET / but the
    client refuses it for the missing header (what its users report)."""
    async with StandIn("7", seed=1) as server:
        client = AsyncElasticsearch(server.url, max_retries=0, retry_on_status=())
        try:
            await client.index(index="app", id="1", document={"n": 1})
        finally:
            await client.close()
        assert server.count("app") == 1
    async with StandIn("2", flavor="opensearch", seed=1) as server:
        client = AsyncElasticsearch(server.url, max_retries=0, retry_on_status=())
        try:
            with pytest.raises(elasticsearch.UnsupportedProductError):
                await client.info()
        finally:
            await client.close()
