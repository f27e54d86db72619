#!/usr/bin/env python3
"""logship vs syslog-ng on every scenario of the performance issue, in one run.

Both shippers read the same kind of file and send it to the same kind of sink
(benchmarks/_sink.py: aiohttp on loopback, in its own process, answering `_bulk` like
Elasticsearch and doing nothing else), in the same run, interleaved where a scenario is
repeated (order rotated every round) so machine noise lands on both; the table puts
logship's figure beside syslog-ng's with their ratio and PASS/MISS per goal.
`--scenarios catchup,live,idle,drain,outage,waitfor` picks some (default: all, in that
order); `--quick` shrinks every one of them for a smoke test.

1. catchup: a file of N existing lines (default 1,000,000 of ~140 bytes of Java-style
   application log text, generated once per run into a temp dir) is shipped from its
   start by a freshly started shipper with empty state, R times per variant (default 3;
   medians). Wall time = from just before the spawn to the moment the sink has counted N
   bulk actions (recorded inside the sink on CLOCK_MONOTONIC, which is system-wide on
   Linux), so it includes the shipper's start-up; lines/s = N / wall. Then the shipper
   gets SIGTERM. CPU = user+sys from os.wait4() on the shipper's own pid (all its threads,
   start-up and shutdown included) / N. Peak RSS = VmHWM from /proc/PID/status, read every
   20-50 ms until the process is gone (the last reading is the peak; wait4's ru_maxrss is
   in the JSON too, but on Linux it can't read below this benchmark's own RSS at spawn
   time, VmHWM can). logship runs with --compress and --no-compress; syslog-ng with and
   without compression() if its http() destination has it (3.38, Debian 12's, does not:
   the benchmark says so and compares against plain). Goals: lines/s >= 1.5x syslog-ng's,
   CPU per line <= 0.5x, peak RSS <= 48 MiB (issue 11: a sidecar runs in every pod).
2. live: a writer (this process) appends 10,000 lines/s (in about 2,000 write()s a
   second) for 60 s to a file the shipper already follows, each line ending in
   `seq=N ts=<CLOCK_MONOTONIC ns at write()>`, then 2 s more of unstamped lines so that
   the last measured lines travel in a stream that goes on, as in a live pod. The sink
   takes latency = (its clock when about to acknowledge the request) - ts for every
   stamped line; p50/p99 over all of them, one run per shipper (logship with its default
   --compress). Goals: p50 <= 100 ms, p99 <= 300 ms.
3. idle: 20 files of 1,000 lines each are shipped by a fresh shipper; once the sink has
   them all and 5 s more have passed, nothing is written for 60 s, and CPU = the growth of
   utime+stime in /proc/PID/stat (all threads; 10 ms ticks) over those 60 s, as % of one
   core. Goal: <= 1%. Context switches per second (all threads) are reported too: a
   wake-up count that the 10 ms ticks cannot see. Idle RSS = VmRSS at the end of those
   60 s: what a pod pays for its sidecar all day. Goal: <= 30 MiB (issue 11);
   benchmarks/memory_breakdown.py says where it goes (imports, threads, heap).
4. drain (a co-located sidecar's shutdown): an app process (holding the file open, as
   apps do) writes 1,000 lines/s for 5 s; then it and the shipper get SIGTERM at the same
   moment, as the kubelet sends it; the app logs 5 more lines over 2 s and exits. Drain
   cost = from the app's exit to the shipper's (pidfds, not polls); the last line's
   acknowledgement is measured from the app's exit too. 3 runs per shipper, interleaved;
   median and max. The sink stores like Elasticsearch (a repeated `_id` is a 409) and
   counts every seq, so lines missing or stored twice are counted. Goal for logship:
   every run's cost <= --drain-quiet + 0.5 s (its --drain-quiet read from `logship
   --help`, or from a --logship-arg that sets it), every line stored once. syslog-ng has
   no drain: it stops at the signal, before the app (a negative time); what arrived is
   reported beside it.
5. outage: each shipper follows its own file on its own sink while the app writes 5,000
   lines/s: 10 s healthy, then the sink's data port closes for 600 s (connections refused
   and open ones cut, as when the Elasticsearch pod is gone; `--outage-mode 503` answers
   every request 503 instead), then it comes back on the same port. The app keeps writing
   until 5 s after the backlog is shipped. The sink stores like Elasticsearch (`create`
   with a known `_id` -> 409, so a line logship sends again is not stored twice; syslog-ng
   sends no `_id`, so its repeats would be real duplicates) and counts every seq, and it
   records when every line written before the recovery is stored. Figures: peak RSS
   (VmHWM over the shipper's whole life, VmRSS sampled every 0.25 s per phase), lines
   stored once / written / missing / stored twice / 409s, and recovery -> backlog shipped
   (time of the first request after recovery too); logship's run adds --http-port, and its
   /metrics 2 s before the recovery say how much of the queue it held. Goals for logship:
   RSS <= its queue budget (--queue-bytes, read like --drain-quiet) + 16 MiB throughout;
   every line stored exactly once. syslog-ng goes first and logship's run starts
   --outage-stagger s (120) later, so the two outages overlap but the recoveries do not (a
   shipper is stopped once its run is checked); the report says if they did overlap.
   syslog-ng retries a dead destination every time-reopen() s from its first failure, so
   its first request after the recovery lands at a phase set by the outage's length
   (about 0 s for 600 s and time-reopen(10)); logship's lands anywhere in its jittered
   backoff.
6. waitfor: benchmarks/waitfor_bench.py (waitfor vs wait-for-it; its goals and method are
   in its docstring) run unchanged as a child (`--quick` passed on), its JSON table
   printed as a second table. `make bench` runs it alone.

Settings: logship with its defaults (`logship --help`) plus any --logship-arg.
syslog-ng's elasticsearch-http() with the same batch limits and concurrency: workers(4),
batch-lines(2000), batch-bytes(5MiB); batch-timeout left at its default (-1: send when the
queue runs empty, never wait for a fuller batch; a timeout like logship's flush interval
cuts its catch-up rate and adds to its live latency, so that would flatter logship).
file() sources (one per file) with follow-freq(0.1) flags(no-parse) and flow-control
(without it syslog-ng drops what does not fit its queue), log-iw-size(20000) and
log-fetch-limit(1000) (with the defaults of 100, flow control keeps 100 lines in flight:
~8-line requests, 4x slower); time-reopen(10) (the default, 60 s, would make it wait up
to a minute after an outage; logship's retry backoff has a 30 s cap with full jitter);
and a template making an ECS-like document like logship's (no log.offset).

syslog-ng is not installed system-wide: Debian's packages are fetched with `apt-get
download` and unpacked with `dpkg -x` into a cache directory (default
~/.cache/pod-agents-bench/syslog-ng; see benchmarks/_syslog_ng.py). If that fails,
logship runs alone and the reason is printed.

Goals are printed as PASS/MISS, not asserted. `--baseline FILE` (the --json of an earlier
run, e.g. before a change) adds a table of logship's figures then and now, each also as a
ratio to syslog-ng's in its own run: "no worse than before" is read there. A rate or CPU
figure is called better or worse only when it and its ratio to syslog-ng agree, `mixed`
when they do not (the machine's load changed between the runs: it does not weigh on a
one-thread syslog-ng as on logship); runs interleaved in one process are then the better
evidence. Every child has a timeout, dies with this
process (PR_SET_PDEATHSIG) and is killed at the end. Nothing is written to the source
tree. Linux only.

Usage: .venv/bin/python benchmarks/logship_bench.py [--quick] [--scenarios LIST] [--json FILE]
       [--baseline FILE]
       (default about 25 min on 2 cores, the outage alone 13-16; --quick about 3 min,
       `--quick --scenarios outage` 1.5)
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # the imports below: no __pycache__ in the source tree

from _common import (  # noqa: E402
    HERE,
    HOST,
    STOP_TIMEOUT_S,
    Child,
    Sink,
    fmt,
    fmt_ratio,
    kill_all_children,
    machine,
    median,
    print_table,
    ratio,
    source_state,
    verdict,
)
from _syslog_ng import CACHE_DIR, TIME_REOPEN_S, SyslogNg, setup_syslog_ng  # noqa: E402

BIN_DIR = os.path.dirname(sys.executable)  # not resolved: .venv/bin/python is a symlink
LOGSHIP = os.path.join(BIN_DIR, "logship")
WAITFOR_BENCH = os.path.join(HERE, "waitfor_bench.py")
INDEX = "bench"
DOWNWARD_ENV = ("POD_NAME", "POD_NAMESPACE", "POD_UID", "POD_IP", "NODE_NAME", "CONTAINER_NAME")
SCENARIOS = ("catchup", "live", "idle", "drain", "outage", "waitfor")
SHIPPER_SCENARIOS = ("catchup", "live", "idle", "drain", "outage")
TABLE = ["scenario", "logship", "syslog-ng", "ratio", "goal", "result"]

GOAL_RATE_RATIO = 1.5
GOAL_CPU_RATIO = 0.5
GOAL_RSS_MIB = 64.0  # live
GOAL_CATCHUP_RSS_MIB = 48.0  # issue 11 (was 64)
GOAL_IDLE_RSS_MIB = 30.0  # issue 11
GOAL_P50_MS = 100.0
GOAL_P99_MS = 300.0
GOAL_IDLE_CPU_PCT = 1.0
GOAL_DRAIN_SLACK_S = 0.5  # exit within --drain-quiet + this of the app's exit
DRAIN_LATE_LINES = 5  # written after SIGTERM ...
DRAIN_LATE_S = 2.0  # ... over this long, as a server waiting for its requests logs them
DRAIN_APP = """
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: None)  # it stops when its shutdown is done
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
while chunk := os.read(0, 1 << 16):
    os.write(fd, chunk)
