"""The index endpoints: indices (create, get, delete, mappings), composable index templates
(put, get, delete), data streams (create, get, delete), and the `_cat` views of them."""

from __future__ import annotations

import fnmatch

from aiohttp import web

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.model import Index, _not_found
from agents.testing.elasticsearch.templates import mapping_from_template, nested
from agents.testing.elasticsearch.wire import json_body, reply

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn


async def put_template(es: StandIn, request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = json_body(request)
    if not isinstance(body, dict):
        raise EsError(400, "parse_exception", "request body is required")
    if request.query.get("create") == "true" and name in es.store.templates:
        raise _illegal(f"index template [{name}] already exists")
    es.store.put_template(name, body)
    return reply(request, {"acknowledged": True})


async def get_template(es: StandIn, request: web.Request) -> web.Response:
    name = request.match_info.get("name", "*")
    found = [
        {"name": tname, "index_template": body}
        for tname, body in es.store.templates.items()
        if any(fnmatch.fnmatchcase(tname, n) for n in name.split(","))
    ]
    if not found and "*" not in name:
        raise EsError(
            404, "resource_not_found_exception", f"index template matching [{name}] not found"
        )
    # a name that matches nothing, even as a pattern, is 404 (RestGetComposableIndexTemplate
    # Action: NOT_FOUND for an empty answer unless no name was given)
    missing = not found and "name" in request.match_info
    return reply(request, {"index_templates": found}, status=404 if missing else 200)


async def delete_template(es: StandIn, request: web.Request) -> web.Response:
    es.store.delete_template(request.match_info["name"])
    return reply(request, {"acknowledged": True})


async def get_data_stream(es: StandIn, request: web.Request) -> web.Response:
    name = request.match_info.get("name", "*")
    streams = [
        s
        for s in es.store.data_streams.values()
        if any(fnmatch.fnmatchcase(s.name, n) for n in name.split(","))
    ]
    if not streams and "*" not in name:
        raise _not_found(name)
    return reply(
        request,
        {
            "data_streams": [
                {
                    "name": s.name,
                    "timestamp_field": {"name": "@timestamp"},
                    "indices": [
                        {"index_name": i, "index_uuid": es.store.indices[i].uuid} for i in s.indices
                    ],
                    "generation": len(s.indices),
                    "status": es._health.upper(),
                    "template": s.template,
                    **({} if es.profile.opensearch else {"hidden": False, "system": False}),
                }
                for s in streams
            ]
        },
    )


async def get_index(es: StandIn, request: web.Request) -> web.Response:
    out = {}
    for name in es.store.resolve(request.match_info["index"]):
        index = es.store.indices[name]
        out[name] = {
            "aliases": {},
            "mappings": {"properties": index.mapping.properties()},
            "settings": nested(_settings(index)),
        }
        if index.data_stream is not None:
            out[name]["data_stream"] = index.data_stream
    return reply(request, out)


def _settings(index: Index) -> dict[str, str]:
    shown = {"index.number_of_shards": "1", "index.number_of_replicas": "1"}
    shown |= index.settings
    if index.name.startswith("."):
        shown["index.hidden"] = "true"
    return shown | {"index.uuid": index.uuid, "index.provided_name": index.name}


async def create_index(es: StandIn, request: web.Request) -> web.Response:
    """`PUT /{index}` with optional settings, mappings and aliases."""
    body = json_body(request)
    if body is not None and not isinstance(body, dict):
        raise EsError(400, "parse_exception", "request body must be an object")
    name = request.match_info["index"]
    es.store.create_index(name, body)
    return reply(request, {"acknowledged": True, "shards_acknowledged": True, "index": name})


async def delete_index(es: StandIn, request: web.Request) -> web.Response:
    es.store.delete_index(request.match_info["index"])
    return reply(request, {"acknowledged": True})


async def get_mapping(es: StandIn, request: web.Request) -> web.Response:
    out = {
        name: {"mappings": {"properties": es.store.indices[name].mapping.properties()}}
        for name in es.store.resolve(request.match_info.get("index", "*"))
    }
    return reply(request, out)


async def put_mapping(es: StandIn, request: web.Request) -> web.Response:
    """`PUT /{index}/_mapping`: new fields join the mapping; a field mapped already with
    another type is ES's 400."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: mapping source is missing;")  # fmt: skip
    added = mapping_from_template({"template": {"mappings": body}}).fields
    names = es.store.resolve(request.match_info["index"])
    for name in names:
        mapping = es.store.indices[name].mapping
        for path, es_type in added.items():
            if mapping.fields.get(path, es_type) != es_type:
                raise _illegal(f"mapper [{path}] cannot be changed from type "
                               f"[{mapping.fields[path]}] to [{es_type}]")  # fmt: skip
    for name in names:
        es.store.indices[name].mapping.fields.update(added)
    return reply(request, {"acknowledged": True})


async def create_data_stream(es: StandIn, request: web.Request) -> web.Response:
    es.store.create_data_stream(request.match_info["name"])
    return reply(request, {"acknowledged": True})


async def delete_data_stream(es: StandIn, request: web.Request) -> web.Response:
    es.store.delete_data_stream(request.match_info["name"])
    return reply(request, {"acknowledged": True})


# -- _cat: text tables for people, JSON with ?format=json ----------------------------


_CAT_INDICES = ["health", "status", "index", "uuid", "pri", "rep", "docs.count",
                "docs.deleted", "store.size", "pri.store.size"]  # fmt: skip


async def cat_indices(es: StandIn, request: web.Request) -> web.StreamResponse:
    """`GET /_cat/indices[/{index}]`: one row per index, ES's default columns; backing and
    other dot indices only when asked for by name or with `expand_wildcards=all`."""
    expression = request.match_info.get("index", "*")
    names = es.store.resolve(expression)
    if "all" in request.query.get("expand_wildcards", ""):
        names = list(dict.fromkeys([*names, *es.store.resolve(".*")]))
    health = es._health
    rows = []
    for name in sorted(names):
        index = es.store.indices[name]
        size = sum(len(str(d.source)) for d in index.docs.values())
        rows.append({"health": health, "status": "open", "index": name, "uuid": index.uuid,
                     "pri": "1", "rep": "1", "docs.count": str(len(index.docs)),
                     "docs.deleted": "0", "store.size": f"{size}b",
                     "pri.store.size": f"{size}b"})  # fmt: skip
    return cat_reply(request, _CAT_INDICES, rows)


async def cat_count(es: StandIn, request: web.Request) -> web.StreamResponse:
    """`GET /_cat/count[/{index}]`: epoch, time of day (UTC) and the document count."""
    import time

    now = es.store.clock()
    count = len(es.store.documents(request.match_info.get("index", "*")))
    row = {"epoch": str(int(now)), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
           "count": str(count)}  # fmt: skip
    return cat_reply(request, ["epoch", "timestamp", "count"], [row])


def cat_reply(request: web.Request, columns: list[str], rows: list[dict[str, str]]) -> web.Response:
    """A `_cat` answer: JSON with `format=json`, else ES's aligned text table (`v` adds the
    header line, `h` picks columns, `s` sorts by one)."""
    if "h" in request.query:
        wanted = [c.strip() for c in request.query["h"].split(",") if c.strip()]
        unknown = [c for c in wanted if c not in columns]
        if unknown:
            raise _illegal(f"header [{unknown[0]}] does not exist")
        columns = wanted
    if "s" in request.query:
        key, _, order = request.query["s"].partition(":")
        rows = sorted(rows, key=lambda r: _cat_key(r.get(key, "")), reverse=order == "desc")
    rows = [{c: r[c] for c in columns} for r in rows]
    if request.query.get("format") == "json":
        return reply(request, rows)
    table = ([dict(zip(columns, columns, strict=True))] if _flag(request, "v") else []) + rows
    widths = {c: max((len(r[c]) for r in table), default=0) for c in columns}
    lines = [" ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in table]
    text = "".join(f"{line}\n" for line in lines)
    return web.Response(text=text, content_type="text/plain", charset="UTF-8")


def _flag(request: web.Request, name: str) -> bool:
    return name in request.query and request.query[name] in ("", "true")


def _cat_key(value: str) -> tuple[int, float | str]:
    return (0, float(value)) if value.replace(".", "", 1).isdigit() else (1, value)
