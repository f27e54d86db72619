#!/usr/bin/env python3
"""Where logship's idle memory goes: its imports, one by one, then the running process.

Three parts, each in fresh child processes (so nothing here is counted), about a minute:

1. Import ladder: one child imports what logship imports, in logship's order (with
   glibc's malloc tuned as `logship` tunes it, through the MALLOC_* variables that
   `agents.logship.memory.MALLOC_SETTINGS` names), and reads VmRSS, RssAnon and RssFile from
   /proc/self/status after each step: the interpreter alone; ssl (asyncio imports it,
   and with it OpenSSL); asyncio; logship's start-up (cli, config); the rest of its core
   (agents.logship.app); a running event loop; the sender made and one request asked
   of it (its own HTTP client, on asyncio streams); isal (gzip,
   --compress); the executor's threads after doing logship's kind of work (120 KiB
   preads and a gzip of a 1 MiB bulk body each). Then, beyond the idle default, one row
   each: an https:// node (a TLS context with the system's CA store), the status server
   listening (--http-port), yaml (--config), watchdog (--watch watchdog, or no inotify).
2. By package: a second child imports the same with an import hook that charges each
   module the RSS growth while its body ran, less its own nested imports; summed by
   top-level package. Page-granular and approximate (a module that happens to fault in a
   new malloc or pymalloc arena pays for it), but it says which packages weigh.
3. The running shipper: `logship` (this venv's) with its defaults ships --files (20)
   files of 1,000 lines (benchmarks/logship_bench.py's lines and idle scenario) to the
   benchmark's sink; 15 s after the sink has them all (logship hands its freed heap
   back once quiet for 5 s: agents/logship/memory.py), VmRSS / VmHWM / threads and
   /proc/PID/smaps summed by mapping ([heap] = glibc's main arena, [anon] = pymalloc's
   arenas, thread stacks and the other malloc arenas, then each shared object). Run
   again with the same lines in one file: the difference is the per-file state. What the
   running shipper holds beyond the ladder's total is its run-time state: heap holes left
   by shipping, buffers, harvesters, the transport's connections.

RSS figures repeat to ~0.2 MiB between runs; the import times are wall clock and move
with the machine's load. Linux only. Nothing is written to the source tree.

Usage: .venv/bin/python benchmarks/memory_breakdown.py [--files 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # the imports below: no __pycache__ in the source tree

from _common import HERE, Child, Sink, kill_all_children, machine, source_state  # noqa: E402
from logship_bench import IDLE_LINES_PER_FILE, LOGSHIP, LineMaker  # noqa: E402

REPO = os.path.dirname(HERE)
SETTLE_S = 15.0  # after the sink has every line: idle, as at the end of logship_bench's

# --- part 1: the ladder (runs in a child; prints one JSON line per step) ------------------

LADDER = r"""
import json, os, sys, time
_fd = os.open("/proc/self/status", os.O_RDONLY)
def status():
    out = {}
    for line in os.pread(_fd, 4096, 0).decode().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return out
def say(step, note, t0):
    print(json.dumps({"step": step, "note": note, "ms": (time.perf_counter() - t0) * 1000,
                      "modules": len(sys.modules), **status()}), flush=True)
say("interpreter", "python with site, nothing imported", time.perf_counter())
t = time.perf_counter()
import ssl
say("ssl", "OpenSSL's libssl/libcrypto; asyncio imports it", t)
t = time.perf_counter()
import asyncio
say("asyncio", "with concurrent.futures, subprocess, selectors", t)
t = time.perf_counter()
import agents.logship.cli, agents.logship.config
say("logship start-up", "agents.logship.cli + config (argparse, re)", t)
t = time.perf_counter()
import agents.logship.app
say("logship core", "agents.logship.app: pipeline, harvester, registry, inotify ...", t)
t = time.perf_counter()
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop.run_until_complete(asyncio.sleep(0))
say("event loop", "a running asyncio loop", t)
from agents.logship.output import elasticsearch as es
t = time.perf_counter()
sender = es.ElasticsearchSender({"hosts": ["http://127.0.0.1:9"], "http_compress": True})
loop.run_until_complete(sender.ping())  # refused: the client's code has run
say("sender", "ElasticsearchSender made, one request asked (refused)", t)
t = time.perf_counter()
from agents.logship.output.elasticsearch import deflater, gzip_body
deflater()
say("isal", "ISA-L gzip (--compress, the default)", t)
t = time.perf_counter()
import concurrent.futures
body = os.urandom(1 << 16).hex().encode() * 8  # 1 MiB, compressible like NDJSON
fd = os.open(sys.executable, os.O_RDONLY)
def work(_):
    for i in range(4):
        os.pread(fd, 120 * 1024, i * 120 * 1024)
    return len(gzip_body(body))
