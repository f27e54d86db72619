"""The stand-in's lifecycle and its Python API: `StandIn` binds a port, serves the store,
takes fault orders and shows what it stored and saw. How it answers is elsewhere: the
middleware (recording, faults, media types), the endpoints, the control API.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agents.testing.elasticsearch.defaults import DEFAULT_MAX_BODY_BYTES, DEFAULT_VERSION
from agents.testing.elasticsearch.endpoints import add_routes
from agents.testing.elasticsearch.endpoints.cluster import HEALTH_RANK
from agents.testing.elasticsearch.faults import Faults, Rule
from agents.testing.elasticsearch.middleware import middleware
from agents.testing.elasticsearch.store import Store
from agents.testing.elasticsearch.wire import Handler, RecordedRequest

__all__ = ["Handler", "RecordedRequest", "StandIn"]


class StandIn:
    """A fake Elasticsearch (or OpenSearch) on a real socket. Start it, point a client at
    `.url`, inspect. `flavor` and `version` pick what it answers as (`flavors.Profile`):
    Elasticsearch 7.17, 8.x (the default), 9.x; OpenSearch 1.x, 2.x, 3.x.

        async with StandIn(seed=1) as es:        # listens on 127.0.0.1, a free port
            ...                                  # AsyncElasticsearch(es.url)
            es.fail_items(429, probability=0.5)  # faults, also at POST /_standin/<name>
            assert es.count("logs-*") == 10

    One seeded `random.Random` drives auto ids and every probabilistic fault.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        flavor: str = "elasticsearch",
        seed: int | None = None,
        rng: random.Random | None = None,
        cluster_name: str = "standin",
        health: str = "green",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        fill_missing_timestamp: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if version is None and flavor == "elasticsearch":
            version = DEFAULT_VERSION
        self.rng = rng if rng is not None else random.Random(seed)  # noqa: S311 - not secrets
        self.store = Store(  # ValueError for a flavor or version it cannot play
            version=version,
            flavor=flavor,
            rng=self.rng,
            clock=clock,
            fill_missing_timestamp=fill_missing_timestamp,
        )
        self.profile = self.store.profile  # what differs between flavors and versions
        self.version, self.major = self.profile.version, self.profile.major
        self.faults = Faults(self.rng)
        self.users: dict[str, str] = {}  # security on when users or api_keys are set
        self.api_keys: set[str] = set()
        self.read_only: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.cluster_name = cluster_name
        self.cluster_uuid = self.store.new_uuid()
        self._max_body_default = max_body_bytes
        self.max_body_bytes = max_body_bytes
        # _health, _health_changed and _stopping are read by the health endpoint and the
        # middleware; _stop_listening, _cut_connections, _schedule_up by the control API.
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
        app = web.Application(middlewares=[middleware(self)])
        add_routes(app, self)
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

    def security(
        self,
        users: dict[str, str] | None = None,
        api_keys: list[str] | None = None,
        read_only: list[str] | None = None,
        bearer_tokens: list[str] | None = None,
    ) -> None:
        """Require credentials on every Elasticsearch request, as with
        `xpack.security.enabled`: Basic for `users` (name -> password), ApiKey for
        `api_keys` (the base64 `id:key`, as clients send it). Called again, it replaces
        them: a rotated password, the old one refused from then on. With neither, off.
        `read_only` users authenticate but may not write (403 to _bulk, false in
        `_has_privileges`); `bearer_tokens` are accepted as `Authorization: Bearer`."""
        if users is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in users.items()
        ):
            raise ValueError("users maps names to passwords, both strings")
        self.users = dict(users or {})
        self.api_keys = set(api_keys or [])
        self.read_only = set(read_only or [])  # users without create_doc/write: bulk is 403
        self.api_keys |= {f"Bearer {t}" for t in bearer_tokens or []}  # tokens, service tokens

    def set_health(self, status: str) -> None:
        if status not in HEALTH_RANK:
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