"""
GOAL_OUTAGE_SLACK_MIB = 16.0  # RSS within --queue-bytes + this

LIVE_TAIL_S = 2.0  # unstamped lines written after the measured ones: the stream goes on
WARM_LINES = 20  # lines a followed file starts with, to know the shipper is up
IDLE_LINES_PER_FILE = 1000
OUTAGE_TAIL_S = 5.0  # the app writes on this long after the backlog is shipped
OUTAGE_SETTLE_S = 60.0  # then the last lines have this long to arrive
SAMPLE_EVERY_S = 0.25
METRICS_BEFORE_UP_S = 2.0
WAITFOR_TIMEOUT_S = 900.0


# --- logship's own settings -------------------------------------------------------------


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    unit = (match.group(2) or "").upper().rstrip("B")
    scale = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "KI": 1024, "MI": 1024**2,
             "GI": 1024**3}[unit]  # fmt: skip
    return int(float(match.group(1)) * scale)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    scale = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * scale


def logship_setting(flag: str, extra: list[str], help_text: str) -> tuple[str, str]:
    """→ (value, where from): a --logship-arg that sets `flag` wins over `logship --help`."""
    for i, arg in enumerate(extra):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1], "--logship-arg"
        if arg == flag and i + 1 < len(extra):
            return extra[i + 1], "--logship-arg"
    env = "LOGSHIP_" + flag.lstrip("-").replace("-", "_").upper()
    match = re.search(re.escape(env) + r",\s+default\s+([^)\s]+)\)", help_text)
    if not match:
        raise ValueError(f"`logship --help` gives no default for {flag}")
    return match.group(1), "its default"


# --- log lines ----------------------------------------------------------------------------

LEVELS = ["INFO"] * 14 + ["DEBUG"] * 3 + ["WARN"] * 2 + ["ERROR"]
THREADS = ["nio-8080-exec-{n}", "scheduling-1", "kafka-consumer-{n}", "main", "pool-2-thread-{n}"]
LOGGERS = [
    "c.e.shop.web.OrderController",
    "c.e.shop.pay.PaymentService",
    "o.h.e.jdbc.spi.SqlExceptionHelper",
    "c.e.shop.cache.ProductCache",
    "o.s.web.servlet.DispatcherServlet",
    "c.e.shop.client.StockClient",
]
MESSAGES = [
    "GET /api/orders/{id} {status} {ms}ms user=u{uid}",
    "payment ok order={id} amount={amt} EUR attempt={n}",
    'cache miss key="product:{id}"',
    "slow query ({ms} ms): select * from orders where id = ?",
    "retrying http://stock:8080/items/{id} (attempt {n}/3)",
    "user u{uid} logged in from 10.{a}.{b}.{c}",
    "checkout failed: no stock for SKU-{id} (wanted {n})",
    "wrote C:\\reports\\{id}.csv in {ms} ms",
    "commande {id} expédiée à Zürich",
]


class LineMaker:
    """~140-byte application log lines; the bodies are made once and reused in turn."""

    def __init__(self, seed: int, pool: int = 20000) -> None:
        rng = random.Random(seed)
        self.bodies: list[str] = []
        for _ in range(pool):
            msg = rng.choice(MESSAGES).format(
                id=rng.randrange(10**5, 10**6),
                status=rng.choice((200, 200, 200, 201, 204, 404, 500)),
                ms=rng.randrange(1, 900),
                uid=rng.randrange(10**4),
                amt=f"{rng.randrange(100, 99999) / 100:.2f}",
                n=rng.randrange(1, 4),
                a=rng.randrange(256),
                b=rng.randrange(256),
                c=rng.randrange(256),
                hex=f"{rng.getrandbits(48):012x}",
            )
            thread = rng.choice(THREADS).format(n=rng.randrange(1, 17))[-15:]
            level = rng.choice(LEVELS)
            # Spring Boot's layout less the pid: level, thread (15 chars), logger, message.
            self.bodies.append(f"{level:>5} [{thread:>15}] {rng.choice(LOGGERS)} : {msg}")

    @staticmethod
    def stamp(seconds: float) -> str:
        t = time.gmtime(seconds)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(seconds * 1000) % 1000:03d}Z"

    def catchup(self, path: str, count: int, start: float = 1795000000.0) -> float:
        """Write `count` lines; returns their mean length in bytes (newline included)."""
        total = 0
        bodies, pool = self.bodies, len(self.bodies)
        with open(path, "wb") as fh:
            for first in range(0, count, 10000):
                chunk = []
                for i in range(first, min(count, first + 10000)):
                    chunk.append(
                        f"{self.stamp(start + i / 5000)} {bodies[i % pool]} seq={i} ts=0\n"
                    )
                data = "".join(chunk).encode()
                total += len(data)
                fh.write(data)
        return total / max(1, count)

    def live(self, seq: int, count: int, *, stamped: int) -> bytes:
        """Lines seq..seq+count-1; those below `stamped` carry `seq=N ts=NS`, the rest
        (the tail that keeps the stream going while the last stamped lines travel) `pad=N`."""
        now = self.stamp(time.time())
        ts = time.monotonic_ns()
        bodies, pool = self.bodies, len(self.bodies)
        return "".join(
            f"{now} {bodies[i % pool]} seq={i} ts={ts}\n"
            if i < stamped
            else f"{now} {bodies[i % pool]} pad={i}\n"
            for i in range(seq, seq + count)
        ).encode()


# --- shippers -----------------------------------------------------------------------------


class Variant:
    def __init__(self, key: str, tool: str, compress: bool) -> None:
        self.key, self.tool, self.compress = key, tool, compress


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: str, sng: SyslogNg | None) -> None:
        self.args, self.tmp, self.sng = args, tmp, sng
        self.child_env = {
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONDONTWRITEBYTECODE" and k not in DOWNWARD_ENV
        }
        self.child_env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        self.sink = self.new_sink("sink")
        self.runs = 0
        self.commands: dict[str, list[str]] = {}

    def new_sink(self, name: str) -> Sink:
        return Sink(os.path.join(self.tmp, f"{name}.log"), self.child_env)

    def logship_argv(self, path: str, state: str, compress: bool, sink: Sink) -> list[str]:
        return [
            LOGSHIP,
            "--path", path,
            "--es", sink.url,
            "--data-dir", state,
            "--index", INDEX,
            "--compress" if compress else "--no-compress",
            "--log-level", "warning",
            *self.args.logship_arg,
        ]  # fmt: skip

    def start(
        self, variant: Variant, path: str, *, files: list[str] | None = None,
        sink: Sink | None = None, extra: tuple[str, ...] = (),
    ) -> Child:  # fmt: skip
        """Start a shipper on `path` (logship: a glob; syslog-ng: one file() per `files`);
        `extra`: more logship flags."""
        sink = sink or self.sink
        self.runs += 1
        state = os.path.join(self.tmp, f"run-{self.runs:03d}-{variant.key.replace(' ', '_')}")
        os.makedirs(state)
        log = os.path.join(state, "shipper.log")
        if variant.tool == "logship":
            argv = self.logship_argv(path, os.path.join(state, "data"), variant.compress, sink)
            argv += extra
            env = self.child_env
        else:
            assert self.sng is not None
            conf = os.path.join(state, "syslog-ng.conf")
            with open(conf, "w") as fh:
                fh.write(self.sng.config(paths=files or [path], port=sink.port,
                                         compress=variant.compress, index=INDEX))  # fmt: skip
            argv = self.sng.argv(conf, state)
            env = self.sng.env(self.child_env)
        shown = [a if a != path else "FILE" for a in argv]
        shown = [re.sub(r"run-\d+-[^/]*", "RUN", a) for a in shown]
        self.commands.setdefault(variant.key, [re.sub(r":\d+$", ":PORT", a) for a in shown])
        return Child(argv, log_path=log, env=env)

    def follow(
        self, variant: Variant, path: str, sink: Sink | None = None, extra: tuple[str, ...] = ()
    ) -> tuple[Child, str | None]:
        """A shipper on a new file of WARM_LINES lines, once they reached the sink.

        → (child, None), or (child, why not) with the child stopped."""
        sink = sink or self.sink
        with open(path, "w") as fh:
            for i in range(WARM_LINES):
                fh.write(f"{LineMaker.stamp(time.time())} INFO  [main] c.e.shop.App - start {i}\n")
        sink.reset(WARM_LINES)
        child = self.start(variant, path, sink=sink, extra=extra)
        ready_by = time.monotonic() + 30
        while sink.stats()["t_done"] is None:
            child.sample()
            if time.monotonic() > ready_by or not child.alive():
                why = f"the first lines never reached the sink\n{child.log_tail()}"
                child.stop(10.0)
                return child, why
            time.sleep(0.05)
        return child, None

    # --- catch-up --------------------------------------------------------------------

    def catchup(self, variant: Variant, path: str, lines: int, timeout: float) -> dict:
        self.sink.reset(lines)
        before = self.sink.stats()
        child = self.start(variant, path)
        deadline = child.t_start + timeout
        result: dict = {"variant": variant.key, "lines": lines}
        done = None
        stats = before
        while time.monotonic() < deadline:
            child.sample()
            if not child.alive():
                break
            stats = self.sink.stats()
            if stats["t_done"] is not None:
                done = stats
                break
            time.sleep(0.05)
        result["cpu_at_done_s"] = child.cpu_now()
        child.sample()
        if done is None:
            got = stats["lines"]
            why = (
                f"exited {child.exit_code} early"
                if child.exit_code is not None
                else f"timeout after {timeout:.0f} s"
            )
            result["failure"] = f"{why} with {got}/{lines} lines at the sink"
            result["log_tail"] = child.log_tail()
            child.stop(10.0)
            return result
        wall = done["t_done"] - child.t_start
        result["ended"] = child.stop()
        after = self.sink.stats()
        result.update(
            wall_s=wall,
            first_request_s=(done["t_first"] or 0) - child.t_start,
            lines_per_s=lines / wall,
            cpu_s=child.rusage_cpu_s,
            cpu_us_per_line=(child.rusage_cpu_s or 0) / lines * 1e6,
            peak_rss_kib=child.hwm_kib,
            ru_maxrss_kib=child.rusage_maxrss_kib,
            sink_lines_at_exit=after["lines"],
            sink_requests=after["requests"],
            sink_gzip_requests=after["gzip_requests"],
            sink_bytes_in=after["bytes_in"],
            sink_bytes_plain=after["bytes_plain"],
            sink_cpu_s=done["cpu_s"] - before["cpu_s"],
        )
        if after["lines"] != lines:
            result["note"] = f"sink counted {after['lines']} lines for {lines}"
        return result

    # --- live ------------------------------------------------------------------------

    def live(self, variant: Variant, maker: LineMaker, rate: int, seconds: float) -> dict:
        path = os.path.join(self.tmp, f"live-{self.runs + 1:03d}.log")
        result: dict = {"variant": variant.key, "rate": rate, "seconds": seconds}
        child, why = self.follow(variant, path)
        if why:
            result["failure"] = why
            return result
        stamped = int(rate * seconds)
        total = stamped + int(rate * LIVE_TAIL_S)
        self.sink.reset(total, live=True)
        sink_cpu0 = self.sink.stats()["cpu_s"]
        cpu0, t0 = child.cpu_now(), time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        written, writes, behind = 0, 0, 0
        next_sample = t0
        try:
            while written < total:
                now = time.monotonic()
                due = min(total, int((now - t0) * rate) + 1)
                if due > written:
                    os.write(fd, maker.live(written, due - written, stamped=stamped))
                    writes += 1
                    behind = max(behind, due - written)
                    written = due
                else:
                    time.sleep(0.0005)
                if now >= next_sample:
                    child.sample()
                    next_sample = now + 0.25
        finally:
            os.close(fd)
        t_written = time.monotonic()
        cpu1 = child.cpu_now()
        settle = time.monotonic() + 30
        stats = self.sink.stats()
        while stats["lines"] < total and time.monotonic() < settle and child.alive():
            child.sample()
            time.sleep(0.05)
            stats = self.sink.stats()
        stats = self.sink.stats(latency=True)
        result["ended"] = child.stop()
        result.update(
            written=written,
            stamped=stamped,
            writes=writes,
            largest_write_lines=behind,
            write_seconds=t_written - t0,
            received=stats["lines"],
            latency_ms=stats.get("latency_ms"),
            seq=stats.get("seq"),
            cpu_core_pct=None
            if cpu0 is None or cpu1 is None
            else 100 * (cpu1 - cpu0) / (t_written - t0),
            peak_rss_kib=child.hwm_kib,
            ru_maxrss_kib=child.rusage_maxrss_kib,
            sink_cpu_s=stats["cpu_s"] - sink_cpu0,
        )
        distinct = (stats.get("seq") or {}).get("distinct", 0)
        if stats["lines"] < total:
            result["failure"] = f"only {stats['lines']}/{total} lines reached the sink in 30 s"
        elif distinct != stamped:
            result["failure"] = f"{distinct} distinct stamped lines arrived of {stamped}"
        return result

    # --- idle ------------------------------------------------------------------------

    def idle(
        self, variant: Variant, maker: LineMaker, files: int, seconds: float, settle: float
    ) -> dict:
        folder = os.path.join(self.tmp, f"idle-{self.runs + 1:03d}")
        os.makedirs(folder)
        paths = [os.path.join(folder, f"app-{i:02d}.log") for i in range(files)]
        for i, path in enumerate(paths):
            maker.catchup(path, IDLE_LINES_PER_FILE, start=1795000000.0 + i)
        total = files * IDLE_LINES_PER_FILE
        self.sink.reset(total)
        child = self.start(variant, os.path.join(folder, "*.log"), files=paths)
        result: dict = {"variant": variant.key, "files": files, "lines": total,
                        "seconds": seconds, "settle_s": settle}  # fmt: skip
        deadline = child.t_start + 120
        while self.sink.stats()["t_done"] is None:
            child.sample()
            if time.monotonic() > deadline or not child.alive():
                got = self.sink.stats()["lines"]
                result["failure"] = f"{got}/{total} lines at the sink\n{child.log_tail()}"
                child.stop(10.0)
                return result
            time.sleep(0.05)
        result["shipped_s"] = time.monotonic() - child.t_start
        time.sleep(settle)
        before = self.sink.stats()
        cpu0, ctx0, t0 = child.cpu_now(), child.context_switches(), time.monotonic()
        while (left := t0 + seconds - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            child.sample()  # reads /proc: costs the shipper nothing
        cpu1, ctx1, t1 = child.cpu_now(), child.context_switches(), time.monotonic()
        after = self.sink.stats()
        alive = child.alive()
        result["ended"] = child.stop()
        result.update(
            measured_s=t1 - t0,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            cpu_core_pct=None if cpu0 is None or cpu1 is None else 100 * (cpu1 - cpu0) / (t1 - t0),
            switches_per_s=None if ctx0 is None or ctx1 is None else (ctx1 - ctx0) / (t1 - t0),
            rss_kib=child.rss_kib,
            peak_rss_kib=child.hwm_kib,
            requests_while_idle=after["requests"] - before["requests"],
            lines_while_idle=after["lines"] - before["lines"],
        )
        if not alive:
            result["failure"] = f"the shipper exited while idle\n{child.log_tail()}"
        return result

    # --- drain -----------------------------------------------------------------------

    def drain(self, variant: Variant, maker: LineMaker, rate: int, seconds: float) -> dict:
        """A co-located app and its shipper stopped at once: the app (a process holding
        the file open, as an app does) writes at `rate` for `seconds`, then both get
        SIGTERM; the app logs DRAIN_LATE_LINES more over DRAIN_LATE_S and exits."""
        path = os.path.join(self.tmp, f"drain-{self.runs + 1:03d}.log")
        n = max(DRAIN_LATE_LINES + 1, int(rate * seconds) + DRAIN_LATE_LINES)
        result: dict = {"variant": variant.key, "rate": rate, "written": n}
        child, why = self.follow(variant, path)
        if why:
            result["failure"] = why
            return result
        self.sink.reset(n, live=True, record=True)
        app = Child([sys.executable, "-c", DRAIN_APP, path], stdin=subprocess.PIPE,
                    log_path=os.path.join(self.tmp, "drain-app.log"))  # fmt: skip
        assert app.proc.stdin is not None
        pipe = app.proc.stdin.fileno()
        early = n - DRAIN_LATE_LINES
        written, t0 = 0, time.monotonic()
        try:
            while written < early:
                due = min(early, int((time.monotonic() - t0) * rate) + 1)
                if due > written:
                    os.write(pipe, maker.live(written, due - written, stamped=n))
                    written = due
                else:
                    time.sleep(0.0005)
            time.sleep(0.2)  # the app's write()s reached the file: then the pod is deleted
            with contextlib.suppress(ProcessLookupError):  # died already: reported below
                os.kill(child.pid, signal.SIGTERM)
            os.kill(app.pid, signal.SIGTERM)
            for i in range(DRAIN_LATE_LINES):  # the app's shutdown lines, late
                until = time.monotonic() + DRAIN_LATE_S / DRAIN_LATE_LINES
                while (left := until - time.monotonic()) > 0:
                    if child.exit_code is None:  # a shipper that ends now: seen at once
                        child.wait_exit(left)
                    else:
                        time.sleep(left)
                os.write(pipe, maker.live(early + i, 1, stamped=n))
        finally:
            app.proc.stdin.close()  # the app ends
        app.wait_exit(10.0)
        if child.wait_exit(STOP_TIMEOUT_S):
            result["ended"] = f"exit {child.exit_code}"
        else:
            child.kill()
            result["ended"] = f"killed: no exit {STOP_TIMEOUT_S:.0f} s after SIGTERM"
            result["failure"] = result["ended"]
        time.sleep(0.3)  # a request the sink was still answering when the shipper exited
        stats = self.sink.stats(expect=n, seq=n - 1)
        rec = stats["record"]
        ack = stats.get("seq_first_ack")
        assert child.t_exit is not None and app.t_exit is not None
        result.update(
            exit_s=child.t_exit - app.t_exit,
            exit_code=child.exit_code,
            last_ack_s=None if ack is None else ack - app.t_exit,
            stored=n - rec["missing"],
            missing=rec["missing"],
            twice=rec["twice_or_more"],
            conflicts_409=rec["conflicts_409"],
            cpu_s=child.rusage_cpu_s,
        )
        return result


# --- outage -------------------------------------------------------------------------------


class OutageRun:
    """One shipper through an outage of its own sink, as a state machine that
    run_outage() steps, so that two runs can overlap in time while one loop writes both
    files: pending -> healthy -> down -> recovering -> tail -> settling -> done."""

    def __init__(
        self, b: Bench, variant: Variant, maker: LineMaker, start_at: float, opts: dict
    ) -> None:
        self.b, self.variant, self.maker, self.start_at = b, variant, maker, start_at
        self.rate: int = opts["rate"]
        self.healthy: float = opts["healthy"]
        self.seconds: float = opts["seconds"]
        self.mode: str = opts["mode"]
        self.limit: float = opts["limit"]
        self.stall: float = opts["stall"]
        self.phase = "pending"
        self.sink: Sink | None = None
        self.child: Child | None = None
        self.path = ""
        self.fd: int | None = None
        self.written = 0
        self.largest_write = 0
        self.t0 = self.t_down = self.t_up = self.t_backlog = self.t_done = 0.0
        self.write_until: float | None = None
        self.settle_by = 0.0
        self.sink_cpu_up = 0.0
        self.metrics_port = 0  # logship's /metrics, read just before the recovery
        self.next_poll = 0.0
        self.stall_prefix, self.stall_since = -1, 0.0
        self.rss_max: dict[str, int] = {}
        self.result: dict = {"variant": variant.key, "rate": self.rate, "outage_s": self.seconds,
                             "mode": self.mode, "healthy_s": self.healthy}  # fmt: skip

    def say(self, what: str) -> None:
        print(f"  outage {self.variant.key:<18} {what}", flush=True)

    def step(self, now: float) -> None:
        if self.phase in ("healthy", "down", "recovering", "tail"):
            self._write(now)
        if self.phase in ("healthy", "down"):  # on time to the millisecond, not to the poll
            getattr(self, "_" + self.phase)(now)
        if now < self.next_poll or self.phase == "done":
            return
        self.next_poll = now + SAMPLE_EVERY_S
        if self.child is not None:
            self.child.sample()
            self.rss_max[self.phase] = max(self.rss_max.get(self.phase, 0), self.child.rss_kib)
            if self.phase != "pending" and not self.child.alive():
                self._finish(now, f"the shipper exited ({self.child.exit_code}) while "
                                  f"{self.phase}\n{self.child.log_tail()}")  # fmt: skip
                return
        if self.phase not in ("healthy", "down"):
            getattr(self, "_" + self.phase)(now)
        elif (
            self.phase == "down"
            and self.metrics_port
            and "metrics_before_up" not in self.result
            and now >= self.t_down + self.seconds - METRICS_BEFORE_UP_S
        ):
            self.result["metrics_before_up"] = scrape_metrics(self.metrics_port)

    def _write(self, now: float) -> None:
        if self.write_until is not None and now >= self.write_until:
            return
        due = int((now - self.t0) * self.rate) + 1
        if due > self.written:
            assert self.fd is not None
            os.write(self.fd, self.maker.live(self.written, due - self.written, stamped=due))
            self.largest_write = max(self.largest_write, due - self.written)
            self.written = due

    def _pending(self, now: float) -> None:
        if now < self.start_at:
            return
        self.sink = self.b.new_sink(f"sink-outage-{self.variant.tool}")
        self.path = os.path.join(self.b.tmp, f"outage-{self.variant.tool}.log")
        extra: tuple[str, ...] = ()
        if self.variant.tool == "logship":
            self.metrics_port = free_port()
            extra = ("--http-host", HOST, "--http-port", str(self.metrics_port))
        self.child, why = self.b.follow(self.variant, self.path, self.sink, extra)
        if why:
            self._finish(time.monotonic(), why)
            return
        self.sink.reset(0, record=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.t0 = time.monotonic()
        self.phase = "healthy"
        self.say(f"following, healthy for {self.healthy:.0f} s")

    def _healthy(self, now: float) -> None:
        if now >= self.t0 + self.healthy:
            assert self.sink is not None
            self.result["written_at_down"] = self.written
            self.t_down = self.sink.down(self.mode)
            self.phase = "down"
            self.say(f"sink down ({self.mode}) for {self.seconds:.0f} s, "
                     f"{self.written:,} lines written")  # fmt: skip

    def _down(self, now: float) -> None:
        if now >= self.t_down + self.seconds:
            assert self.sink is not None and self.child is not None
            self.result["written_at_up"] = self.written
            self.result["rss_at_up_kib"] = self.child.rss_kib
            self.sink_cpu_up = self.sink.stats()["cpu_s"]
            self.t_up = self.sink.up(prefix_target=self.written)
            self.phase = "recovering"
            self.stall_prefix, self.stall_since = -1, now
            self.say(f"sink up again, backlog {self.written:,} lines, "
                     f"RSS {self.child.rss_kib / 1024:.1f} MiB")  # fmt: skip

    def _recovering(self, now: float) -> None:
        assert self.sink is not None
        stats = self.sink.stats()
        if stats["t_prefix"] is not None:
            self.t_backlog = stats["t_prefix"]
            busy = stats["cpu_s"] - self.sink_cpu_up
            self.result["sink_cpu_pct_recovering"] = 100 * busy / max(now - self.t_up, 1e-9)
            self.write_until = now + OUTAGE_TAIL_S
            self.phase = "tail"
            self.say(f"backlog shipped {self.t_backlog - self.t_up:.1f} s after recovery")
            return
        if stats["prefix"] > self.stall_prefix:
            self.stall_prefix, self.stall_since = stats["prefix"], now
        why = None
        if stats["t_first_after_up"] is not None and now - self.stall_since > self.stall:
            why = (f"backlog stalled: seq {stats['prefix']:,} not stored for "
                   f"{self.stall:.0f} s ({stats['lines']:,} stored since the reset)")  # fmt: skip
        elif now - self.t_up > self.limit:
            why = f"backlog not shipped {self.limit:.0f} s after recovery"
        if why:
            self.result["failure"] = why
            self.write_until = now
            self.phase = "tail"
            self.say(why)

    def _tail(self, now: float) -> None:
        assert self.write_until is not None
        if now >= self.write_until:
            assert self.fd is not None
            os.close(self.fd)
            self.fd = None
            self.settle_by = now + OUTAGE_SETTLE_S
            self.phase = "settling"

    def _settling(self, now: float) -> None:
        assert self.sink is not None
        if self.sink.stats()["prefix"] >= self.written or now >= self.settle_by:
            self._finish(now, None)

    def _finish(self, now: float, failure: str | None) -> None:
        self.t_done = now
        if failure and "failure" not in self.result:
            self.result["failure"] = failure
            self.say(f"FAILED: {failure}")
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        r = self.result
        if self.sink is not None and self.t_up:
            stats = self.sink.stats(expect=self.written)
            rec = stats["record"]
            r.update(
                written=self.written,
                stored=self.written - rec["missing"],
                missing=rec["missing"],
                twice=rec["twice_or_more"],
                unexpected=rec["unexpected"],
                conflicts_409=rec["conflicts_409"],
                backlog_s=self.t_backlog - self.t_up if self.t_backlog else None,
                first_request_after_up_s=None
                if stats["t_first_after_up"] is None
                else stats["t_first_after_up"] - self.t_up,
                sink_requests=stats["requests"],
                refused_503=stats["refused_requests"],
                largest_write_lines=self.largest_write,
            )
        if self.child is not None:
            r["ended"] = self.child.stop()
            r.update(peak_rss_kib=self.child.hwm_kib, cpu_s=self.child.rusage_cpu_s,
                     rss_max_kib=self.rss_max)  # fmt: skip
        if self.sink is not None:
            self.sink.stop()
        if self.path:
            with contextlib.suppress(OSError):
                os.remove(self.path)  # up to ~0.6 GB
        self.phase = "done"
        if "stored" in r:
            self.say(f"done: {r['stored']:,}/{r['written']:,} stored, {r['twice']} twice, "
                     f"{r['conflicts_409']:,} 409s, peak RSS "
                     f"{r.get('peak_rss_kib', 0) / 1024:.1f} MiB")  # fmt: skip

    def abort(self) -> None:
        if self.phase != "done":
            if self.fd is not None:
                os.close(self.fd)
            if self.child is not None:
                self.child.kill()
            if self.sink is not None:
                self.sink.child.kill()


def run_outage(b: Bench, variants: list[Variant], maker: LineMaker, opts: dict) -> list[dict]:
    """syslog-ng's run first, logship's `stagger` s later: outages overlap, recoveries not."""
    order = sorted(variants, key=lambda v: v.tool != "syslog-ng")
    start = time.monotonic()
    runs = [OutageRun(b, v, maker, start + i * opts["stagger"], opts) for i, v in enumerate(order)]
    try:
        while any(r.phase != "done" for r in runs):
            now = time.monotonic()
            for r in runs:
                r.step(now)
            time.sleep(0.0005)
    finally:
        for r in runs:
            r.abort()
    for r in runs:  # how long another run was busy (recovering, tail, settling) meanwhile
        end = r.t_backlog or r.t_done
        r.result["recovery_overlap_s"] = sum(
            max(0.0, min(end, o.t_done) - max(r.t_up, o.t_up))
            for o in runs
            if o is not r and r.t_up and o.t_up
        )
    return [r.result for r in runs]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def scrape_metrics(port: int) -> dict[str, float]:
    """logship's /metrics as {name: value}, the unlabelled series only; {} if no answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("logship_") and "{" not in name:
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


