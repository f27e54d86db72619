#!/usr/bin/env python3
"""A fast Elasticsearch bulk sink for logship_bench.py: counts lines, times their arrival.

Not the project's stand-in (agents.testing.elasticsearch), which stores and checks every
document: this one only answers like Elasticsearch, as cheaply as it can, so that it is
never what limits the shipper being measured.

Two ports: the data port, which a shipper is pointed at, and a control port for the
benchmark (so that the benchmark can still talk to the sink while the data port is down).

Data port:

- `POST|PUT /_bulk` and `/{index}/_bulk`: NDJSON, gzip or not. Every non-empty line that
  starts with `{"create"` or `{"index"` is an action (the benchmark's documents never
  start that way); the answer has one `201` item per action, with the action's `_id`
  (or a made-up one), and `errors: false`.
- `GET /` and `HEAD /`: the cluster info the official client's product check wants.
- Every response carries `X-Elastic-Product: Elasticsearch`.

Control port, for the benchmark only:

- `POST /_bench/reset` with `{"target": N, "live": bool, "record": bool}` starts a new
  count. `live`: each document's `seq=N ts=NS` (the writer's CLOCK_MONOTONIC at write())
  is pulled out, and the latency is the moment the sink has parsed the request and is
  about to acknowledge it, minus `ts`. `record`: like Elasticsearch with `create` actions,
  an `_id` already stored is answered `409 version_conflict_engine_exception` and not
  stored again (actions without `_id`, syslog-ng's, are always stored); every stored
  document's `seq=N` is counted, so the benchmark can check each line arrived exactly once.
- `GET /_bench/stats` returns the count, when it reached the target (CLOCK_MONOTONIC,
  comparable across processes on Linux), this process's CPU time, the outage times and
  the length of the stored prefix (every seq below it stored); `latency=1` adds latency
  percentiles (live mode), `record=1&expect=M` the exactly-once check over seqs 0..M-1,
  `seq=N` when seq N was first stored.
- `POST /_bench/outage` with `{"down": true, "mode": "refuse"|"503"}`: the data port
  closes (connections refused, open ones cut, as when the Elasticsearch pod is gone) or
  answers every request 503; `{"down": false, "prefix_target": N}` brings it back (same
  port) and records when seqs 0..N-1 are all stored. Both answer `{"t": CLOCK_MONOTONIC}`.

Run: python benchmarks/_sink.py [--host 127.0.0.1] [--port 0] [--control-port 0]
[--exit-on-stdin-eof]; it prints `listening PORT CONTROL_PORT` and serves until
SIGTERM/SIGINT.
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
UNAVAILABLE = {
    "error": {
        "type": "cluster_block_exception",
        "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
    },
    "status": 503,
}
_ID = re.compile(rb'"_id"\s*:\s*"([^"]*)"')
_INDEX = re.compile(rb'"_index"\s*:\s*"([^"]*)"')
_STAMP = re.compile(rb"seq=(\d+) ts=(\d+)")
_SEQ = re.compile(rb"seq=(\d+)")
_ITEM = b'{"%s":{"_index":"%s","_id":"%s","_version":1,"result":"created","status":201}}'
_CONFLICT = (
    b'{"%s":{"_index":"%s","_id":"%s","status":409,"error":{"type":'
    b'"version_conflict_engine_exception","reason":"[%s]: version conflict, document '
    b'already exists (current version [1])"}}}'
)


class State:
    def __init__(self) -> None:
        self.reset(0, live=False, record=False)
        self.down: str | None = None  # None, "refuse" or "503"
        self.t_down: float | None = None
        self.t_up: float | None = None

    def reset(self, target: int, *, live: bool, record: bool) -> None:
        self.target, self.live, self.record = target, live, record
        self.lines = 0
        self.requests = 0
        self.refused_requests = 0  # answered 503 while "down"
        self.bytes_in = 0  # as received (compressed when gzip)
        self.bytes_plain = 0
        self.gzip_requests = 0
        self.t_first: float | None = None
        self.t_done: float | None = None
        self.seqs = array("q")
        self.latencies = array("q")  # ns
        self.auto_id = 0
        # record mode
        self.ids: set[bytes] = set()
        self.counts = bytearray()  # times each seq was stored, saturating at 255
        self.first_ack = array("q")  # ns, by seq
        self.stored = 0
        self.stored_without_seq = 0
        self.conflicts = 0
        self.prefix = 0  # every seq below it is stored
        self.prefix_target = 0
        self.t_prefix: float | None = None
        self.t_first_after_up: float | None = None


STATE = State()


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj).encode(),
        status=status,
        content_type="application/json",
        headers=PRODUCT,
    )


async def info(request: web.Request) -> web.Response:
    if STATE.down == "503":
        return _json(UNAVAILABLE, 503)
    if request.method == "HEAD":
        return web.Response(status=200, content_type="application/json", headers=PRODUCT)
    return _json(INFO)


async def bulk(request: web.Request) -> web.Response:
    raw = await request.read()  # aiohttp inflates a gzip Content-Encoding by itself
    s = STATE
    now = time.monotonic()
    if s.t_up is not None and s.t_first_after_up is None:
        s.t_first_after_up = now
    if s.down == "503":
        s.refused_requests += 1
        return _json(UNAVAILABLE, 503)
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
    if s.record:
        return _record(actions, docs, request, now)
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


def _record(
    actions: list[bytes], docs: list[bytes], request: web.Request, now: float
) -> web.Response:
    """Store like Elasticsearch (a known `_id` is a 409) and count every stored seq."""
    s = STATE
    ack_ns = time.monotonic_ns()
    default_index = request.match_info.get("index", "bench").encode()
    items: list[bytes] = []
    errors = False
    counts, first_ack = s.counts, s.first_ack
    for action, doc in zip(actions, docs, strict=False):
        op = b"create" if action.startswith(b'{"create"') else b"index"
        found = _INDEX.search(action)
        index = found.group(1) if found else default_index
        found = _ID.search(action)
        if found is None:
            doc_id = b"auto-%d" % s.auto_id
            s.auto_id += 1
        else:
            doc_id = found.group(1)
            if doc_id in s.ids:
                s.conflicts += 1
                errors = True
                items.append(_CONFLICT % (op, index, doc_id, doc_id))
                continue
            s.ids.add(doc_id)
        items.append(_ITEM % (op, index, doc_id))
        s.stored += 1
        found = _STAMP.search(doc) if s.live else _SEQ.search(doc)
        if found is None:
            s.stored_without_seq += 1
            continue
        seq = int(found.group(1))
        if seq >= len(counts):
            grow = max(seq + 1 - len(counts), len(counts), 4096)
            counts.extend(bytes(grow))
            first_ack.frombytes(bytes(8 * grow))
        if counts[seq] == 0:
            first_ack[seq] = ack_ns
            if s.live:
                s.seqs.append(seq)
                s.latencies.append(ack_ns - int(found.group(2)))
        if counts[seq] < 255:
            counts[seq] += 1
    s.lines += len(actions)
    while s.prefix < len(counts) and counts[s.prefix]:
        s.prefix += 1
    if s.t_done is None and s.target and s.lines >= s.target:
        s.t_done = now
    if s.t_prefix is None and s.prefix_target and s.prefix >= s.prefix_target:
        s.t_prefix = now
    body = b'{"took":1,"errors":%s,"items":[%s]}' % (
        b"true" if errors else b"false",
        b",".join(items),
    )
    return web.Response(body=body, content_type="application/json", headers=PRODUCT)


# --- control ---------------------------------------------------------------------------


class DataPort:
    """The port the shipper talks to; it can go away and come back on the same number."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        # In-flight requests get a second to finish when the port goes down, then are cut.
        runner = web.AppRunner(make_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)  # fmt: skip
        await runner.setup()
        for attempt in range(50):
            try:
                await web.TCPSite(runner, self.host, self.port, backlog=256).start()
                break
            except OSError:  # the old socket's port not free yet
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.port = runner.addresses[0][1]
        self.runner = runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


