"""The control API for users outside the stand-in's process: `POST /_standin/<fault>`
with the fault's arguments as a JSON object, `GET /_standin/docs|count|requests` to look.
Each operation is the `StandIn` method of the same name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from aiohttp import web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.server import StandIn


async def control(es: StandIn, request: web.Request) -> web.StreamResponse:
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
                "docs": lambda: {"docs": es.docs(index)},
                "count": lambda: {"count": es.count(index)},
                "requests": lambda: {"requests": [r.to_json() for r in es.requests]},
            }
            if op not in views:
                raise KeyError(op)
            return web.json_response(views[op]())
        if request.method != "POST":
            return web.json_response({"error": "use GET or POST"}, status=405)
        if op == "down":
            return await _down(es, request, args)
        if op == "up":
            await es.up(**args)
            return web.json_response({"acknowledged": True})
        setters: dict[str, Callable[..., None]] = {
            "fail_requests": es.fail_requests,
            "fail_items": es.fail_items,
            "latency": es.latency,
            "drop_connections": es.drop_connections,
            "max_body_bytes": functools.partial(_set_max_body_bytes, es),
            "health": es.set_health,
            "security": es.security,
            "reset_faults": es.reset_faults,
            "clear": es.clear,
        }
        if op not in setters:
            raise KeyError(op)
        setters[op](**args)
    except KeyError as e:
        return web.json_response({"error": f"unknown stand-in operation {e}"}, status=404)
    except (TypeError, ValueError) as e:
        return web.json_response({"error": f"{op}: {e}"}, status=400)
    return web.json_response({"acknowledged": True})


async def _down(es: StandIn, request: web.Request, args: dict[str, object]) -> web.StreamResponse:
    """`down()`, acknowledged in the middle: once new connections are refused, before
    this one is cut with the others."""
    seconds = args.pop("seconds", None)
    if args or not (seconds is None or isinstance(seconds, int | float)):
        raise ValueError("down takes {'seconds': number or null}")
    await es._stop_listening()
    response = web.json_response({"acknowledged": True})
    await response.prepare(request)
    await response.write_eof()
    es._cut_connections()
    es._schedule_up(seconds)
    return response


def _set_max_body_bytes(es: StandIn, bytes: int) -> None:
    if bytes < 0:
        raise ValueError("bytes must not be negative")
    es.max_body_bytes = bytes
