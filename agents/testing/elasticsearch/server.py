"""The server: `StandIn` serves the store over aiohttp, checks headers and bodies like ES,
applies faults, records requests and takes fault orders under `/_standin/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agents.testing.elasticsearch.bulk import BodyTooLarge, decode_body, parse_bulk
from agents.testing.elasticsearch.defaults import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_VERSION,
    PRODUCT_HEADER,
)
from agents.testing.elasticsearch.errors import EsError, _illegal, version_tuple
from agents.testing.elasticsearch.faults import PROXY_STATUSES, Faults, Rule, request_error
from agents.testing.elasticsearch.media import body_type_supported, check_media_types
from agents.testing.elasticsearch.query import _field_value, filter_path, parse_time, query_matches
from agents.testing.elasticsearch.store import Doc, Store, _not_found
from agents.testing.elasticsearch.strict_json import _text, loads_strict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _dispatch(path: str, methods: Mapping[str, Handler]) -> Handler:
    """One route per path: ES's 405 for a known path with the wrong method."""
    allowed = ", ".join(sorted(methods))

    async def handle(request: web.Request) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        index = request.match_info.get("index", "")
        if path == "/{index}" and index.startswith("_") and index != "_all":
            raise web.HTTPNotFound
        if method not in methods:
            reason = (
                f"Incorrect HTTP method for uri [{request.path_qs}] and method "
                f"[{request.method}], allowed: [{allowed}]"
            )
            return web.json_response({"error": reason, "status": 405}, status=405)
        return await methods[method](request)

    return handle


def _no_handler(request: web.Request) -> web.Response:
    reason = f"no handler found for uri [{request.path_qs}] and method [{request.method}]"
    return web.json_response({"error": reason, "status": 400}, status=400)


def _content_type_refused(request: web.Request) -> web.Response:
    header = request.headers.get("Content-Type")
    reason = (
        "Content-Type header is missing"
        if header is None
        else f"Content-Type header [{header}] is not supported"
    )
    return web.json_response({"error": reason, "status": 406}, status=406)


def _shards(count: int) -> dict[str, int]:
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}


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


_RECORD = web.RequestKey("record", RecordedRequest)
_COMPAT_KEY = web.RequestKey[int | None]("compat")  # the compatible-with version asked for
_BODY = web.RequestKey("body", bytes)  # decoded
_LUCENE = {8: "9.11.1", 9: "10.1.0"}
_WIRE = {8: ("7.17.0", "7.0.0"), 9: ("8.18.0", "8.0.0")}
_HEALTH_RANK = {"green": 0, "yellow": 1, "red": 2}