DATA: DataPort | None = None


async def reset(request: web.Request) -> web.Response:
    body = await request.json()
    STATE.reset(int(body.get("target", 0)), live=bool(body.get("live", False)),
                record=bool(body.get("record", False)))  # fmt: skip
    return _json({"ok": True})


async def outage(request: web.Request) -> web.Response:
    body = await request.json()
    assert DATA is not None
    s = STATE
    if body.get("down"):
        mode = body.get("mode", "refuse")
        if mode not in ("refuse", "503"):
            return _json({"error": f"mode {mode!r}: refuse or 503"}, 400)
        s.down = mode
        s.t_down, s.t_up, s.t_first_after_up = time.monotonic(), None, None
        if mode == "refuse":
            await DATA.stop()
        return _json({"t": s.t_down})
    if s.down == "refuse":
        await DATA.start()
    s.down = None
    s.prefix_target = int(body.get("prefix_target", 0))
    s.t_prefix = time.monotonic() if s.prefix >= s.prefix_target > 0 else None
    s.t_up = time.monotonic()
    return _json({"t": s.t_up})


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
        "refused_requests": s.refused_requests,
        "gzip_requests": s.gzip_requests,
        "bytes_in": s.bytes_in,
        "bytes_plain": s.bytes_plain,
        "t_first": s.t_first,
        "t_done": s.t_done,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
        "down": s.down,
        "t_down": s.t_down,
        "t_up": s.t_up,
        "t_first_after_up": s.t_first_after_up,
        "prefix": s.prefix,
        "t_prefix": s.t_prefix,
    }
    query = request.query
    if s.live and query.get("latency") and s.latencies:
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
    if s.record and query.get("record"):
        expect = int(query.get("expect", "0"))
        counts = s.counts
        distinct = len(counts) - counts.count(0)
        below = counts[:expect]
        out["record"] = {
            "stored": s.stored,
            "stored_without_seq": s.stored_without_seq,
            "distinct": distinct,
            "twice_or_more": s.stored - s.stored_without_seq - distinct,
            "conflicts_409": s.conflicts,
            "expect": expect,
            "missing": below.count(0) + max(0, expect - len(counts)),
            "unexpected": distinct - (len(below) - below.count(0)),
        }
    if s.record and "seq" in query:
        seq = int(query["seq"])
        ack = s.first_ack[seq] if seq < len(s.counts) and s.counts[seq] else None
        out["seq_first_ack"] = None if ack is None else ack / 1e9
    return _json(out)


def make_app() -> web.Application:
    app = web.Application(client_max_size=512 * 1024 * 1024)
    app.router.add_route("GET", "/", info)
    app.router.add_route("HEAD", "/", info)
    for path in ("/_bulk", "/{index}/_bulk"):
        app.router.add_route("POST", path, bulk)
        app.router.add_route("PUT", path, bulk)
    return app


def make_control_app() -> web.Application:
    app = web.Application()
    app.router.add_route("POST", "/_bench/reset", reset)
    app.router.add_route("GET", "/_bench/stats", stats)
    app.router.add_route("POST", "/_bench/outage", outage)
    return app


async def serve(host: str, port: int, control_port: int, *, watch_stdin: bool) -> None:
    global DATA
    DATA = DataPort(host, port)
    await DATA.start()
    control = web.AppRunner(make_control_app(), access_log=None, handle_signals=False)
    await control.setup()
    await web.TCPSite(control, host, control_port).start()
    print(f"listening {DATA.port} {control.addresses[0][1]}", flush=True)
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
    await DATA.stop()
    await control.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description="fast Elasticsearch bulk sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.control_port, watch_stdin=args.exit_on_stdin_eof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