workers = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
pool = concurrent.futures.ThreadPoolExecutor(workers)
async def busy():
    await asyncio.gather(*(loop.run_in_executor(pool, work, i) for i in range(workers * 3)))
loop.run_until_complete(busy())
say("executor threads", f"asyncio's default: min(32, cpus + 4) = {workers} threads, after work", t)
t = time.perf_counter()
tls_sender = es.ElasticsearchSender({"hosts": ["https://127.0.0.1:9"]})
loop.run_until_complete(tls_sender.ping())
say("https node", "only with https:// URLs: a TLS context with the system's CA store", t)
t = time.perf_counter()
from agents.logship.server import StatusServer
server = StatusServer("127.0.0.1", 0, ready=lambda: True, metrics=lambda: "")
loop.run_until_complete(server.setup())
say("status server", "only with --http-port: StatusServer listening", t)
for name, note in (("yaml", "only with --config"),
                   ("watchdog.observers", "only with --watch watchdog, or without inotify")):
    t = time.perf_counter()
    __import__(name)
    say(name, note, t)
"""

# --- part 2: RSS by package (an import hook in a child) ---------------------------------

BY_PACKAGE = r"""
import importlib.abc, json, os, sys
_fd = os.open("/proc/self/statm", os.O_RDONLY)
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(os.pread(_fd, 100, 0).split()[1]) * PAGE
own, stack = {}, []
class Loader:
    def __init__(self, loader, name):
        self.loader, self.name = loader, name
    def create_module(self, spec):
        return self.loader.create_module(spec)
    def exec_module(self, module):
        start = rss()
        stack.append(0)
        try:
            self.loader.exec_module(module)
        finally:
            grown = rss() - start
            nested = stack.pop()
            own[self.name] = own.get(self.name, 0) + grown - nested
            if stack:
                stack[-1] += grown
    def __getattr__(self, name):
        return getattr(self.loader, name)
class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = Loader(spec.loader, name)
                return spec
        return None
sys.meta_path.insert(0, Finder())
import agents.logship.config, agents.logship.app
from agents.logship.output import elasticsearch as es
es.deflater()
print(json.dumps(own))
"""


def run_child(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


# --- part 3: the running shipper ------------------------------------------------------------


def smaps(pid: int) -> dict[str, int]:
    """KiB of RSS by mapping: [heap], [anon], [stack], each file's base name."""
    out: dict[str, int] = {}
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split(None, 5)
            if "-" in head[0] and not head[0].endswith(":"):
                path = head[5].strip() if len(head) > 5 else ""
                name = os.path.basename(path) if path.startswith("/") else (path or "[anon]")
            elif head[0] == "Rss:":
                out[name] = out.get(name, 0) + int(head[1])
    return out


def status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])
    return out


def idle_run(tmp: str, env: dict[str, str], sink: Sink, files: int, lines: int, tag: str) -> dict:
    """`files` files of `lines` lines each, shipped; the shipper's memory SETTLE_S later."""
    folder = os.path.join(tmp, f"idle-{tag}")
    os.makedirs(folder)
    maker = LineMaker(1)
    for i in range(files):
        maker.catchup(os.path.join(folder, f"app-{i:02d}.log"), lines,
                      start=1795000000.0 + i)  # fmt: skip
    sink.reset(files * lines)
    argv = [LOGSHIP, "--path", os.path.join(folder, "*.log"), "--es", sink.url,
            "--data-dir", os.path.join(tmp, f"data-{tag}"), "--index", "bench",
            "--log-level", "warning"]  # fmt: skip
    child = Child(argv, log_path=os.path.join(tmp, f"logship-{tag}.log"), env=env)
    try:
        deadline = time.monotonic() + 60
        while sink.stats()["t_done"] is None:
            if time.monotonic() > deadline or not child.alive():
                raise RuntimeError(f"logship did not ship {files} files:\n{child.log_tail()}")
            time.sleep(0.05)
        shipped = time.monotonic() - child.t_start
        time.sleep(SETTLE_S)
        result = {"files": files, "lines": files * lines, "shipped_s": shipped, **status(child.pid),
                  "smaps": smaps(child.pid)}  # fmt: skip
    finally:
        child.stop(30.0)
    return result


