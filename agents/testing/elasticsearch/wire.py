"""What the middleware and the endpoints share about one exchange: the request as recorded,
the values the middleware leaves on the request for the endpoints, and JSON answers in the
media type the client asked for.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agents.testing.elasticsearch.errors import EsError
from agents.testing.elasticsearch.query import filter_path
from agents.testing.elasticsearch.strict_json import loads_strict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it (control requests under /_standin are not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_encoding: str | None
    body_bytes: int = 0  # as received on the wire
    decoded_bytes: int = 0  # after Content-Encoding
    items: int | None = None  # bulk actions parsed (None: not a bulk, or it did not parse)
    status: int | None = None  # the answer; None when the connection was dropped

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


RECORD = web.RequestKey("record", RecordedRequest)
COMPAT = web.RequestKey[int | None]("compat")  # the compatible-with version asked for
BODY = web.RequestKey("body", bytes)  # decoded


def reply(request: web.Request, obj: Any, status: int = 200) -> web.Response:
    """A JSON answer in the media type the client asked for; `filter_path` applied."""
    if "filter_path" in request.query and isinstance(obj, dict):
        obj = filter_path(obj, request.query["filter_path"])
    compat = request.get(COMPAT)
    content_type = (
        f"application/vnd.elasticsearch+json;compatible-with={compat}"
        if compat
        else "application/json"
    )
    body = json.dumps(obj).encode()
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def error_reply(request: web.Request, error: EsError) -> web.Response:
    return reply(request, error.body(), error.status)


def json_body(request: web.Request) -> Any:
    """The request's decoded body as JSON (ES's strict parser); None when it is empty."""
    body = request.get(BODY) or b""
    return loads_strict(body) if body.strip() else None


def no_handler(request: web.Request, *, opensearch: bool = False) -> web.Response:
    """ES's 400 for a path nothing answers; OpenSearch's has no status and no query."""
    uri = request.path if opensearch else request.path_qs
    reason = f"no handler found for uri [{uri}] and method [{request.method}]"
    body = {"error": reason} if opensearch else {"error": reason, "status": 400}
    return web.json_response(body, status=400)


def content_type_refused(request: web.Request) -> web.Response:
    header = request.headers.get("Content-Type")
    reason = (
        "Content-Type header is missing"
        if header is None
        else f"Content-Type header [{header}] is not supported"
    )
    return web.json_response({"error": reason, "status": 406}, status=406)


def shards(count: int) -> dict[str, int]:
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}
