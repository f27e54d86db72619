"""The index endpoints: composable index templates (put, get, delete), data streams, and
an index's settings and mappings as ES shows them."""

from __future__ import annotations

import fnmatch

from aiohttp import web

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.model import _not_found
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
    return reply(request, {"index_templates": found})


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
                    "hidden": False,
                    "system": False,
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
            "settings": {
                "index": {
                    "number_of_shards": "1",
                    "number_of_replicas": "1",
                    "uuid": index.uuid,
                    "provided_name": name,
                    "hidden": str(name.startswith(".")).lower(),
                }
            },
        }
        if index.data_stream is not None:
            out[name]["data_stream"] = index.data_stream
    return reply(request, out)


async def get_mapping(es: StandIn, request: web.Request) -> web.Response:
    out = {
        name: {"mappings": {"properties": es.store.indices[name].mapping.properties()}}
        for name in es.store.resolve(request.match_info["index"])
    }
    return reply(request, out)