# --- waitfor ------------------------------------------------------------------------------


def run_waitfor(tmp: str, quick: bool) -> dict:
    """benchmarks/waitfor_bench.py as it is, in a child; its table comes back as JSON."""
    out = os.path.join(tmp, "waitfor.json")
    argv = [sys.executable, WAITFOR_BENCH, "--json", out, *(["--quick"] if quick else [])]
    child = Child(argv, log_path=os.path.join(tmp, "waitfor.log"), env=dict(os.environ))
    shown = "benchmarks/waitfor_bench.py --json TMP/waitfor.json" + (" --quick" if quick else "")
    result: dict = {"command": shown}
    if not child.wait(WAITFOR_TIMEOUT_S, every=0.2):
        child.kill()
        result["failure"] = f"no exit in {WAITFOR_TIMEOUT_S:.0f} s"
    elif child.exit_code != 0 or not os.path.exists(out):
        result["failure"] = f"exit {child.exit_code}: {child.log_tail()}"
    else:
        with open(out) as fh:
            doc = json.load(fh)
        result.update(table=doc["table"], summary=doc.get("summary"),
                      wall_s=child.t_exit - child.t_start if child.t_exit else None)  # fmt: skip
    return result


# --- the table ----------------------------------------------------------------------------


def _row(scenario: str, ours: str, theirs: str, r: float | None, goal: str, ok: bool | None,
         *, judged: bool = True) -> dict:  # fmt: skip
    return {"scenario": scenario, "logship": ours, "syslog-ng": theirs, "ratio": fmt_ratio(r),
            "goal": goal, "result": verdict(ok) if judged else ""}  # fmt: skip


