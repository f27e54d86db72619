#!/usr/bin/env python3
"""A fast Elasticsearch bulk sink for logship_bench.py: counts lines, times their arrival.

Not the project's stand-in (agents.testing.elasticsearch), which stores and checks every
document: this one only answers like Elasticsearch, as cheaply as it can, so that it is
never what limits the shipper being measured.

- `POST|PUT /_bulk` and `/{index}/_bulk`: NDJSON, gzip or not. Every non-empty line that
  starts with `{"create"` or `{"index"` is an action (the benchmark's documents never
  start that way); the answer has one `201` item per action, with the action's `_id`
  (or a made-up one), and `errors: false`.
- `GET /` and `HEAD /`: the cluster info the official client's product check wants.
- Every response carries `X-Elastic-Product: Elasticsearch`.
- Control, for the benchmark only: `POST /_bench/reset` with `{"target": N, "live": bool}`
  starts a new count; `GET /_bench/stats` returns the count, when it reached the target
  (CLOCK_MONOTONIC, comparable across processes on Linux), this process's CPU time and,
  in live mode, latency percentiles. In live mode each document's `seq=N ts=NS` (the
  writer's CLOCK_MONOTONIC at write()) is pulled out, and the latency is the moment the
  sink has parsed the request and is about to acknowledge it, minus `ts`.

Run: python benchmarks/_sink.py [--host 127.0.0.1] [--port 0] [--exit-on-stdin-eof];
it prints `listening PORT` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import resource
import signal
import sys
import time
from array import array

from aiohttp import web

PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
INFO = {
    "name": "bench-sink",
    "cluster_name": "bench",
    "cluster_uuid": "bench-sink-0000000000",
    "version": {
        "number": "8.15.0",
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "0" * 40,
        "build_date": "2024-08-05T10:05:34.233336849Z",
        "build_snapshot": False,
        "lucene_version": "9.11.1",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "You Know, for Search",
}
_ID = re.compile(rb'"_id"\s*:\s*"([^"]*)"')
_INDEX = re.compile(rb'"_index"\s*:\s*"([^"]*)"')
_STAMP = re.compile(rb"seq=(\d+) ts=(\d+)")
_ITEM = b'{"%s":{"_index":"%s","_id":"%s","_version":1,"result":"created","status":201}}'


class State:
    def __init__(self) -> None:
        self.reset(0, live=False)

    def reset(self, target: int, *, live: bool) -> None:
        self.target, self.live = target, live
        self.lines = 0
        self.requests = 0
        self.bytes_in = 0  # as received (compressed when gzip)
        self.bytes_plain = 0
        self.gzip_requests = 0
        self.t_first: float | None = None
        self.t_done: float | None = None
        self.seqs = array("q")
        self.latencies = array("q")  # ns
        self.auto_id = 0


STATE = State()


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj).encode(),
        status=status,
        content_type="application/json",
        headers=PRODUCT,
    )


async def info(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(status=200, content_type="application/json", headers=PRODUCT)
    return _json(INFO)


async def bulk(request: web.Request) -> web.Response:
    raw = await request.read()  # aiohttp inflates a gzip Content-Encoding by itself
    s = STATE
    s.requests += 1
    s.bytes_in += int(request.headers.get("Content-Length") or len(raw))
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        s.gzip_requests += 1
    if raw[:2] == b"\x1f\x8b":  # not inflated on the way in
        raw = gzip.decompress(raw)
    s.bytes_plain += len(raw)
    actions: list[bytes] = []
    docs: list[bytes] = []
    expect_doc = False
    for line in raw.split(b"\n"):
        if not line:
            continue
        if not expect_doc and (line.startswith((b'{"create"', b'{"index"'))):
            actions.append(line)
            expect_doc = True
        else:
            docs.append(line)
            expect_doc = False
    now = time.monotonic()
    if s.t_first is None:
        s.t_first = now
    if s.live:
        ack_ns = time.monotonic_ns()
        for seq, ts in _STAMP.findall(b"\n".join(docs)):
            s.seqs.append(int(seq))
            s.latencies.append(ack_ns - int(ts))
    s.lines += len(actions)
    if s.t_done is None and s.target and s.lines >= s.target:
        s.t_done = now
    return web.Response(body=_answer(actions, request), content_type="application/json",
                        headers=PRODUCT)  # fmt: skip


def _answer(actions: list[bytes], request: web.Request) -> bytes:
    if not actions:
        return b'{"took":0,"errors":false,"items":[]}'
    first = actions[0]
    op = b"create" if first.startswith(b'{"create"') else b"index"
    found = _INDEX.search(first)
    index = found.group(1) if found else request.match_info.get("index", "bench").encode()
    ids = _ID.findall(b"\n".join(actions)) if b'"_id"' in first else []
    if len(ids) != len(actions):
        start = STATE.auto_id
        STATE.auto_id += len(actions)
        ids = [b"auto-%d" % i for i in range(start, start + len(actions))]
    items = b",".join([_ITEM % (op, index, i) for i in ids])
    return b'{"took":1,"errors":false,"items":[' + items + b"]}"


async def reset(request: web.Request) -> web.Response:
    body = await request.json()
    STATE.reset(int(body.get("target", 0)), live=bool(body.get("live", False)))
    return _json({"ok": True})


def _quantile(ordered: list[int], q: float) -> float:
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def stats(request: web.Request) -> web.Response:
    s = STATE
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, object] = {
        "lines": s.lines,
        "requests": s.requests,
        "gzip_requests": s.gzip_requests,
        "bytes_in": s.bytes_in,
        "bytes_plain": s.bytes_plain,
        "t_first": s.t_first,
        "t_done": s.t_done,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
    }
    if s.live and request.query.get("latency") and s.latencies:
        seqs = sorted(s.seqs)
        ordered = sorted(s.latencies)
        out["latency_ms"] = {
            "n": len(ordered),
            "p50": _quantile(ordered, 0.50) / 1e6,
            "p90": _quantile(ordered, 0.90) / 1e6,
            "p99": _quantile(ordered, 0.99) / 1e6,
            "p999": _quantile(ordered, 0.999) / 1e6,
            "max": ordered[-1] / 1e6,
            "mean": sum(ordered) / len(ordered) / 1e6,
        }
        out["seq"] = {
            "min": seqs[0],
            "max": seqs[-1],
            "distinct": len(set(seqs)),
            "duplicates": len(seqs) - len(set(seqs)),
        }
    return _json(out)


def make_app() -> web.Application:
    app = web.Application(client_max_size=512 * 1024 * 1024)
    app.router.add_route("GET", "/", info)
    app.router.add_route("HEAD", "/", info)
    for path in ("/_bulk", "/{index}/_bulk"):
        app.router.add_route("POST", path, bulk)
        app.router.add_route("PUT", path, bulk)
    app.router.add_route("POST", "/_bench/reset", reset)
    app.router.add_route("GET", "/_bench/stats", stats)
    return app


async def serve(host: str, port: int, *, watch_stdin: bool) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=256)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if watch_stdin:
        # The benchmark holds our stdin: if it dies without stopping us, EOF stops us too.
        fd = sys.stdin.fileno()

        def on_stdin() -> None:
            if not os.read(fd, 4096):
                loop.remove_reader(fd)
                stop.set()

        loop.add_reader(fd, on_stdin)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description="fast Elasticsearch bulk sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, watch_stdin=args.exit_on_stdin_eof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
