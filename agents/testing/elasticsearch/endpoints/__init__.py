"""The REST API the stand-in serves: one table of paths and methods, each answered by an
endpoint function of (stand-in, request). ES's 405 for a known path with the wrong method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from agents.testing.elasticsearch.control import control
from agents.testing.elasticsearch.endpoints import cluster, documents, indices
from agents.testing.elasticsearch.wire import Handler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn

Endpoint = Callable[["StandIn", web.Request], Awaitable[web.Response]]

_TEMPLATE = {
    "GET": indices.get_template,
    "PUT": indices.put_template,
    "POST": indices.put_template,
    "DELETE": indices.delete_template,
}
_DOC = {"GET": documents.get_doc, "PUT": documents.put_doc, "POST": documents.put_doc,
        "DELETE": documents.delete_doc}  # fmt: skip
ROUTES: list[tuple[str, dict[str, Endpoint]]] = [
    ("/", {"GET": cluster.info}),
    ("/_bulk", {"POST": documents.bulk, "PUT": documents.bulk}),
    ("/_cluster/health", {"GET": cluster.health}),
    (
        "/_security/user/_has_privileges",
        {"GET": cluster.has_privileges, "POST": cluster.has_privileges},
    ),
    ("/_index_template", {"GET": indices.get_template}),
    ("/_index_template/{name}", _TEMPLATE),
    ("/_data_stream", {"GET": indices.get_data_stream}),
    (
        "/_data_stream/{name}",
        {
            "GET": indices.get_data_stream,
            "PUT": indices.create_data_stream,
            "DELETE": indices.delete_data_stream,
        },
    ),
    ("/_mapping", {"GET": indices.get_mapping}),
    ("/_cat/indices", {"GET": indices.cat_indices}),
    ("/_cat/indices/{index}", {"GET": indices.cat_indices}),
    ("/_cat/count", {"GET": indices.cat_count}),
    ("/_cat/count/{index}", {"GET": indices.cat_count}),
    ("/_count", {"GET": documents.count, "POST": documents.count}),
    ("/_search", {"GET": documents.search, "POST": documents.search}),
    ("/_refresh", {"GET": documents.refresh, "POST": documents.refresh}),
    ("/{index}/_bulk", {"POST": documents.bulk, "PUT": documents.bulk}),
    ("/{index}/_count", {"GET": documents.count, "POST": documents.count}),
    ("/{index}/_search", {"GET": documents.search, "POST": documents.search}),
    (
        "/{index}/_mapping",
        {"GET": indices.get_mapping, "PUT": indices.put_mapping, "POST": indices.put_mapping},
    ),
    ("/{index}/_doc", {"POST": documents.put_doc}),
    ("/{index}/_doc/", {"POST": documents.put_doc}),
    ("/{index}/_doc/{id}", _DOC),
    ("/{index}/_create/{id}", {"PUT": documents.put_doc, "POST": documents.put_doc}),
    ("/{index}/_refresh", {"GET": documents.refresh, "POST": documents.refresh}),
    (
        "/{index}",
        {"GET": indices.get_index, "PUT": indices.create_index, "DELETE": indices.delete_index},
    ),
]


def add_routes(app: web.Application, es: StandIn) -> None:
    """The ES routes and the control API under `/_standin/`, answered for `es`."""

    async def standin_control(request: web.Request) -> web.StreamResponse:
        return await control(es, request)

    app.router.add_route("*", "/_standin/{op}", standin_control)
    for path, methods in ROUTES:
        app.router.add_route("*", path, _dispatch(es, path, methods))


def _dispatch(es: StandIn, path: str, methods: Mapping[str, Endpoint]) -> Handler:
    """One route per path: ES's 405 for a known path with the wrong method."""
    allowed = ", ".join(sorted(methods))

    async def handle(request: web.Request) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        index = request.match_info.get("index", "")
        if path == "/{index}" and index.startswith("_") and index != "_all":
            raise web.HTTPNotFound
        if path.startswith("/_security/") and not es.profile.has_privileges_api:
            raise web.HTTPNotFound  # OpenSearch's security plugin has no such API
        if method not in methods:
            reason = (
                f"Incorrect HTTP method for uri [{request.path_qs}] and method "
                f"[{request.method}], allowed: [{allowed}]"
            )
            return web.json_response({"error": reason, "status": 405}, status=405)
        return await methods[method](es, request)

    return handle