BASELINE_TABLE = ["figure", "before", "now", "now/before", "before vs syslog-ng",
                  "now vs syslog-ng", "verdict"]  # fmt: skip


def headline(doc: dict) -> dict[str, tuple[float | None, float | None, bool]]:
    """A run's (or its --json's) headline figures: {name: (logship, syslog-ng, higher is
    better)}; medians of the catch-up runs, their largest peak RSS."""

    def catchup(key: str, field: str, pick: str = "median") -> float | None:
        vals = [r[field] for r in doc.get("catchup", {}).get(key, []) if r.get(field) is not None]
        if not vals:
            return None
        return median(vals) if pick == "median" else max(vals)

    def idle(key: str, field: str) -> float | None:
        r = doc.get("idle", {}).get(key) or {}
        return None if "failure" in r else r.get(field)

    def mib(kib: float | None) -> float | None:
        return None if kib is None else kib / 1024

    out: dict[str, tuple[float | None, float | None, bool]] = {}
    for label, ours in (("gzip on", "logship --compress"), ("gzip off", "logship --no-compress")):
        gzip = label == "gzip on" and doc.get("catchup", {}).get("syslog-ng gzip")
        theirs = "syslog-ng gzip" if gzip else "syslog-ng"
        for figure, field, pick, higher in (
            ("lines/s", "lines_per_s", "median", True),
            ("CPU us/line", "cpu_us_per_line", "median", False),
            ("peak RSS MiB", "peak_rss_kib", "max", False),
        ):
            a, c = catchup(ours, field, pick), catchup(theirs, field, pick)
            if field == "peak_rss_kib":
                a, c = mib(a), mib(c)
            out[f"catch-up {figure}, {label}"] = (a, c, higher)
    out["idle RSS MiB"] = (mib(idle("logship --compress", "rss_kib")),
                           mib(idle("syslog-ng", "rss_kib")), False)  # fmt: skip
    out["idle CPU, % of one core"] = (idle("logship --compress", "cpu_core_pct"),
                                      idle("syslog-ng", "cpu_core_pct"), False)  # fmt: skip
    return out