class StandIn:
    """A fake Elasticsearch on a real socket. Start it, point a client at `.url`, inspect.

        async with StandIn(seed=1) as es:        # listens on 127.0.0.1, a free port
            ...                                  # AsyncElasticsearch(es.url)
            es.fail_items(429, probability=0.5)  # faults, also at POST /_standin/<name>
            assert es.count("logs-*") == 10

    One seeded `random.Random` drives auto ids and every probabilistic fault.
    """

    def __init__(
        self,
        version: str = DEFAULT_VERSION,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        cluster_name: str = "standin",
        health: str = "green",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        fill_missing_timestamp: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        major = version_tuple(version)[0]
        if major not in (8, 9):
            raise ValueError(f"the stand-in speaks Elasticsearch 8 and 9, not {version}")
        self.version, self.major = version, major
        self.rng = rng if rng is not None else random.Random(seed)  # noqa: S311 - not secrets
        self.store = Store(
            version=version,
            rng=self.rng,
            clock=clock,
            fill_missing_timestamp=fill_missing_timestamp,
        )
        self.faults = Faults(self.rng)
        self.requests: list[RecordedRequest] = []
        self.cluster_name = cluster_name
        self.cluster_uuid = self.store.new_uuid()
        self._max_body_default = max_body_bytes
        self.max_body_bytes = max_body_bytes
        self._health, self._health_default = "green", health
        self._health_changed = asyncio.Event()
        self.set_health(health)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host, self._port = "127.0.0.1", 0
        self._revive: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # wakes latency and health waits for a prompt stop

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> StandIn:
        """Bind and serve; port 0 picks a free one (see `.port`, `.url`)."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        # auto_decompress off: the stand-in decodes gzip itself, to log wire sizes and cap it
        # A client that gives up does not cancel its request, as with ES: a timed-out bulk is
        # still applied (handler_cancellation stays off).
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, auto_decompress=False, shutdown_timeout=5
        )
        await runner.setup()
        self._runner, self._host = runner, host
        self._stopping = asyncio.Event()
        try:
            await self._listen(port)
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Close the listener and every connection; safe to call twice."""
        self._stopping.set()
        self._health_changed.set()
        revive, self._revive = self._revive, None
        if revive is not None:
            revive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revive
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StandIn:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self._host, port, reuse_address=True)
        await site.start()
        self._site, self._port = site, site.port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = wildcard.get(self._host, self._host)
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def listening(self) -> bool:
        return self._site is not None

    # -- inspection -----------------------------------------------------------------

    def docs(self, index_pattern: str = "*") -> list[dict[str, Any]]:
        """Stored sources with `_index` and `_id` added, in write order per index."""
        return [
            {**doc.source, "_index": index, "_id": doc_id}
            for index, doc_id, doc in self.store.documents(index_pattern)
        ]

    def count(self, index_pattern: str = "*") -> int:
        return len(self.store.documents(index_pattern))

    def bulk_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/_bulk")]

    def clear(self) -> None:
        """Forget documents, indices, data streams, user templates and the request log."""
        self.store.clear()
        self.requests.clear()

    def set_health(self, status: str) -> None:
        if status not in _HEALTH_RANK:
            raise ValueError(f"health must be green, yellow or red, not {status!r}")
        self._health = status
        self._health_changed.set()
        self._health_changed = asyncio.Event()

    # -- faults ---------------------------------------------------------------------

    async def down(self, seconds: float | None = None) -> None:
        """Refuse connections: stop listening and cut open connections.

        After `seconds` it listens again on the same port; None waits for `up()`.
        """
        await self._stop_listening()
        self._cut_connections()
        self._schedule_up(seconds)

    async def _stop_listening(self) -> None:
        if self._runner is None:
            raise RuntimeError("the stand-in is not started")
        await self._cancel_revive()
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()

    def _cut_connections(self) -> None:
        assert self._runner is not None and self._runner.server is not None
        for connection in self._runner.server.connections:
            connection.force_close()

    def _schedule_up(self, seconds: float | None) -> None:
        if seconds is not None:
            self._revive = asyncio.create_task(self._up_after(seconds))

    async def up(self) -> None:
        """Listen again (on the same port) now."""
        await self._cancel_revive()
        if self._site is None and self._runner is not None:
            await self._listen(self._port)

    async def _up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._revive = None
        await self._listen(self._port)

    async def _cancel_revive(self) -> None:
        revive, self._revive = self._revive, None
        if revive is not None and revive is not asyncio.current_task():
            revive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revive

    def fail_requests(
        self,
        status: int,
        *,
        count: int | None = None,
        probability: float = 1.0,
        scope: str = "bulk",
    ) -> None:
        """Answer whole requests with `status` (429, 503, 500, 401, 403; 502/504 as a proxy).

        `scope="bulk"` hits only `_bulk`; `"all"` hits every ES endpoint (GET / too).
        """
        self.faults.add_request_failure(status, Rule(count, probability), scope)

    def fail_items(
        self,
        status: int,
        *,
        probability: float = 1.0,
        count: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """Fail create/index items inside a 200 bulk response (429, 503 or 400).

        `error_type` picks `cluster_block_exception` (flood-stage watermark) for 429.
        """
        self.faults.add_item_failure(status, Rule(count, probability), error_type)

    def latency(self, seconds: float) -> None:
        """Wait this long before answering every ES request."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        self.faults.latency = seconds

    def drop_connections(
        self, *, count: int | None = None, probability: float = 1.0, after_processing: bool = False
    ) -> None:
        """Close the socket without answering; `after_processing` first applies the request."""
        self.faults.drops.append((after_processing, Rule(count, probability)))

    def reset_faults(self) -> None:
        """No faults, the configured body limit and health. (A `down()` lasts until `up()`.)"""
        self.faults.reset()
        self.max_body_bytes = self._max_body_default
        self.set_health(self._health_default)

    # -- HTTP plumbing --------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, dict[str, Handler]]] = [
            ("/", {"GET": self._info}),
            ("/_bulk", {"POST": self._bulk, "PUT": self._bulk}),
            ("/_cluster/health", {"GET": self._cluster_health}),
            ("/_index_template", {"GET": self._get_template}),
            (
                "/_index_template/{name}",
                {
                    "GET": self._get_template,
                    "PUT": self._put_template,
                    "POST": self._put_template,
                    "DELETE": self._delete_template,
                },
            ),
            ("/_data_stream", {"GET": self._get_data_stream}),
            ("/_data_stream/{name}", {"GET": self._get_data_stream}),
            ("/_count", {"GET": self._count, "POST": self._count}),
            ("/_search", {"GET": self._search, "POST": self._search}),
            ("/{index}/_bulk", {"POST": self._bulk, "PUT": self._bulk}),
            ("/{index}/_count", {"GET": self._count, "POST": self._count}),
            ("/{index}/_search", {"GET": self._search, "POST": self._search}),
            ("/{index}/_mapping", {"GET": self._get_mapping}),
            ("/{index}", {"GET": self._get_index}),
        ]
        app.router.add_route("*", "/_standin/{op}", self._control)
        for path, methods in routes:
            app.router.add_route("*", path, _dispatch(path, methods))

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_standin/"):
            return await handler(request)
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            request.headers.get("Content-Encoding"),
        )
        self.requests.append(record)
        request[_RECORD] = record
        try:
            body = await self._read_body(request, record)
        except BodyTooLarge:
            return self._finish(record, web.Response(status=413))
        except EsError as e:
            return self._finish(record, self._error(request, e))
        if self.faults.drop(after_processing=False):
            return self._drop(request, record)
        if self.faults.latency:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.latency)
        try:
            request[_COMPAT_KEY] = check_media_types(
                request.headers.get("Accept"),
                request.headers.get("Content-Type"),
                bool(body),
                self.major,
            )
            if body and not body_type_supported(request.headers.get("Content-Type")):
                return self._finish(record, _content_type_refused(request))
            failure = self.faults.request_failure(request.path.endswith("/_bulk"))
            if failure is not None:
                headers, payload = request_error(failure, request.path)
                return self._finish(
                    record, web.Response(status=failure, body=payload, headers=headers)
                )
            request[_BODY] = body
            response = await handler(request)
        except EsError as e:
            response = self._error(request, e)
        except web.HTTPNotFound:
            response = _no_handler(request)
        if self.faults.drop(after_processing=True):
            return self._drop(request, record)
        return self._finish(record, response)

    async def _read_body(self, request: web.Request, record: RecordedRequest) -> bytes:
        """The decoded body; raises BodyTooLarge (after draining it) past max_body_bytes."""
        chunks, size, limit = [], 0, self.max_body_bytes
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
        record.body_bytes = size
        if size > limit:
            raise BodyTooLarge
        body = decode_body(b"".join(chunks), request.headers.get("Content-Encoding"), limit)
        record.decoded_bytes = len(body)
        return body

    def _finish(self, record: RecordedRequest, response: web.Response) -> web.Response:
        if response.status not in PROXY_STATUSES and response.status != 413:
            response.headers.update(PRODUCT_HEADER)
        record.status = response.status
        return response

    def _drop(self, request: web.Request, record: RecordedRequest) -> web.Response:
        record.status = None
        if request.protocol is not None:
            request.protocol.force_close()  # the response below is never written
        return web.Response(status=500)

    def _reply(self, request: web.Request, obj: Any, status: int = 200) -> web.Response:
        """A JSON answer in the media type the client asked for; `filter_path` applied."""
        if "filter_path" in request.query and isinstance(obj, dict):
            obj = filter_path(obj, request.query["filter_path"])
        compat = request.get(_COMPAT_KEY)
        content_type = (
            f"application/vnd.elasticsearch+json;compatible-with={compat}"
            if compat
            else "application/json"
        )
        body = json.dumps(obj).encode()
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    def _error(self, request: web.Request, error: EsError) -> web.Response:
        return self._reply(request, error.body(), error.status)

    def _json_body(self, request: web.Request) -> Any:
        body = request.get(_BODY) or b""
        return loads_strict(body) if body.strip() else None

    # -- ES endpoints ---------------------------------------------------------------

    async def _info(self, request: web.Request) -> web.Response:
        wire, index_compat = _WIRE.get(self.major, _WIRE[8])
        return self._reply(
            request,
            {
                "name": "standin-node",
                "cluster_name": self.cluster_name,
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": self.version,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "0" * 40,
                    "build_date": "2024-08-05T10:05:34.233336849Z",
                    "build_snapshot": False,
                    "lucene_version": _LUCENE.get(self.major, _LUCENE[8]),
                    "minimum_wire_compatibility_version": wire,
                    "minimum_index_compatibility_version": index_compat,
                },
                "tagline": "You Know, for Search",
            },
        )

    async def _bulk(self, request: web.Request) -> web.Response:
        ops = parse_bulk(request[_BODY], request.match_info.get("index"))
        request[_RECORD].items = len(ops)
        return self._reply(request, self.store.bulk(ops, self.faults.item_failure))

    async def _cluster_health(self, request: web.Request) -> web.Response:
        wanted = request.query.get("wait_for_status")
        timed_out = False
        if wanted is not None:
            if wanted not in _HEALTH_RANK:
                raise _illegal(f"unknown cluster health status [{wanted}]")
            deadline = time.monotonic() + parse_time(request.query.get("timeout", "30s"))
            while _HEALTH_RANK[self._health] > _HEALTH_RANK[wanted]:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    timed_out = True
                    break
                with contextlib.suppress(TimeoutError):  # stop() sets it too
                    await asyncio.wait_for(self._health_changed.wait(), remaining)
        shards = len(self.store.indices)
        unassigned = {"green": 0, "yellow": shards, "red": 2 * shards}[self._health]
        body = {
            "cluster_name": self.cluster_name,
            "status": self._health,
            "timed_out": timed_out,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": shards if self._health != "red" else 0,
            "active_shards": shards if self._health != "red" else 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "unassigned_primary_shards": shards if self._health == "red" else 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0 if self._health == "green" else 50.0,
        }
        return self._reply(request, body, 408 if timed_out else 200)

    async def _put_template(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise EsError(400, "parse_exception", "request body is required")
        if request.query.get("create") == "true" and name in self.store.templates:
            raise _illegal(f"index template [{name}] already exists")
        self.store.put_template(name, body)
        return self._reply(request, {"acknowledged": True})

    async def _get_template(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "*")
        found = [
            {"name": tname, "index_template": body}
            for tname, body in self.store.templates.items()
            if any(fnmatch.fnmatchcase(tname, n) for n in name.split(","))
        ]
        if not found and "*" not in name:
            raise EsError(
                404, "resource_not_found_exception", f"index template matching [{name}] not found"
            )
        return self._reply(request, {"index_templates": found})

    async def _delete_template(self, request: web.Request) -> web.Response:
        self.store.delete_template(request.match_info["name"])
        return self._reply(request, {"acknowledged": True})

    async def _get_data_stream(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "*")
        streams = [
            s
            for s in self.store.data_streams.values()
            if any(fnmatch.fnmatchcase(s.name, n) for n in name.split(","))
        ]
        if not streams and "*" not in name:
            raise _not_found(name)
        return self._reply(
            request,
            {
                "data_streams": [
                    {
                        "name": s.name,
                        "timestamp_field": {"name": "@timestamp"},
                        "indices": [
                            {"index_name": i, "index_uuid": self.store.indices[i].uuid}
                            for i in s.indices
                        ],
                        "generation": len(s.indices),
                        "status": self._health.upper(),
                        "template": s.template,
                        "hidden": False,
                        "system": False,
                    }
                    for s in streams
                ]
            },
        )

    def _hits(self, request: web.Request) -> tuple[list[tuple[str, str, Doc]], int, dict[str, Any]]:
        """Documents matching the request's query, the shard count, and the search body."""
        body = self._json_body(request) or {}
        if not isinstance(body, dict):
            raise EsError(400, "parsing_exception", "request body must be an object")
        indices = self.store.resolve(request.match_info.get("index", "_all"))
        query = body.get("query")
        matched = [
            (index, doc_id, doc)
            for index, doc_id, doc in self.store.documents_in(indices)
            if query_matches(query, doc_id, doc.source)
        ]
        return matched, len(indices), body

    async def _count(self, request: web.Request) -> web.Response:
        matched, shards, _ = self._hits(request)
        return self._reply(request, {"count": len(matched), "_shards": _shards(shards)})

    async def _search(self, request: web.Request) -> web.Response:
        matched, shards, body = self._hits(request)
        size = int(request.query.get("size", body.get("size", 10)))
        start = int(request.query.get("from", body.get("from", 0)))
        for clause in reversed(_sort_clauses(body.get("sort"))):
            name, descending = clause
            present = [m for m in matched if _field_value(m[2].source, name) is not None]
            missing = [m for m in matched if _field_value(m[2].source, name) is None]
            present.sort(
                key=lambda m: _sort_key(_field_value(m[2].source, name)), reverse=descending
            )
            matched = present + missing
        hits = [
            {"_index": index, "_id": doc_id, "_score": 1.0, "_source": doc.source}
            for index, doc_id, doc in matched[start : start + size]
        ]
        return self._reply(
            request,
            {
                "took": 0,
                "timed_out": False,
                "_shards": _shards(shards),
                "hits": {
                    "total": {"value": len(matched), "relation": "eq"},
                    "max_score": 1.0 if hits else None,
                    "hits": hits,
                },
            },
        )

    async def _get_index(self, request: web.Request) -> web.Response:
        out = {}
        for name in self.store.resolve(request.match_info["index"]):
            index = self.store.indices[name]
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
        return self._reply(request, out)

    async def _get_mapping(self, request: web.Request) -> web.Response:
        out = {
            name: {"mappings": {"properties": self.store.indices[name].mapping.properties()}}
            for name in self.store.resolve(request.match_info["index"])
        }
        return self._reply(request, out)

    # -- control API for out-of-process users ---------------------------------------

    async def _control(self, request: web.Request) -> web.StreamResponse:
        """`POST /_standin/<fault>` with JSON arguments; `GET` docs, count and requests."""
        op = request.match_info["op"]
        try:
            raw = await request.read()
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            if request.method == "GET":
                index = request.query.get("index", "*")
                views: dict[str, Callable[[], object]] = {
                    "docs": lambda: {"docs": self.docs(index)},
                    "count": lambda: {"count": self.count(index)},
                    "requests": lambda: {"requests": [r.to_json() for r in self.requests]},
                }
                if op not in views:
                    raise KeyError(op)
                return web.json_response(views[op]())
            if request.method != "POST":
                return web.json_response({"error": "use GET or POST"}, status=405)
            if op == "down":
                seconds = args.pop("seconds", None)
                if args or not (seconds is None or isinstance(seconds, int | float)):
                    raise ValueError("down takes {'seconds': number or null}")
                # refuse new connections before acknowledging, then cut this one too
                await self._stop_listening()
                response = web.json_response({"acknowledged": True})
                await response.prepare(request)
                await response.write_eof()
                self._cut_connections()
                self._schedule_up(seconds)
                return response
            if op == "up":
                await self.up(**args)
                return web.json_response({"acknowledged": True})
            setters: dict[str, Callable[..., None]] = {
                "fail_requests": self.fail_requests,
                "fail_items": self.fail_items,
                "latency": self.latency,
                "drop_connections": self.drop_connections,
                "max_body_bytes": self._set_max_body_bytes,
                "health": self.set_health,
                "reset_faults": self.reset_faults,
                "clear": self.clear,
            }
            if op not in setters:
                raise KeyError(op)
            setters[op](**args)
        except KeyError as e:
            return web.json_response({"error": f"unknown stand-in operation {e}"}, status=404)
        except (TypeError, ValueError) as e:
            return web.json_response({"error": f"{op}: {e}"}, status=400)
        return web.json_response({"acknowledged": True})

    def _set_max_body_bytes(self, bytes: int) -> None:
        if bytes < 0:
            raise ValueError("bytes must not be negative")
        self.max_body_bytes = bytes