# --- the report -------------------------------------------------------------------------------


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="files shipped (default 20)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not os.access(LOGSHIP, os.X_OK):
        print(f"not found or not executable: {LOGSHIP}", file=sys.stderr)
        return 2
    started = time.monotonic()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    sys.path.insert(0, REPO)
    from agents.logship.memory import MALLOC_SETTINGS  # the child's malloc, tuned as logship's

    tuned = {variable: str(value) for variable, value in MALLOC_SETTINGS.values()}
    tmp = tempfile.mkdtemp(prefix="logship-mem-")
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    doc: dict = {"machine": machine(), "logship_source": source_state()}
    try:
        # Warm the bytecode cache first: compiling would count in the first child only.
        run_child("import agents.logship.app, yaml, watchdog.observers, isal", env)
        steps = [json.loads(line) for line in run_child(LADDER, env | tuned).splitlines()]
        own = json.loads(run_child(BY_PACKAGE, env | tuned))
        sink = Sink(os.path.join(tmp, "sink.log"), env)
        try:
            idle_run(tmp, env, sink, 1, 1000, "warm")  # page cache, .pyc: not counted
            one = idle_run(tmp, env, sink, 1, args.files * IDLE_LINES_PER_FILE, "one")
            many = idle_run(tmp, env, sink, args.files, IDLE_LINES_PER_FILE, "many")
        finally:
            sink.stop()
    finally:
        kill_all_children()
        shutil.rmtree(tmp, ignore_errors=True)

    info = doc["machine"]
    print(f"machine: {info['nproc']} CPUs, {info['kernel']}, Python {info['python']}; "
          f"logship from {doc['logship_source']}")  # fmt: skip
    print("\n1. import ladder (cumulative, one process, logship's order; MiB)\n")
    print(f"{'step':<20} {'RSS':>6} {'+RSS':>6} {'+anon':>6} {'+file':>6} {'ms':>6} "
          f"{'mods':>5} {'thr':>3}  what")  # fmt: skip
    prev = None
    idle_rss = 0
    for s in steps:
        d = {k: s[k] - (prev[k] if prev else 0) for k in ("VmRSS", "RssAnon", "RssFile")}
        print(f"{s['step']:<20} {mib(s['VmRSS']):>6} {mib(d['VmRSS']):>6} "
              f"{mib(d['RssAnon']):>6} {mib(d['RssFile']):>6} {s['ms']:6.0f} "
              f"{s['modules']:5d} {s['Threads']:3d}  {s['note']}")  # fmt: skip
        if s["step"] == "executor threads":
            idle_rss = s["VmRSS"]
            print(f"{'= idle imports':<20} {mib(idle_rss):>6}   (everything an idle logship "
                  "with its defaults has loaded)")  # fmt: skip
            print("beyond the defaults:")
        prev = s
    print("\n2. RSS charged to each top-level package while its modules ran (MiB)\n")
    packages: dict[str, int] = {}
    for name, grown in own.items():
        top = name.split(".")[0]
        packages[top] = packages.get(top, 0) + grown
    ranked = sorted(packages.items(), key=lambda kv: -kv[1])
    total = sum(packages.values())
    for name, grown in ranked[:18]:
        print(f"  {grown / 2**20:6.2f}  {name}")
    rest = sum(g for _, g in ranked[18:])
    print(f"  {rest / 2**20:6.2f}  {len(ranked) - 18} others\n  {total / 2**20:6.2f}  "
          f"in all ({len(own)} modules)")  # fmt: skip

    print(f"\n3. the running shipper, {SETTLE_S:.0f} s after its files were shipped (MiB)\n")
    print(f"{'files':>5} {'lines':>7} {'VmRSS':>6} {'VmHWM':>6} {'anon':>6} {'file':>6} "
          f"{'thr':>3}")  # fmt: skip
    for r in (one, many):
        print(f"{r['files']:5d} {r['lines']:7,d} {mib(r['VmRSS']):>6} {mib(r['VmHWM']):>6} "
              f"{mib(r['RssAnon']):>6} {mib(r['RssFile']):>6} {r['Threads']:3d}")  # fmt: skip
    per_file = (many["VmRSS"] - one["VmRSS"]) / max(1, args.files - 1)
    print(f"per file (same lines, {args.files} files vs 1): {per_file:+.0f} KiB; run-time "
          f"state with {args.files} files = VmRSS - the ladder's idle imports = "
          f"{mib(many['VmRSS'] - idle_rss)} MiB")  # fmt: skip
    print(f"\nby mapping, {args.files} files (smaps Rss):")
    maps = sorted(many["smaps"].items(), key=lambda kv: -kv[1])
    for name, kib in maps[:10]:
        print(f"  {mib(kib):>6}  {name}")
    print(f"  {mib(sum(k for _, k in maps[10:])):>6}  {len(maps) - 10} other mappings")
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        doc.update(ladder=steps, by_module_bytes=own,
                   idle={"one": one, "many": many})  # fmt: skip
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