def _way(moved: float | None, higher: bool) -> str:
    """'better', 'worse' or '' (within 5%) for a figure that moved by the factor `moved`."""
    if moved is None or abs(moved - 1) <= 0.05:
        return ""
    return "better" if (moved > 1) == higher else "worse"


def baseline_rows(before: dict, now: dict) -> list[dict]:
    """logship's headline figures in an earlier run's --json and in this run, side by side,
    each also as a ratio to syslog-ng in its own run. `better`/`worse`: a move of more than
    5% (single runs swing more than that). Memory and idle CPU are judged on the figure
    itself; the catch-up rate and CPU per line follow the machine's load, so they are
    judged better or worse only when the figure and its ratio to syslog-ng moved the same
    way, and `mixed` when they did not (the load changed between the runs, and it does
    not weigh on a one-thread syslog-ng as on a logship using both cores)."""
    old, new = headline(before), headline(now)
    rows = []
    for name, (a_new, c_new, higher) in new.items():
        a_old, c_old, _ = old.get(name, (None, None, higher))
        if a_new is None and c_new is None:
            continue  # not measured in this run
        spec = ",.0f" if "lines/s" in name else ".1f" if "MiB" in name else ".2f"
        r_old, r_new = ratio(a_old, c_old), ratio(a_new, c_new)
        word = _way(ratio(a_new, a_old), higher)
        if "lines/s" in name or "us/line" in name:
            normalised = _way(ratio(r_new, r_old), higher)
            word = word if word == normalised else "mixed" if word and normalised else ""
        rows.append({"figure": name, "before": fmt(a_old, spec), "now": fmt(a_new, spec),
                     "now/before": fmt_ratio(ratio(a_new, a_old)),
                     "before vs syslog-ng": fmt_ratio(r_old),
                     "now vs syslog-ng": fmt_ratio(r_new), "verdict": word})  # fmt: skip
    return rows


def catchup_rows(results: dict[str, list[dict]], sng: SyslogNg | None) -> list[dict]:
    def vals(key: str | None, field: str) -> list[float]:
        return [r[field] for r in results.get(key or "", []) if r.get(field) is not None]

    plain = "syslog-ng" if sng is not None else None
    gzip = "syslog-ng gzip" if sng is not None and sng.compression else plain
    star = "" if sng is None or sng.compression else " *"
    pairs = (("gzip on", "logship --compress", gzip, star),
             ("gzip off", "logship --no-compress", plain, ""))  # fmt: skip
    rows = []
    for label, ours, theirs, mark in pairs:
        a, c = median(vals(ours, "lines_per_s")), median(vals(theirs, "lines_per_s"))
        r = ratio(a, c)
        rows.append(_row(f"catch-up lines/s, {label} (median)", fmt(a, ",.0f"),
                         fmt(c, ",.0f") + (mark if c is not None else ""), r,
                         f">= {GOAL_RATE_RATIO}x syslog-ng",
                         None if r is None else r >= GOAL_RATE_RATIO))  # fmt: skip
    for label, ours, theirs, mark in pairs:
        a, c = median(vals(ours, "cpu_us_per_line")), median(vals(theirs, "cpu_us_per_line"))
        r = ratio(a, c)
        rows.append(_row(f"catch-up CPU us/line, {label} (median)", fmt(a, ".2f"),
                         fmt(c, ".2f") + (mark if c is not None else ""), r,
                         f"<= {GOAL_CPU_RATIO}x syslog-ng",
                         None if r is None else r <= GOAL_CPU_RATIO))  # fmt: skip
    for label, ours, theirs, mark in pairs:
        a_all, c_all = vals(ours, "peak_rss_kib"), vals(theirs, "peak_rss_kib")
        a = max(a_all) / 1024 if a_all else None
        c = max(c_all) / 1024 if c_all else None
        rows.append(_row(f"catch-up peak RSS MiB, {label} (max)", fmt(a, ".1f"),
                         fmt(c, ".1f") + (mark if c is not None else ""), ratio(a, c),
                         f"<= {GOAL_CATCHUP_RSS_MIB:.0f} MiB",
                         None if a is None else a <= GOAL_CATCHUP_RSS_MIB))  # fmt: skip
    return rows


def live_rows(live: dict[str, dict], rate: int) -> list[dict]:
    ours, theirs = live.get("logship --compress", {}), live.get("syslog-ng", {})
    rows = []
    for q, goal in (("p50", GOAL_P50_MS), ("p99", GOAL_P99_MS)):
        a = None if "failure" in ours else (ours.get("latency_ms") or {}).get(q)
        c = (theirs.get("latency_ms") or {}).get(q)
        rows.append(_row(f"live latency {q} ms, {rate:,}/s", fmt(a, ".1f"), fmt(c, ".1f"),
                         ratio(a, c), f"<= {goal:.0f} ms",
                         None if a is None else a <= goal))  # fmt: skip
    a_rss, c_rss = ours.get("peak_rss_kib"), theirs.get("peak_rss_kib")
    a_mib = a_rss / 1024 if a_rss else None
    rows.append(_row("live peak RSS MiB", fmt(a_mib, ".1f"),
                     fmt(c_rss / 1024 if c_rss else None, ".1f"), ratio(a_rss, c_rss),
                     f"<= {GOAL_RSS_MIB:.0f} MiB",
                     None if a_mib is None else a_mib <= GOAL_RSS_MIB))  # fmt: skip
    a_cpu, c_cpu = ours.get("cpu_core_pct"), theirs.get("cpu_core_pct")
    rows.append(_row("live CPU, % of one core", fmt(a_cpu, ".1f"), fmt(c_cpu, ".1f"),
                     ratio(a_cpu, c_cpu), "(no goal)", None, judged=False))  # fmt: skip
    return rows


def idle_rows(idle: dict[str, dict], files: int, seconds: float) -> list[dict]:
    ours, theirs = idle.get("logship --compress", {}), idle.get("syslog-ng", {})
    a = None if "failure" in ours else ours.get("cpu_core_pct")
    c = None if "failure" in theirs else theirs.get("cpu_core_pct")
    a_sw, c_sw = ours.get("switches_per_s"), theirs.get("switches_per_s")
    a_rss, c_rss = _idle_rss_mib(ours), _idle_rss_mib(theirs)
    return [
        _row(f"idle CPU, % of one core ({files} files, {seconds:.0f} s)", fmt(a, ".2f"),
             fmt(c, ".2f"), ratio(a, c), f"<= {GOAL_IDLE_CPU_PCT:g}%",
             None if a is None else a <= GOAL_IDLE_CPU_PCT),
        _row("idle context switches/s", fmt(a_sw, ".0f"), fmt(c_sw, ".0f"), ratio(a_sw, c_sw),
             "(no goal)", None, judged=False),
        _row(f"idle RSS MiB ({files} files shipped, end of idle)", fmt(a_rss, ".1f"),
             fmt(c_rss, ".1f"), ratio(a_rss, c_rss), f"<= {GOAL_IDLE_RSS_MIB:.0f} MiB",
             None if a_rss is None else a_rss <= GOAL_IDLE_RSS_MIB),
    ]  # fmt: skip


