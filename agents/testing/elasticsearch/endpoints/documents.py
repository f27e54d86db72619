"""The document endpoints: `_bulk` writes (the store applies ES's item rules and the item
faults), `_count` and `_search` read, with or without an index in the path."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.testing.elasticsearch.bulk import parse_bulk
from agents.testing.elasticsearch.errors import EsError
from agents.testing.elasticsearch.model import Doc
from agents.testing.elasticsearch.query import _field_value, query_matches
from agents.testing.elasticsearch.strict_json import _text
from agents.testing.elasticsearch.wire import BODY, RECORD, json_body, reply, shards

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn


async def bulk(es: StandIn, request: web.Request) -> web.Response:
    ops = parse_bulk(request[BODY], request.match_info.get("index"))
    request[RECORD].items = len(ops)
    return reply(request, es.store.bulk(ops, es.faults.item_failure))


async def count(es: StandIn, request: web.Request) -> web.Response:
    matched, shard_count, _ = _hits(es, request)
    return reply(request, {"count": len(matched), "_shards": shards(shard_count)})


async def search(es: StandIn, request: web.Request) -> web.Response:
    matched, shard_count, body = _hits(es, request)
    size = int(request.query.get("size", body.get("size", 10)))
    start = int(request.query.get("from", body.get("from", 0)))
    for clause in reversed(_sort_clauses(body.get("sort"))):
        name, descending = clause
        present = [m for m in matched if _field_value(m[2].source, name) is not None]
        missing = [m for m in matched if _field_value(m[2].source, name) is None]
        present.sort(key=lambda m: _sort_key(_field_value(m[2].source, name)), reverse=descending)
        matched = present + missing
    hits = [
        {"_index": index, "_id": doc_id, "_score": 1.0, "_source": doc.source}
        for index, doc_id, doc in matched[start : start + size]
    ]
    return reply(
        request,
        {
            "took": 0,
            "timed_out": False,
            "_shards": shards(shard_count),
            "hits": {
                "total": {"value": len(matched), "relation": "eq"},
                "max_score": 1.0 if hits else None,
                "hits": hits,
            },
        },
    )


def _hits(
    es: StandIn, request: web.Request
) -> tuple[list[tuple[str, str, Doc]], int, dict[str, Any]]:
    """Documents matching the request's query, the shard count, and the search body."""
    body = json_body(request) or {}
    if not isinstance(body, dict):
        raise EsError(400, "parsing_exception", "request body must be an object")
    indices = es.store.resolve(request.match_info.get("index", "_all"))
    query = body.get("query")
    matched = [
        (index, doc_id, doc)
        for index, doc_id, doc in es.store.documents_in(indices)
        if query_matches(query, doc_id, doc.source)
    ]
    return matched, len(indices), body


def _sort_clauses(sort: Any) -> list[tuple[str, bool]]:
    """(field, descending) pairs from a search `sort`: "f", {"f": "desc"}, {"f": {"order"}}."""
    if sort is None:
        return []
    out = []
    for clause in sort if isinstance(sort, list) else [sort]:
        if isinstance(clause, str):
            out.append((clause, False))
        else:
            for name, order in clause.items():
                order = order.get("order", "asc") if isinstance(order, dict) else order
                out.append((name, order == "desc"))
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, _text(value))


async def get_doc(es: StandIn, request: web.Request) -> web.Response:
    """`GET /{index}/_doc/{id}`: the document with its metadata, or 404 `found: false`
    (a missing index: 404 index_not_found_exception). A data stream resolves to its
    backing indices, as a GET by id does."""
    wanted, doc_id = request.match_info["index"], request.match_info["id"]
    for name in es.store.resolve(wanted):
        doc = es.store.indices[name].docs.get(doc_id)
        if doc is not None:
            return reply(request, {"_index": name, "_id": doc_id, "_version": doc.version,
                                   "_seq_no": doc.seq_no, "_primary_term": 1, "found": True,
                                   "_source": doc.source})  # fmt: skip
    return reply(request, {"_index": wanted, "_id": doc_id, "found": False}, status=404)


async def refresh(es: StandIn, request: web.Request) -> web.Response:
    """`POST /_refresh`, `/{index}/_refresh`: every write is visible at once here, so it
    only answers as Elasticsearch does (the shards header)."""
    names = es.store.resolve(request.match_info.get("index", "*"))
    return reply(request, {"_shards": {"total": len(names), "successful": len(names),
                                       "failed": 0}})  # fmt: skip
