"""The cluster endpoints: `GET /` (info, the version a client checks) and
`GET /_cluster/health` (with `wait_for_status`, as init containers use it)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from agents.testing.elasticsearch.errors import _illegal
from agents.testing.elasticsearch.query import parse_time
from agents.testing.elasticsearch.wire import reply

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn

HEALTH_RANK = {"green": 0, "yellow": 1, "red": 2}


async def info(es: StandIn, request: web.Request) -> web.Response:
    return reply(request, es.profile.root("standin-node", es.cluster_name, es.cluster_uuid))


async def health(es: StandIn, request: web.Request) -> web.Response:
    wanted = request.query.get("wait_for_status")
    timed_out = False
    if wanted is not None:
        if wanted not in HEALTH_RANK:
            raise _illegal(f"unknown cluster health status [{wanted}]")
        deadline = time.monotonic() + parse_time(request.query.get("timeout", "30s"))
        while HEALTH_RANK[es._health] > HEALTH_RANK[wanted]:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or es._stopping.is_set():
                timed_out = True
                break
            with contextlib.suppress(TimeoutError):  # stop() sets it too
                await asyncio.wait_for(es._health_changed.wait(), remaining)
    status = es._health
    shards = len(es.store.indices)
    unassigned = {"green": 0, "yellow": shards, "red": 2 * shards}[status]
    body = {
        "cluster_name": es.cluster_name,
        "status": status,
        "timed_out": timed_out,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": shards if status != "red" else 0,
        "active_shards": shards if status != "red" else 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": unassigned,
        "unassigned_primary_shards": shards if status == "red" else 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0 if status == "green" else 50.0,
    }
    return reply(request, body, 408 if timed_out else 200)


async def has_privileges(es: StandIn, request: web.Request) -> web.Response:
    """`_security/user/_has_privileges`: what the authenticated user may do. Without
    security the endpoint is refused as Elasticsearch refuses it (security not enabled)."""
    import base64

    from agents.testing.elasticsearch.errors import EsError
    from agents.testing.elasticsearch.wire import BODY

    if not (es.users or es.api_keys):
        raise EsError(500, "exception", "Security must be explicitly enabled when using a "
                      "[basic] license. Enable security by setting [xpack.security.enabled] "
                      "to [true] in the elasticsearch.yml file and restart the node.")  # fmt: skip
    user = "api_key"
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        user = base64.b64decode(value).decode().partition(":")[0]
    import json

    asked = json.loads(request.get(BODY) or b"{}")
    allowed = user not in es.read_only
    index: dict[str, dict[str, bool]] = {}
    for entry in asked.get("index", []):
        for name in entry.get("names", []):
            index[name] = {p: allowed or p in ("read", "view_index_metadata")
                           for p in entry.get("privileges", [])}  # fmt: skip
    everything = all(v for privileges in index.values() for v in privileges.values())
    return reply(request, {"username": user, "has_all_requested": everything, "cluster": {},
                           "index": index, "application": {}})  # fmt: skip