def _idle_rss_mib(r: dict) -> float | None:
    return None if "failure" in r or not r.get("rss_kib") else r["rss_kib"] / 1024


def _stored(runs: list[dict]) -> str:
    if not runs or any("stored" not in r for r in runs):
        return "n/a"
    stored, written = sum(r["stored"] for r in runs), sum(r["written"] for r in runs)
    twice = sum(r["twice"] for r in runs)
    return f"{stored:,}/{written:,}" + (f", {twice:,} twice" if twice else "")


def _once(runs: list[dict]) -> bool | None:
    if not runs or any("stored" not in r for r in runs):
        return None
    return all(r["missing"] == 0 and r["twice"] == 0 and r.get("unexpected", 0) == 0
               for r in runs)  # fmt: skip


def drain_rows(drain: dict[str, list[dict]], quiet: float, quiet_from: str) -> list[dict]:
    ours, theirs = drain.get("logship --compress", []), drain.get("syslog-ng", [])
    n = max(len(ours), 1)

    def exit_times(runs: list[dict]) -> tuple[float | None, float | None]:
        vals = [r["exit_s"] for r in runs if "exit_s" in r]
        return median(vals), (max(vals) if vals else None)

    def acks(runs: list[dict]) -> str:
        if not runs:
            return "n/a"
        vals = [r["last_ack_s"] for r in runs if r.get("last_ack_s") is not None]
        never = len(runs) - len(vals)
        text = fmt(median(vals), ".2f") if vals else ""
        return text + (f"{' + ' if text else ''}never x{never}" if never else "")

    a_med, a_max = exit_times(ours)
    c_med, c_max = exit_times(theirs)
    # A shipper that stops at the signal exits before the app: a negative time, no ratio.
    c_ratio = ratio(a_max, c_max) if c_max is not None and c_max > 0 else None
    goal = quiet + GOAL_DRAIN_SLACK_S
    a_ack = [r["last_ack_s"] for r in ours if r.get("last_ack_s") is not None]
    c_ack = [r["last_ack_s"] for r in theirs if r.get("last_ack_s") is not None]
    return [
        _row(f"drain: app exit -> shipper exit, s (median / max of {n})",
             f"{fmt(a_med, '.2f')} / {fmt(a_max, '.2f')}",
             f"{fmt(c_med, '.2f')} / {fmt(c_max, '.2f')}", c_ratio,
             f"<= {goal:g} s (--drain-quiet {quiet:g} s, {quiet_from}, + {GOAL_DRAIN_SLACK_S})",
             None if a_max is None else a_max <= goal),
        _row("drain: app exit -> last line stored, s (median)", acks(ours), acks(theirs),
             ratio(median(a_ack), median(c_ack)), "(no goal)", None, judged=False),
        _row("drain: lines stored / written (all runs)", _stored(ours), _stored(theirs), None,
             "every line, once", _once(ours)),
    ]  # fmt: skip


