"""The document endpoints: `_bulk` and single-document writes (the store applies ES's item
rules and the item faults to both), get by id, `_count` and `_search` read, with or without
an index in the path."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.testing.elasticsearch.bulk import BulkOp, parse_bulk
from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.model import Doc
from agents.testing.elasticsearch.query import (
    _field_value,
    query_matches,
    query_string,
    source_filter,
)
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
    keep = source_filter(request.query.get("_source"), request.query.get("_source_includes"),
                         request.query.get("_source_excludes"), body.get("_source"))  # fmt: skip
    hits = []
    for index, doc_id, doc in matched[start : start + size]:
        hit = {"_index": index, "_id": doc_id, "_score": 1.0}
        source = keep(doc.source)
        if source is not None:
            hit["_source"] = source
        hits.append(hit)
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
    if "q" in request.query:
        if query is not None:
            raise _illegal("request [_search] contains a query in the body and the q parameter")
        query = query_string(request.query["q"], request.query.get("df"),
                             request.query.get("default_operator", "OR"))  # fmt: skip
    matched = [
        (index, doc_id, doc)
        for index, doc_id, doc in es.store.documents_in(indices)
        if query_matches(query, doc_id, doc.source, es.store.indices[index].mapping)
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


async def put_doc(es: StandIn, request: web.Request) -> web.Response:
    """`PUT|POST /{index}/_doc/{id}` (index, or create with `op_type=create`),
    `POST /{index}/_doc` (an id made up), `PUT|POST /{index}/_create/{id}`: the bulk item
    rules on one document; the answer is the item without its status, an error the
    request's."""
    op_type = request.query.get("op_type", "index")
    if op_type not in ("index", "create"):
        raise _illegal(f"opType must be 'create' or 'index', found: [{op_type}]")
    action = "create" if "/_create/" in request.path else op_type
    op = BulkOp(action, request.match_info["index"], request.match_info.get("id"), 1,
                source=request.get(BODY) or b"")  # fmt: skip
    ((_, item),) = es.store.apply(op, es.faults.item_failure).items()
    return _item_reply(request, item)


async def delete_doc(es: StandIn, request: web.Request) -> web.Response:
    """`DELETE /{index}/_doc/{id}`: deleted (200) or not_found (404), as a bulk delete."""
    op = BulkOp("delete", request.match_info["index"], request.match_info["id"], 1)
    ((_, item),) = es.store.apply(op).items()
    return _item_reply(request, item)


def _item_reply(request: web.Request, item: dict[str, Any]) -> web.Response:
    status = item.pop("status")
    error = item.get("error")
    if error is not None:
        root = {k: v for k, v in error.items() if k != "caused_by"}
        return reply(request, {"error": {"root_cause": [root], **error}, "status": status},
                     status=status)  # fmt: skip
    return reply(request, item, status=status)