def outage_rows(outage: list[dict], seconds: float, budget: int, budget_from: str) -> list[dict]:
    by = {r["variant"]: r for r in outage}
    ours, theirs = by.get("logship --compress", {}), by.get("syslog-ng", {})
    limit_mib = budget / 2**20 + GOAL_OUTAGE_SLACK_MIB
    a, c = ours.get("peak_rss_kib"), theirs.get("peak_rss_kib")
    a_mib = a / 1024 if a else None

    def backlog(r: dict) -> str:
        if not r:
            return "n/a"
        return fmt(r.get("backlog_s"), ".1f") if r.get("backlog_s") is not None else "never"

    return [
        _row(f"outage {seconds:.0f} s: peak RSS MiB (VmHWM)", fmt(a_mib, ".1f"),
             fmt(c / 1024 if c else None, ".1f"), ratio(a, c),
             f"<= {limit_mib:g} MiB (--queue-bytes {budget / 2**20:g} MiB, {budget_from}, "
             f"+ {GOAL_OUTAGE_SLACK_MIB:g})", None if a_mib is None else a_mib <= limit_mib),
        _row("outage: lines stored / written", _stored([ours] if ours else []),
             _stored([theirs] if theirs else []), None, "every line, exactly once",
             _once([ours] if ours else [])),
        _row("outage: recovery -> backlog shipped, s", backlog(ours), backlog(theirs),
             ratio(ours.get("backlog_s"), theirs.get("backlog_s")), "(no goal)", None,
             judged=False),
    ]  # fmt: skip


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {','.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 1 catch-up run of 100,000 lines, live 10 s, idle 10 s, "
                        "1 drain run each, outage 30 s, waitfor_bench --quick")  # fmt: skip
    parser.add_argument("--runs", type=int, help="catch-up runs per variant (default 3)")
    parser.add_argument("--lines", type=int, help="catch-up file size (default 1,000,000)")
    parser.add_argument("--live-seconds", type=float, help="live duration (default 60)")
    parser.add_argument("--live-rate", type=int, default=10000, help="lines/s written live")
    parser.add_argument("--idle-seconds", type=float, help="idle measurement (default 60)")
    parser.add_argument("--idle-files", type=int, default=20, help="files while idle")
    parser.add_argument("--drain-runs", type=int, help="drain runs per shipper (default 3)")
    parser.add_argument(
        "--drain-rate",
        type=int,
        default=1000,
        help="lines/s the app writes before SIGTERM (default 1000)",
    )
    parser.add_argument(
        "--drain-seconds", type=float, help="how long the app writes before SIGTERM (default 5)"
    )
    parser.add_argument("--outage-seconds", type=float, help="sink down this long (default 600)")
    parser.add_argument(
        "--outage-rate",
        type=int,
        default=5000,
        help="lines/s written through the outage (default 5000)",
    )
    parser.add_argument(
        "--outage-mode",
        choices=("refuse", "503"),
        default="refuse",
        help="the sink refuses connections (default) or answers 503",
    )
    parser.add_argument(
        "--outage-stagger",
        type=float,
        help="logship's outage run starts this long after syslog-ng's (default 120; --quick 20)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--baseline", metavar="FILE",
                        help="the --json of an earlier run: its logship figures beside this "
                        "run's")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="seed for the log text")
    parser.add_argument(
        "--run-timeout", type=float, default=240.0, help="limit for one catch-up run (s)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=840.0,
        metavar="SECONDS",
        help="stop starting catch-up rounds once catch-up and live would pass this (default 840)",
    )
    parser.add_argument(
        "--logship-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra logship flag, repeatable (e.g. --logship-arg=--flush-interval=100ms)",
    )
    parser.add_argument("--no-syslog-ng", action="store_true", help="run logship alone")
    parser.add_argument(
        "--syslog-ng-cache", type=Path, default=CACHE_DIR, help=f"default {CACHE_DIR}"
    )
    parser.add_argument(
        "--no-syslog-ng-download", action="store_true", help="use the cache, never apt-get"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = parser.parse_args(argv)  # fmt: skip

    q = args.quick
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        parser.error(f"--scenarios: unknown {unknown}; choose from {','.join(SCENARIOS)}")
    plan = {
        "scenarios": [s for s in SCENARIOS if s in chosen],
        "runs": args.runs if args.runs is not None else (1 if q else 3),
        "lines": args.lines if args.lines is not None else (100_000 if q else 1_000_000),
        "live_seconds": args.live_seconds if args.live_seconds is not None else (10 if q else 60),
        "idle_seconds": args.idle_seconds if args.idle_seconds is not None else (10 if q else 60),
        "idle_settle": 2.0 if q else 5.0,
        "drain_runs": args.drain_runs if args.drain_runs is not None else (1 if q else 3),
        "drain_seconds": args.drain_seconds if args.drain_seconds is not None else (3 if q else 5),
        "outage": {
            "seconds": args.outage_seconds
            if args.outage_seconds is not None
            else (30.0 if q else 600.0),
            "rate": args.outage_rate,
            "mode": args.outage_mode,
            "stagger": args.outage_stagger
            if args.outage_stagger is not None
            else (20.0 if q else 120.0),
            "healthy": 5.0 if q else 10.0,
            "limit": 180.0 if q else 900.0,
            "stall": 60.0,
        },
    }  # fmt: skip
    out = plan["outage"]
    if (plan["runs"] < 1 or plan["lines"] < 1000 or plan["live_seconds"] <= 0
            or args.live_rate < 1 or plan["idle_seconds"] <= 0 or args.idle_files < 1
            or plan["drain_runs"] < 1 or args.drain_rate < 1 or plan["drain_seconds"] <= 0
            or out["seconds"] <= 0 or out["rate"] < 1 or out["stagger"] < 0):  # fmt: skip
        parser.error("counts, rates and durations must be positive (--lines >= 1000)")
    if args.baseline:
        try:
            with open(args.baseline) as fh:
                args.baseline_doc = json.load(fh)
        except (OSError, ValueError) as exc:
            parser.error(f"--baseline: cannot read {args.baseline}: {exc}")
    if not os.access(LOGSHIP, os.X_OK):
        print(f"not found or not executable: {LOGSHIP}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="logship-bench-")
    try:
        return bench(args, plan, tmp)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        kill_all_children()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, plan: dict, tmp: str) -> int:
    started = time.monotonic()
    info = machine()
    scenarios = plan["scenarios"]
    help_text = subprocess.run([LOGSHIP, "--help"], capture_output=True, text=True, timeout=60,
                               check=False).stdout  # fmt: skip
    queue_text, queue_from = logship_setting("--queue-bytes", args.logship_arg, help_text)
    quiet_text, quiet_from = logship_setting("--drain-quiet", args.logship_arg, help_text)
    queue_bytes, drain_quiet = _size(queue_text), _seconds(quiet_text)
    out = plan["outage"]
    print(f"logship_bench: {', '.join(scenarios)}; temp dir {tmp}", flush=True)
    res: dict = {"catchup": {}, "live": {}, "idle": {}, "drain": {}, "outage": [], "waitfor": {}}
    failures: list[str] = []
    budget_hit = False
    sng, sng_why, sng_steps = None, "no shipper scenario chosen", []
    b: Bench | None = None
    variants: list[Variant] = []
    mean_len = 0.0
    maker = LineMaker(args.seed)
    shippers = [s for s in scenarios if s in SHIPPER_SCENARIOS]
    try:
        if shippers:
            if args.no_syslog_ng:
                sng, sng_why = None, "--no-syslog-ng given"
            else:
                print(f"  syslog-ng: setting up (cache {args.syslog_ng_cache}) ...", flush=True)
                sng, sng_why, sng_steps = setup_syslog_ng(
                    args.syslog_ng_cache, download=not args.no_syslog_ng_download
                )
                print(f"  syslog-ng: {sng.version if sng else 'NOT AVAILABLE: ' + sng_why}",
                      flush=True)  # fmt: skip
            b = Bench(args, tmp, sng)
            variants = [Variant("logship --compress", "logship", True)]
            if "catchup" in scenarios:
                variants.append(Variant("logship --no-compress", "logship", False))
            if sng is not None:
                variants.append(Variant("syslog-ng", "syslog-ng", False))
                if sng.compression and "catchup" in scenarios:
                    variants.append(Variant("syslog-ng gzip", "syslog-ng", True))
            # Warm-up, not counted: .pyc files for logship, page cache, dynamic loader.
            warm_file = os.path.join(tmp, "warm.log")
            maker.catchup(warm_file, 5000)
            for v in variants[:1] + [v for v in variants if v.tool == "syslog-ng"][:1]:
                r = b.catchup(v, warm_file, 5000, 60.0)
                if "failure" in r:
                    print(f"warm-up of {v.key} failed: {r['failure']}\n{r.get('log_tail', '')}")
                    if v.tool == "logship":
                        return 1
                    sng_why = f"warm-up failed: {r['failure']}"
                    variants = [x for x in variants if x.tool != "syslog-ng"]
                    sng = b.sng = None
        ours = variants[:1]
        pair = ours + [v for v in variants if v.key == "syslog-ng"]
        if "catchup" in scenarios:
            assert b is not None
            mean_len, budget_hit = run_catchup(b, args, plan, variants, maker, res, failures,
                                               started)  # fmt: skip
        if "live" in scenarios:
            assert b is not None
            for v in pair:
                r = b.live(v, maker, args.live_rate, plan["live_seconds"])
                res["live"][v.key] = r
                lat = r.get("latency_ms") or {}
                if "failure" in r:
                    failures.append(f"live {v.key}: {r['failure']}")
                print(
                    f"  live {v.key:<22} p50 {fmt(lat.get('p50'), '.1f')} ms  "
                    f"p99 {fmt(lat.get('p99'), '.1f')} ms  max {fmt(lat.get('max'), '.1f')} ms  "
                    f"cpu {fmt(r.get('cpu_core_pct'), '.0f')}% of a core  "
                    f"received {r.get('received', 0):,}/{r.get('written', 0):,}"
                    + (f"  FAILED {r['failure']}" if "failure" in r else ""),
                    flush=True,
                )
        if "idle" in scenarios:
            assert b is not None
            for v in pair:
                r = b.idle(v, maker, args.idle_files, plan["idle_seconds"], plan["idle_settle"])
                res["idle"][v.key] = r
                if "failure" in r:
                    failures.append(f"idle {v.key}: {r['failure']}")
                print(f"  idle {v.key:<22} cpu {fmt(r.get('cpu_core_pct'), '.2f')}% of a core  "
                      f"{fmt(r.get('switches_per_s'), '.0f')} switches/s  "
                      f"RSS {fmt((r.get('rss_kib') or 0) / 1024, '.1f')} MiB"
                      + (f"  FAILED {r['failure']}" if "failure" in r else ""),
                      flush=True)  # fmt: skip
        if "drain" in scenarios:
            assert b is not None
            for i in range(plan["drain_runs"]):
                for v in pair[i % len(pair) :] + pair[: i % len(pair)]:
                    r = b.drain(v, maker, args.drain_rate, plan["drain_seconds"])
                    res["drain"].setdefault(v.key, []).append(r)
                    if "failure" in r:
                        failures.append(f"drain {v.key}: {r['failure']}")
                    print(f"  drain {v.key:<21} exit {fmt(r.get('exit_s'), '.2f')} s after the "
                          f"app's, last line stored {fmt(r.get('last_ack_s'), '.2f')} s, "
                          f"{r.get('stored', 0):,}/{r['written']:,} stored"
                          + (f"  FAILED {r['failure']}" if "failure" in r else ""),
                          flush=True)  # fmt: skip
        if "outage" in scenarios:
            assert b is not None
            print(f"  outage: {out['seconds']:.0f} s ({out['mode']}) at {out['rate']:,} lines/s"
                  + (f", logship's run {out['stagger']:.0f} s after syslog-ng's"
                     if len(pair) > 1 else ""), flush=True)  # fmt: skip
            res["outage"] = run_outage(b, pair, maker, out)
            failures += [f"outage {r['variant']}: {r['failure']}"
                         for r in res["outage"] if "failure" in r]  # fmt: skip
        if "waitfor" in scenarios:
            print(f"  waitfor: {WAITFOR_BENCH}{' --quick' if args.quick else ''} ...", flush=True)
            res["waitfor"] = run_waitfor(tmp, args.quick)
            if "failure" in res["waitfor"]:
                failures.append(f"waitfor_bench: {res['waitfor']['failure']}")
    finally:
        if b is not None:
            b.sink.stop()
        kill_all_children()

    # ---- report -------------------------------------------------------------------------
    rows: list[dict] = []
    if "catchup" in scenarios:
        rows += catchup_rows(res["catchup"], sng)
    if "live" in scenarios:
        rows += live_rows(res["live"], args.live_rate)
    if "idle" in scenarios:
        rows += idle_rows(res["idle"], args.idle_files, plan["idle_seconds"])
    if "drain" in scenarios:
        rows += drain_rows(res["drain"], drain_quiet, quiet_from)
    if "outage" in scenarios:
        rows += outage_rows(res["outage"], out["seconds"], queue_bytes, queue_from)

    print()
    print(
        f"machine: nproc {info['nproc']} (usable {info['usable_cpus']}), CPU {info['cpu_model']}, "
        f"{info['kernel']}, Python {info['python']} ({info['python_executable']}), loadavg "
        f"{' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"  # type: ignore[union-attr]
    )
    print(f"logship: {LOGSHIP} from {source_state()}; --queue-bytes {queue_text} ({queue_from}), "
          f"--drain-quiet {quiet_text} ({quiet_from})")  # fmt: skip
    if shippers:
        print_setup(b, sng, sng_why, sng_steps)
    if "catchup" in scenarios:
        print(f"catch-up: {plan['lines']:,} lines, mean {mean_len:.1f} bytes; runs counted: "
              + ", ".join(f"{k} {len(v)}" for k, v in res["catchup"].items())
              + "; wall = spawn -> sink has every line (start-up included); CPU = wait4 "
              "user+sys of the shipper's pid over its whole life / lines; peak RSS = its "
              "VmHWM")  # fmt: skip
        if sng is not None and not sng.compression:
            print(f" * {sng.compression_note}: both gzip rows compare with syslog-ng sending "
                  "uncompressed")  # fmt: skip
    if "live" in scenarios:
        print(f"live: {args.live_rate:,} lines/s for {plan['live_seconds']:.0f} s, then "
              f"{LIVE_TAIL_S:.0f} s unmeasured")  # fmt: skip
    if "idle" in scenarios:
        print(f"idle: {args.idle_files} files x {IDLE_LINES_PER_FILE:,} lines shipped, "
              f"{plan['idle_settle']:.0f} s settle, then {plan['idle_seconds']:.0f} s with "
              "nothing written; CPU from /proc/PID/stat (10 ms ticks)")  # fmt: skip
    if "drain" in scenarios:
        print(f"drain: an app writes {args.drain_rate:,} lines/s for {plan['drain_seconds']:g} s; "
              f"SIGTERM to it and the shipper at once; it logs {DRAIN_LATE_LINES} lines over "
              f"{DRAIN_LATE_S:g} s and exits; exits seen on pidfds")  # fmt: skip
    if "outage" in scenarios:
        print(f"outage: {out['rate']:,} lines/s; {out['healthy']:.0f} s healthy, sink "
              f"{'refusing connections' if out['mode'] == 'refuse' else 'answering 503'} "
              f"for {out['seconds']:.0f} s, app writes on until {OUTAGE_TAIL_S:.0f} s after "
              "the backlog is shipped; syslog-ng time-reopen("
              f"{TIME_REOPEN_S}); logship retries with full-jitter backoff, and runs with "
              "--http-host 127.0.0.1 --http-port PORT for its /metrics")  # fmt: skip
    print()
    if rows:
        print_table(rows, TABLE)
    if args.baseline:
        where = args.baseline_doc.get("logship_source", "?")
        print(f"\nlogship before ({args.baseline}, {where}) and now ({source_state()}):")
        print_table(baseline_rows(args.baseline_doc, res), BASELINE_TABLE)
    print_details(res, scenarios)
    if "waitfor" in scenarios:
        print_waitfor(res["waitfor"])
    if failures:
        print("\nfailed runs (not counted):")
        for f in failures:
            print(f"  {f}")
    if budget_hit:
        print(f"\nbudget of {args.budget:.0f} s reached: fewer catch-up rounds than asked")
    if "catchup" in scenarios and plan["runs"] < 3:
        print("\nnote: fewer than 3 catch-up runs: single runs swing; read the medians of a "
              "default run")  # fmt: skip
    print(f"\ntotal {time.monotonic() - started:.0f} s")

    if args.json:
        doc = {
            "machine": info,
            "plan": plan,
            "settings": {
                "mean_line_bytes": mean_len,
                "live_rate": args.live_rate,
                "idle_files": args.idle_files,
                "drain_rate": args.drain_rate,
                "logship_extra_args": args.logship_arg,
                "queue_bytes": queue_bytes,
                "drain_quiet_s": drain_quiet,
                "seed": args.seed,
            },
            "syslog_ng": {
                "available": sng is not None,
                "why_not": sng_why,
                "version": sng.version if sng else None,
                "compression": sng.compression if sng else None,
                "compression_note": sng.compression_note if sng else None,
                "time_reopen_s": TIME_REOPEN_S,
                "setup_steps": sng_steps,
            },
            "logship_source": source_state(),
            "commands": b.commands if b else {},
            **res,
            "failures": failures,
            "budget_hit": budget_hit,
            "table": rows,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")
    return 0


def run_catchup(b: Bench, args: argparse.Namespace, plan: dict, variants: list[Variant],
                maker: LineMaker, res: dict, failures: list[str],
                started: float) -> tuple[float, bool]:  # fmt: skip
    """The catch-up rounds, interleaved; → (mean line length, whether the budget cut them)."""
    lines = plan["lines"]
    data = os.path.join(b.tmp, "app.log")
    t = time.monotonic()
    mean_len = maker.catchup(data, lines)
    print(f"  generated {lines:,} lines, mean {mean_len:.1f} bytes, "
          f"{os.path.getsize(data) / 2**20:.1f} MiB in {time.monotonic() - t:.1f} s",
          flush=True)  # fmt: skip
    results: dict[str, list[dict]] = res["catchup"]
    for v in variants:
        results[v.key] = []
    reserve = len({v.tool for v in variants}) * (plan["live_seconds"] + 15)
    live_reserve = reserve if "live" in plan["scenarios"] else 0.0
    last_round = 0.0
    for i in range(plan["runs"]):
        if i and time.monotonic() - started + last_round + live_reserve > args.budget:
            return mean_len, True
        round_start = time.monotonic()
        for v in variants[i % len(variants) :] + variants[: i % len(variants)]:
            r = b.catchup(v, data, lines, args.run_timeout)
            if "failure" in r:
                failures.append(f"catch-up {v.key}: {r['failure']}")
                print(f"  {v.key}: FAILED {r['failure']}\n{r.get('log_tail', '')}")
                continue
            results[v.key].append(r)
            print(f"  round {i + 1} {v.key:<22} {r['lines_per_s']:>9,.0f} lines/s  "
                  f"{r['cpu_us_per_line']:6.1f} us/line  "
                  f"peak {r['peak_rss_kib'] / 1024:6.1f} MiB  "
                  f"sink cpu {100 * r['sink_cpu_s'] / r['wall_s']:3.0f}%  ({r['ended']})",
                  flush=True)  # fmt: skip
        last_round = time.monotonic() - round_start
    os.remove(data)
    print(f"  catch-up done at {time.monotonic() - started:.0f} s", flush=True)
    return mean_len, False


def print_setup(b: Bench | None, sng: SyslogNg | None, why: str, steps: list[str]) -> None:
    if sng is not None:
        where = "the system's" if sng.system else f"Debian's packages unpacked in {sng.root}"
        print(f"syslog-ng {sng.version}: {where}"
              + (f", LD_LIBRARY_PATH={sng.lib_path}" if sng.lib_path else ""))  # fmt: skip
    else:
        print(f"syslog-ng: NOT RUN: {why}")
    for step in steps:
        print(f"  setup: {step}")
    if b is None:
        return
    print("commands (FILE = the shipped file or glob, RUN = that run's state dir, PORT = the "
          "sink's):")  # fmt: skip
    for key, cmd in b.commands.items():
        print(f"  {key}: {' '.join(cmd)}")
    if sng is not None:
        print("  syslog-ng.conf (as run; idle has one file() line per file):")
        shown = sng.config(paths=["FILE"], port=0, compress=False, index=INDEX)
        for line in shown.replace(":0/_bulk", ":PORT/_bulk").splitlines():
            print(f"    {line}")


def print_details(res: dict, scenarios: list[str]) -> None:
    if any(res[s] for s in scenarios if s != "waitfor"):
        print("\ndetails:")
    catchup = res["catchup"]
    shares = [100 * r["sink_cpu_s"] / r["wall_s"]
              for rs in catchup.values() for r in rs if r["wall_s"]]  # fmt: skip
    if shares:
        low, high = f"{min(shares):.0f}", f"{max(shares):.0f}"
        print(f"  sink CPU while catching up: {low if low == high else low + '-' + high}% "
              "of one core (it is not the bottleneck while well below 100%)")  # fmt: skip
    for key, rs in catchup.items():
        if rs:
            walls = [r["wall_s"] for r in rs]
            first = [r["first_request_s"] for r in rs]
            print(f"  {key}: wall {', '.join(f'{w:.2f}' for w in walls)} s; first bulk request "
                  f"{median(first):.2f} s after spawn; {rs[0]['sink_requests']} requests, "
                  f"{rs[0]['sink_bytes_in'] / 2**20:.1f} MiB on the wire "
                  f"({rs[0]['sink_bytes_plain'] / 2**20:.1f} MiB NDJSON)")  # fmt: skip
    for key, r in res["live"].items():
        lat, seq = r.get("latency_ms") or {}, r.get("seq") or {}
        print(f"  live {key}: n {lat.get('n', 0):,}, p90 {fmt(lat.get('p90'), '.1f')} ms, "
              f"p99.9 {fmt(lat.get('p999'), '.1f')} ms, max {fmt(lat.get('max'), '.1f')} ms, "
              f"duplicates {seq.get('duplicates', 'n/a')}, writer's largest write "
              f"{r.get('largest_write_lines', 'n/a')} lines")  # fmt: skip
    for key, r in res["idle"].items():
        print(f"  idle {key}: {r['lines']:,} lines shipped {fmt(r.get('shipped_s'), '.1f')} s "
              f"after spawn; {fmt(r.get('cpu_s'), '.2f')} s CPU in "
              f"{fmt(r.get('measured_s'), '.1f')} s; {r.get('requests_while_idle', 'n/a')} "
              f"bulk requests meanwhile; RSS {(r.get('rss_kib') or 0) / 1024:.1f} MiB "
              f"(peak {(r.get('peak_rss_kib') or 0) / 1024:.1f}); {r.get('ended')}")  # fmt: skip
    for key, runs in res["drain"].items():
        each = "; ".join(
            f"exit {fmt(r.get('exit_s'), '.2f')} s ({r.get('ended')}), last line "
            + (f"stored {r['last_ack_s']:.2f} s" if r.get("last_ack_s") is not None
               else "never stored")
            + f", {r.get('stored', 0):,}/{r['written']:,}"
            + (f", {r['twice']} twice" if r.get("twice") else "")
            + (f", {r['conflicts_409']} 409s" if r.get("conflicts_409") else "")
            for r in runs
        )  # fmt: skip
        print(f"  drain {key}: {each}")
    for r in res["outage"]:
        rss = r.get("rss_max_kib") or {}
        phases = ", ".join(f"{k} {v / 1024:.1f}" for k, v in rss.items() if k != "pending")
        print(f"  outage {r['variant']}: written {r.get('written_at_down', 0):,} before the "
              f"outage, {r.get('written_at_up', 0):,} by recovery, {r.get('written', 0):,} in "
              f"all; VmRSS max by phase (MiB): {phases or 'n/a'}; first request "
              f"{fmt(r.get('first_request_after_up_s'), '.1f')} s after recovery, backlog "
              f"shipped {fmt(r.get('backlog_s'), '.1f')} s after; missing "
              f"{r.get('missing', 'n/a')}, stored twice {r.get('twice', 'n/a')}, 409s "
              f"{r.get('conflicts_409', 'n/a')}; sink CPU while recovering "
              f"{fmt(r.get('sink_cpu_pct_recovering'), '.0f')}% of a core"
              + (f", 503s {r['refused_503']}" if r.get("refused_503") else "")
              + f"; other run busy during its recovery {r.get('recovery_overlap_s', 0):.0f} s; "
              f"{r.get('ended', '')}")  # fmt: skip
        m = r.get("metrics_before_up")
        if m:
            held = m.get("logship_lines_read_total", 0) - m.get("logship_events_acked_total", 0)
            print(f"    its /metrics {METRICS_BEFORE_UP_S:.0f} s before the recovery: "
                  f"logship_queue_bytes {m.get('logship_queue_bytes', 0) / 2**20:.1f} MiB, "
                  f"read - acked {held:,.0f} events, "
                  f"logship_retries_total {m.get('logship_retries_total', 0):,.0f}")  # fmt: skip


def print_waitfor(w: dict) -> None:
    print(f"\nwaitfor vs wait-for-it ({w.get('command')}"
          + (f", {w['wall_s']:.0f} s" if w.get("wall_s") else "") + "):")  # fmt: skip
    if "table" not in w:
        print(f"  not measured: {w.get('failure')}")
        return
    rows = [dict(r, ratio=fmt_ratio(r.get("ratio"))) for r in w["table"]]
    print_table(rows, ["scenario", "flags", "waitfor", "wait-for-it", "ratio", "goal", "result"])


if __name__ == "__main__":
    sys.exit(main())
