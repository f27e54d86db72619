#!/usr/bin/env python3
"""logship vs syslog-ng shipping the same file to the same fast bulk sink: catch-up and live.

Both shippers read one file and send it to one sink (benchmarks/_sink.py: aiohttp on
loopback, in its own process, answering `_bulk` like Elasticsearch and doing nothing else),
in the same run, interleaved (order rotated every round) so machine noise lands on both.

1. Catch-up: a file of N existing lines (default 1,000,000 of ~140 bytes of Java-style
   application log text, generated once per run into a temp dir) is shipped from its
   start by a freshly started shipper with empty state. Wall time = from just before the
   spawn to the moment the sink has counted N bulk actions (recorded inside the sink on
   CLOCK_MONOTONIC, which is system-wide on Linux), so it includes the shipper's start-up;
   lines/s = N / wall. Then the shipper gets SIGTERM. CPU = user+sys from os.wait4() on the
   shipper's own pid (all its threads, start-up and shutdown included) / N. Peak RSS =
   VmHWM from /proc/PID/status, read every 20-50 ms until the process is gone (the last
   reading is the peak; wait4's ru_maxrss is in the JSON too, but on Linux it can't read
   below this benchmark's own RSS at spawn time, VmHWM can). logship runs with --compress
   and --no-compress; syslog-ng with and without compression() if its http() destination
   has it (3.38, Debian 12's, does not: the benchmark says so and compares against plain).
2. Live: a writer (this process) appends R lines/s (default 10,000, in about 2,000
   write()s a second) for D s (default 60; --quick 10) to a file the shipper already
   follows, each line ending in `seq=N ts=<CLOCK_MONOTONIC ns at write()>`, then 2 s more
   of unstamped lines so that the last measured lines travel in a stream that goes on, as
   in a live pod (without them they would wait for a batch timeout that steady traffic
   never hits). The sink takes latency = (its clock when about to acknowledge the request)
   - ts for every stamped line; p50/p99 over all of them, one run per shipper (logship
   with its default --compress).

Settings: logship with its defaults (--batch-docs 2000, --batch-bytes 5MiB,
--flush-interval 1s, --max-in-flight 4, --queue-bytes 64MiB) plus any --logship-arg.
syslog-ng's elasticsearch-http() with the same batch limits and concurrency: workers(4),
batch-lines(2000), batch-bytes(5MiB); batch-timeout left at its default (-1: send when the
queue runs empty, never wait for a fuller batch; 1000 ms, logship's flush interval, halves
its catch-up rate and gives it a 450 ms live p50, so that would flatter logship). A file()
source with follow-freq(0.1) flags(no-parse) and flow-control (without it syslog-ng drops
what does not fit its queue), log-iw-size(20000) and log-fetch-limit(1000) (with the
defaults of 100, flow control keeps 100 lines in flight: ~8-line requests, 4x slower),
and a template making an ECS-like document like logship's (no log.offset).

syslog-ng is not installed system-wide: Debian's packages (syslog-ng-core,
syslog-ng-mod-http, syslog-ng-scl and any library they need that this machine lacks) are
fetched with `apt-get download` and unpacked with `dpkg -x` into a cache directory
(default ~/.cache/pod-agents-bench/syslog-ng), then run from there with LD_LIBRARY_PATH and
--module-path. If that fails, logship runs alone and the reason is printed.

Goals (from the performance issue; printed as PASS/MISS, not asserted): catch-up lines/s
>= 1.5x syslog-ng's; CPU per line <= 0.5x syslog-ng's; peak RSS <= 64 MiB; live
p50 <= 100 ms and p99 <= 300 ms.

Every child has a timeout, dies with this process (PR_SET_PDEATHSIG) and is killed at the
end. Nothing is written to the source tree. Linux only.

Usage: .venv/bin/python benchmarks/logship_bench.py [--quick] [--runs N] [--json FILE]
       (default about 5 min on 2 cores, 15 at most with --budget; --quick about 40 s)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN_DIR = os.path.dirname(sys.executable)  # not resolved: .venv/bin/python is a symlink
LOGSHIP = os.path.join(BIN_DIR, "logship")
HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "_sink.py")
HOST = "127.0.0.1"
INDEX = "bench"
CACHE_DIR = Path.home() / ".cache" / "pod-agents-bench" / "syslog-ng"
SNG_PACKAGES = ("syslog-ng-core", "syslog-ng-mod-http", "syslog-ng-scl")
SNG_MODULES = ("affile", "http", "json-plugin")  # what the config loads
DOWNWARD_ENV = ("POD_NAME", "POD_NAMESPACE", "POD_UID", "POD_IP", "NODE_NAME", "CONTAINER_NAME")

GOAL_RATE_RATIO = 1.5
GOAL_CPU_RATIO = 0.5
GOAL_RSS_MIB = 64.0
GOAL_P50_MS = 100.0
GOAL_P99_MS = 300.0

LIVE_TAIL_S = 2.0  # unstamped lines written after the measured ones: the stream goes on
STOP_TIMEOUT_S = 40.0  # after SIGTERM (logship drains for up to --drain-timeout 25s)
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- children -------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
CHILDREN: list[Child] = []


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Child:
    """One process we started: polled, never left behind, reaped with wait4."""

    def __init__(
        self,
        argv: list[str],
        *,
        log_path: str,
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in _reap)
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=self._log if stdout is None else stdout,
            stderr=self._log,
            env=env,
            preexec_fn=_die_with_parent,  # this process runs no threads
            start_new_session=True,  # Ctrl-C reaches us only; we stop them ourselves
        )
        self.pid = self.proc.pid
        CHILDREN.append(self)
        self.exit_code: int | None = None
        self.rusage_cpu_s: float | None = None
        self.rusage_maxrss_kib: int | None = None
        self.hwm_kib = 0
        self.t_exit: float | None = None

    def alive(self) -> bool:
        if self.exit_code is not None:
            return False
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._reap(status, usage)
        return False

    def _reap(self, status: int, usage: object) -> None:
        self.t_exit = time.monotonic()
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code  # reaped here: Popen must not wait again
        self.rusage_cpu_s = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
        self.rusage_maxrss_kib = usage.ru_maxrss  # type: ignore[attr-defined]
        self._log.close()
        with contextlib.suppress(ValueError):
            CHILDREN.remove(self)

    def sample(self) -> None:
        """Read VmHWM (the process's own peak RSS since exec) while it lives."""
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                    break

    def cpu_now(self) -> float | None:
        """utime+stime so far, from /proc (clock ticks)."""
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def wait(self, timeout: float, every: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            self.sample()
            time.sleep(every)
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> str:
        """SIGTERM, wait, SIGKILL if needed; returns how it ended."""
        if not self.alive():
            return f"exited {self.exit_code} by itself"
        self.sample()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self.wait(timeout):
            return f"exit {self.exit_code} after SIGTERM"
        self.kill()
        return f"killed: no exit {timeout:.0f} s after SIGTERM"

    def kill(self) -> None:
        if self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _, status, usage = os.wait4(self.pid, 0)
            self._reap(status, usage)

    def log_tail(self, lines: int = 8) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                text = fh.read()[-8192:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def kill_all_children() -> None:
    for child in list(CHILDREN):
        with contextlib.suppress(Exception):
            if child.alive():
                os.kill(child.pid, signal.SIGTERM)
                if not child.wait(3.0):
                    child.kill()


# --- the sink ---------------------------------------------------------------------------


class Sink:
    def __init__(self, run_dir: str, env: dict[str, str]) -> None:
        self.child = Child(
            [sys.executable, SINK, "--host", HOST, "--port", "0", "--exit-on-stdin-eof"],
            log_path=os.path.join(run_dir, "sink.log"),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.child.proc.stdout is not None
        ready, _, _ = select.select([self.child.proc.stdout], [], [], 20.0)
        line = self.child.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening "):
            self.child.kill()
            raise RuntimeError(f"sink did not start: {line!r} {self.child.log_tail()}")
        self.port = int(line.split()[1])
        self.url = f"http://{HOST}:{self.port}"
        self._conn: http.client.HTTPConnection | None = None

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            try:
                data = json.dumps(body).encode() if body is not None else None
                self._conn.request(method, path, body=data)
                return json.loads(self._conn.getresponse().read())
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def reset(self, target: int, *, live: bool = False) -> None:
        self._call("POST", "/_bench/reset", {"target": target, "live": live})

    def stats(self, *, latency: bool = False) -> dict:
        return self._call("GET", "/_bench/stats" + ("?latency=1" if latency else ""))

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.child.stop(5.0)


# --- syslog-ng from Debian's packages, unpacked into a cache ----------------------------


class SyslogNg:
    def __init__(self, root: Path, system: bool = False) -> None:
        self.root = root
        self.system = system
        prefix = Path("/") if system else root
        self.binary = str(prefix / "usr/sbin/syslog-ng")
        mods = sorted(glob.glob(str(prefix / "usr/lib/syslog-ng/3.*")))
        self.module_dir = mods[-1] if mods else ""
        self.scl = str(prefix / "usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf")
        libs = [str(root / "usr/lib/syslog-ng")]
        libs += glob.glob(str(root / "usr/lib/*-linux-gnu")) + glob.glob(
            str(root / "lib/*-linux-gnu")
        )
        self.lib_path = "" if system else ":".join(libs)
        self.version = ""
        self.config_version = ""
        self.compression = False
        self.compression_note = ""

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        if self.lib_path:
            env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (self.lib_path, env.get("LD_LIBRARY_PATH")) if p
            )
        return env

    def base_argv(self) -> list[str]:
        return [self.binary, f"--module-path={self.module_dir}"]

    def run(self, args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.base_argv() + args,
            env=self.env(dict(os.environ)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def config(self, *, path: str, port: int, compress: bool) -> str:
        comp = 'compression("gzip")' if compress else ""
        template = (
            "$(format-json --scope none @timestamp=${ISODATE} message=${MSG} "
            "log.file.path=${FILE_NAME} host.name=${HOST} agent.type=syslog-ng "
            f"agent.version={self.version} agent.name=${{HOST}} ecs.version=8.11.0)"
        )
        return f"""@version: {self.config_version}
@include "{self.scl}"
options {{ stats-freq(0); frac-digits(3); use-dns(no); dns-cache(no); use-fqdn(no);
          keep-hostname(yes); chain-hostnames(no); }};
source s_app {{
  file("{path}" follow-freq(0.1) flags(no-parse) log-iw-size(20000) log-fetch-limit(1000));
}};
destination d_es {{
  elasticsearch-http(
    url("http://{HOST}:{port}/_bulk") index("{INDEX}") type("")
    workers(4) batch-lines(2000) batch-bytes(5MiB) timeout(30)
    log-fifo-size(20000) {comp}
    template("{template}")
  );
}};
log {{ source(s_app); destination(d_es); flags(flow-control); }};
"""

    def argv(self, conf: str, state_dir: str) -> list[str]:
        return [
            *self.base_argv(),
            "-F",
            "-e",
            "--no-caps",
            "-f",
            conf,
            f"--persist-file={state_dir}/syslog-ng.persist",
            f"--pidfile={state_dir}/syslog-ng.pid",
            f"--control={state_dir}/syslog-ng.ctl",
        ]


def _sh(argv: list[str], cwd: str | None = None, timeout: float = 180.0) -> tuple[int, str]:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: no answer in {timeout:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()


def _missing_libs(sng: SyslogNg) -> list[str]:
    targets = [sng.binary] + [os.path.join(sng.module_dir, f"lib{m}.so") for m in SNG_MODULES]
    missing: set[str] = set()
    env = sng.env(dict(os.environ))
    for target in targets:
        if not os.path.exists(target):
            missing.add(f"{target} (file)")
            continue
        out = subprocess.run(["ldd", target], env=env, capture_output=True, text=True, check=False)
        missing.update(line.split()[0] for line in out.stdout.splitlines() if "not found" in line)
    return sorted(missing)


def _not_installed_deps(packages: tuple[str, ...]) -> list[str]:
    code, out = _sh(["apt-cache", "depends", "--no-recommends", "--no-suggests", *packages])
    if code != 0:
        return []
    names = set()
    for line in out.splitlines():
        line = line.strip().lstrip("|")
        if line.startswith(("Depends:", "PreDepends:")):
            name = line.split(":", 1)[1].strip()
            if not name.startswith("<") and name not in SNG_PACKAGES:
                names.add(name)
    wanted = []
    for name in sorted(names):
        code, status = _sh(["dpkg-query", "-W", "-f=${db:Status-Status}", name], timeout=30)
        if code != 0 or status.strip() != "installed":
            wanted.append(name)
    return wanted


def _fetch(packages: list[str], debs: Path, root: Path, log: list[str]) -> str | None:
    cmd = ["apt-get", "download", *packages]
    log.append(f"(cd {debs} && {' '.join(cmd)})")
    code, out = _sh(cmd, cwd=str(debs))
    if code != 0:
        tail = " | ".join(out.splitlines()[-3:])
        return f"`{' '.join(cmd)}` failed ({code}): {tail} (try `apt-get update` first)"
    for name in packages:
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            return f"apt-get download gave no .deb for {name}"
        log.append(f"dpkg -x {found[-1].name} {root}")
        code, out = _sh(["dpkg", "-x", str(found[-1]), str(root)])
        if code != 0:
            return f"dpkg -x {found[-1].name} failed: {out[-300:]}"
    return None


def _finish_setup(sng: SyslogNg, log: list[str]) -> str | None:
    """Version, config version, a syntax check, and whether compression() exists."""
    try:
        out = sng.run(["--version"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{sng.binary} --version failed: {exc}"
    match = re.search(r"syslog-ng \d+ \((\d+)\.(\d+)\.(\d+)\)", out.stdout)
    if out.returncode != 0 or not match:
        return (
            f"{sng.binary} --version failed ({out.returncode}): {(out.stdout + out.stderr)[-300:]}"
        )
    sng.version = ".".join(match.groups())
    sng.config_version = f"{match.group(1)}.{match.group(2)}"
    if not os.path.exists(sng.scl):
        return f"the elasticsearch-http() SCL is missing: {sng.scl}"
    with tempfile.TemporaryDirectory(prefix="sng-check-") as tmp:
        for compress in (False, True):
            conf = os.path.join(tmp, "check.conf")
            with open(conf, "w") as fh:
                fh.write(sng.config(path=os.path.join(tmp, "x.log"), port=9, compress=compress))
            out = sng.run(["-s", "-f", conf])
            text = " ".join((out.stdout + out.stderr).split())
            if not compress and out.returncode != 0:
                return f"syslog-ng refuses the benchmark's configuration: {text[:400]}"
            if compress:
                sng.compression = out.returncode == 0
                if not sng.compression:
                    where = re.search(r"syntax error[^\n]*?compression", text)
                    sng.compression_note = (
                        f"syslog-ng {sng.version}'s http() has no compression() option "
                        f'(`syslog-ng -s` on a config with compression("gzip"): '
                        f"{'syntax error at compression' if where else text[:160]})"
                    )
    log.append(f"syslog-ng {sng.version}: config syntax ok; compression(): "
               f"{'yes' if sng.compression else 'no'}")  # fmt: skip
    return None


def setup_syslog_ng(cache: Path, *, download: bool) -> tuple[SyslogNg | None, str, list[str]]:
    """→ (syslog-ng, '', steps) or (None, why not, steps)."""
    log: list[str] = []
    system = SyslogNg(Path("/"), system=True)
    if (
        os.path.exists(system.binary)
        and os.path.exists(system.scl)
        and not _missing_libs(system)
        and _finish_setup(system, log) is None
    ):
        log.insert(0, f"using the system's {system.binary}")
        return system, "", log
    root = cache / "root"
    sng = SyslogNg(root)
    if not (os.path.exists(sng.binary) and os.path.exists(cache / "complete")):
        if not download:
            return None, f"not in {cache} and --no-syslog-ng-download given", log
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            return None, "no apt-get/dpkg here to fetch Debian's syslog-ng packages", log
        debs = cache / "debs"
        shutil.rmtree(cache, ignore_errors=True)
        debs.mkdir(parents=True)
        root.mkdir()
        why = _fetch(list(SNG_PACKAGES), debs, root, log)
        if why:
            return None, why, log
        sng = SyslogNg(root)
        missing = _missing_libs(sng)
        if missing:
            log.append(f"ldd: missing {', '.join(missing)}")
            deps = _not_installed_deps(SNG_PACKAGES)
            if deps:
                why = _fetch(deps, debs, root, log)
                if why:
                    return None, why, log
            sng = SyslogNg(root)
            missing = _missing_libs(sng)
            if missing:
                return None, f"libraries still missing after unpacking {deps}: {missing}", log
        (cache / "complete").write_text("ok\n")
    else:
        log.append(f"cached in {cache} (delete it to fetch again)")
    why = _finish_setup(sng, log)
    if why:
        return None, why, log
    return sng, "", log


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
    def __init__(self, key: str, tool: str, compress: bool, note: str = "") -> None:
        self.key, self.tool, self.compress, self.note = key, tool, compress, note


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: str, sng: SyslogNg | None) -> None:
        self.args, self.tmp, self.sng = args, tmp, sng
        self.child_env = {
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONDONTWRITEBYTECODE" and k not in DOWNWARD_ENV
        }
        self.child_env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        self.sink = Sink(tmp, self.child_env)
        self.runs = 0
        self.commands: dict[str, list[str]] = {}

    def logship_argv(self, path: str, state: str, compress: bool) -> list[str]:
        return [
            LOGSHIP,
            "--path", path,
            "--es", f"http://{HOST}:{self.sink.port}",
            "--data-dir", state,
            "--index", INDEX,
            "--compress" if compress else "--no-compress",
            "--log-level", "warning",
            *self.args.logship_arg,
        ]  # fmt: skip

    def start(self, variant: Variant, path: str) -> Child:
        self.runs += 1
        state = os.path.join(self.tmp, f"run-{self.runs:03d}-{variant.key.replace(' ', '_')}")
        os.makedirs(state)
        log = os.path.join(state, "shipper.log")
        if variant.tool == "logship":
            argv = self.logship_argv(path, os.path.join(state, "data"), variant.compress)
            env = self.child_env
        else:
            assert self.sng is not None
            conf = os.path.join(state, "syslog-ng.conf")
            with open(conf, "w") as fh:
                fh.write(self.sng.config(path=path, port=self.sink.port, compress=variant.compress))
            argv = self.sng.argv(conf, state)
            env = self.sng.env(self.child_env)
        shown = [a if a != path else "FILE" for a in argv]
        self.commands.setdefault(variant.key, [re.sub(r"run-\d+-[^/]*", "RUN", a) for a in shown])
        return Child(argv, log_path=log, env=env)

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
        warm = 20
        with open(path, "w") as fh:
            for i in range(warm):
                fh.write(f"{maker.stamp(time.time())} INFO  [main] c.e.shop.App - starting {i}\n")
        self.sink.reset(warm)
        child = self.start(variant, path)
        result: dict = {"variant": variant.key, "rate": rate, "seconds": seconds}
        ready_by = time.monotonic() + 30
        while self.sink.stats()["t_done"] is None:
            child.sample()
            if time.monotonic() > ready_by or not child.alive():
                result["failure"] = "the first lines never reached the sink"
                result["log_tail"] = child.log_tail()
                child.stop(10.0)
                return result
            time.sleep(0.05)
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


# --- report ------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: list[float]) -> float | None:
    return quantile(values, 0.5)


def machine() -> dict[str, object]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "kernel": f"{os.uname().sysname} {os.uname().release}",
        "loadavg_at_start": os.getloadavg(),
    }


def source_state() -> str:
    """Which logship was measured: the commit, and whether agents/ had local changes."""
    repo = os.path.dirname(HERE)
    code, head = _sh(["git", "-C", repo, "log", "-1", "--format=%h %cs"], timeout=10)
    if code != 0:
        return "not a git checkout"
    code, dirty = _sh(["git", "-C", repo, "status", "--porcelain", "--", "agents"], timeout=10)
    changed = len(dirty.splitlines()) if code == 0 else 0
    return f"commit {head}" + (f" + {changed} changed file(s) in agents/" if changed else "")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    headers = ["scenario", "logship", "syslog-ng", "ratio", "goal", "result"]
    table = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 100,000 lines, 10 s live")
    parser.add_argument("--runs", type=int, help="catch-up runs per variant (default 3)")
    parser.add_argument("--lines", type=int, help="catch-up file size (default 1,000,000)")
    parser.add_argument("--live-seconds", type=float, help="live duration (default 60)")
    parser.add_argument("--live-rate", type=int, default=10000, help="lines/s written live")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--seed", type=int, default=1, help="seed for the log text")
    parser.add_argument(
        "--run-timeout", type=float, default=240.0, help="limit for one catch-up run (s)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=840.0,
        metavar="SECONDS",
        help="stop starting catch-up rounds once this would be passed (default 840)",
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
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    lines = args.lines if args.lines is not None else (100_000 if args.quick else 1_000_000)
    seconds = args.live_seconds if args.live_seconds is not None else (10.0 if args.quick else 60.0)
    if runs < 1 or lines < 1000 or seconds <= 0 or args.live_rate < 1:
        parser.error("--runs >= 1, --lines >= 1000, --live-seconds > 0, --live-rate >= 1")
    if not os.access(LOGSHIP, os.X_OK):
        print(f"not found or not executable: {LOGSHIP}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="logship-bench-")
    try:
        return bench(args, tmp, runs, lines, seconds)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        kill_all_children()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, tmp: str, runs: int, lines: int, seconds: float) -> int:
    started = time.monotonic()
    info = machine()
    print(
        f"logship_bench: {runs} catch-up run(s) of {lines:,} lines per variant, "
        f"live {args.live_rate:,} lines/s for {seconds:.0f} s; temp dir {tmp}",
        flush=True,
    )
    if args.no_syslog_ng:
        sng, sng_why, sng_steps = None, "--no-syslog-ng given", []
    else:
        print(f"  syslog-ng: setting up (cache {args.syslog_ng_cache}) ...", flush=True)
        sng, sng_why, sng_steps = setup_syslog_ng(
            args.syslog_ng_cache, download=not args.no_syslog_ng_download
        )
        print(f"  syslog-ng: {sng.version if sng else 'NOT AVAILABLE: ' + sng_why}", flush=True)

    maker = LineMaker(args.seed)
    data = os.path.join(tmp, "app.log")
    t = time.monotonic()
    mean_len = maker.catchup(data, lines)
    warm_file = os.path.join(tmp, "warm.log")
    maker.catchup(warm_file, 5000)
    print(
        f"  generated {lines:,} lines, mean {mean_len:.1f} bytes, "
        f"{os.path.getsize(data) / 2**20:.1f} MiB in {time.monotonic() - t:.1f} s",
        flush=True,
    )

    b = Bench(args, tmp, sng)
    variants = [Variant("logship --compress", "logship", True),
                Variant("logship --no-compress", "logship", False)]  # fmt: skip
    if sng is not None:
        variants.append(Variant("syslog-ng", "syslog-ng", False))
        if sng.compression:
            variants.append(Variant("syslog-ng gzip", "syslog-ng", True))
    results: dict[str, list[dict]] = {v.key: [] for v in variants}
    failures: list[str] = []
    live_results: dict[str, dict] = {}
    budget_hit = False
    try:
        # Warm-up, not counted: .pyc files for logship, page cache, dynamic loader.
        for v in variants[:1] + [v for v in variants if v.tool == "syslog-ng"][:1]:
            r = b.catchup(v, warm_file, 5000, 60.0)
            if "failure" in r:
                print(f"warm-up of {v.key} failed: {r['failure']}\n{r.get('log_tail', '')}")
                if v.tool == "logship":
                    return 1
                sng_why = f"warm-up failed: {r['failure']}"
                variants = [x for x in variants if x.tool != "syslog-ng"]
                sng = b.sng = None
        live_reserve = len({v.tool for v in variants}) * (seconds + 15)
        last_round = 0.0
        for i in range(runs):
            elapsed = time.monotonic() - started
            if i and elapsed + last_round + live_reserve > args.budget:
                budget_hit = True
                break
            round_start = time.monotonic()
            order = variants[i % len(variants) :] + variants[: i % len(variants)]
            for v in order:
                r = b.catchup(v, data, lines, args.run_timeout)
                if "failure" in r:
                    failures.append(f"catch-up {v.key}: {r['failure']}")
                    print(f"  {v.key}: FAILED {r['failure']}\n{r.get('log_tail', '')}")
                else:
                    results[v.key].append(r)
                    print(
                        f"  round {i + 1} {v.key:<22} {r['lines_per_s']:>9,.0f} lines/s  "
                        f"{r['cpu_us_per_line']:6.1f} us/line  "
                        f"peak {r['peak_rss_kib'] / 1024:6.1f} MiB  "
                        f"sink cpu {100 * r['sink_cpu_s'] / r['wall_s']:3.0f}%  ({r['ended']})",
                        flush=True,
                    )
            last_round = time.monotonic() - round_start
        print(f"  catch-up done at {time.monotonic() - started:.0f} s", flush=True)
        live_variants = [variants[0]] + [v for v in variants if v.key == "syslog-ng"]
        for v in live_variants:
            r = b.live(v, maker, args.live_rate, seconds)
            live_results[v.key] = r
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
    finally:
        b.sink.stop()
        kill_all_children()

    # ---- report -------------------------------------------------------------------------
    def vals(key: str, field: str) -> list[float]:
        return [r[field] for r in results.get(key, []) if r.get(field) is not None]

    def ratio(a: float | None, c: float | None) -> float | None:
        return None if a is None or c is None or c == 0 else a / c

    sng_plain = "syslog-ng" if sng is not None else None
    sng_gzip = "syslog-ng gzip" if sng is not None and sng.compression else sng_plain
    star = "" if sng is None or sng.compression else " *"
    rows: list[dict] = []
    for label, ours, theirs, mark in (
        ("gzip on", "logship --compress", sng_gzip, star),
        ("gzip off", "logship --no-compress", sng_plain, ""),
    ):
        a = median(vals(ours, "lines_per_s"))
        c = median(vals(theirs, "lines_per_s")) if theirs else None
        r = ratio(a, c)
        rows.append({
            "scenario": f"catch-up lines/s, {label} (median)",
            "logship": fmt(a, ",.0f"),
            "syslog-ng": fmt(c, ",.0f") + (mark if c is not None else ""),
            "ratio": "n/a" if r is None else f"{r:.2f}x",
            "goal": f">= {GOAL_RATE_RATIO}x syslog-ng",
            "result": verdict(None if r is None else r >= GOAL_RATE_RATIO),
        })  # fmt: skip
    for label, ours, theirs, mark in (
        ("gzip on", "logship --compress", sng_gzip, star),
        ("gzip off", "logship --no-compress", sng_plain, ""),
    ):
        a = median(vals(ours, "cpu_us_per_line"))
        c = median(vals(theirs, "cpu_us_per_line")) if theirs else None
        r = ratio(a, c)
        rows.append({
            "scenario": f"catch-up CPU us/line, {label} (median)",
            "logship": fmt(a, ".2f"),
            "syslog-ng": fmt(c, ".2f") + (mark if c is not None else ""),
            "ratio": "n/a" if r is None else f"{r:.2f}x",
            "goal": f"<= {GOAL_CPU_RATIO}x syslog-ng",
            "result": verdict(None if r is None else r <= GOAL_CPU_RATIO),
        })  # fmt: skip
    for label, ours, theirs, mark in (
        ("gzip on", "logship --compress", sng_gzip, star),
        ("gzip off", "logship --no-compress", sng_plain, ""),
    ):
        a_all = vals(ours, "peak_rss_kib")
        c_all = vals(theirs, "peak_rss_kib") if theirs else []
        a = max(a_all) / 1024 if a_all else None
        c = max(c_all) / 1024 if c_all else None
        r = ratio(a, c)
        rows.append({
            "scenario": f"catch-up peak RSS MiB, {label} (max)",
            "logship": fmt(a, ".1f"),
            "syslog-ng": fmt(c, ".1f") + (mark if c is not None else ""),
            "ratio": "n/a" if r is None else f"{r:.2f}x",
            "goal": f"<= {GOAL_RSS_MIB:.0f} MiB",
            "result": verdict(None if a is None else a <= GOAL_RSS_MIB),
        })  # fmt: skip
    ours_live = live_results.get(variants[0].key, {})
    theirs_live = live_results.get("syslog-ng", {})
    for q, goal in (("p50", GOAL_P50_MS), ("p99", GOAL_P99_MS)):
        a = (ours_live.get("latency_ms") or {}).get(q)
        c = (theirs_live.get("latency_ms") or {}).get(q)
        if "failure" in ours_live:
            a = None
        r = ratio(a, c)
        rows.append({
            "scenario": f"live latency {q} ms, {args.live_rate:,}/s",
            "logship": fmt(a, ".1f"),
            "syslog-ng": fmt(c, ".1f"),
            "ratio": "n/a" if r is None else f"{r:.2f}x",
            "goal": f"<= {goal:.0f} ms",
            "result": verdict(None if a is None else a <= goal),
        })  # fmt: skip
    a_rss = ours_live.get("peak_rss_kib")
    c_rss = theirs_live.get("peak_rss_kib")
    r = ratio(a_rss, c_rss)
    rows.append({
        "scenario": "live peak RSS MiB",
        "logship": fmt(a_rss / 1024 if a_rss else None, ".1f"),
        "syslog-ng": fmt(c_rss / 1024 if c_rss else None, ".1f"),
        "ratio": "n/a" if r is None else f"{r:.2f}x",
        "goal": f"<= {GOAL_RSS_MIB:.0f} MiB",
        "result": verdict(None if not a_rss else a_rss / 1024 <= GOAL_RSS_MIB),
    })  # fmt: skip
    a_cpu, c_cpu = ours_live.get("cpu_core_pct"), theirs_live.get("cpu_core_pct")
    r = ratio(a_cpu, c_cpu)
    rows.append({
        "scenario": "live CPU, % of one core",
        "logship": fmt(a_cpu, ".1f"),
        "syslog-ng": fmt(c_cpu, ".1f"),
        "ratio": "n/a" if r is None else f"{r:.2f}x",
        "goal": "(no goal)",
        "result": "",
    })  # fmt: skip

    print()
    print(
        f"machine: nproc {info['nproc']} (usable {info['usable_cpus']}), CPU {info['cpu_model']}, "
        f"{info['kernel']}, Python {info['python']} ({info['python_executable']}), loadavg "
        f"{' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"  # type: ignore[union-attr]
    )
    print(f"logship: {LOGSHIP} from {source_state()}")
    print(f"data: {lines:,} lines, mean {mean_len:.1f} bytes; live {args.live_rate:,} lines/s "
          f"for {seconds:.0f} s; sink: {SINK} on {HOST} (own process)")  # fmt: skip
    if sng is not None:
        where = "the system's" if sng.system else f"Debian's packages unpacked in {sng.root}"
        print(
            f"syslog-ng {sng.version}: {where}"
            + (f", LD_LIBRARY_PATH={sng.lib_path}" if sng.lib_path else "")
        )
    else:
        print(f"syslog-ng: NOT RUN: {sng_why}")
    for step in sng_steps:
        print(f"  setup: {step}")
    print("commands (FILE = the shipped file, RUN = that run's state dir, PORT = the sink):")
    for key, cmd in b.commands.items():
        print(f"  {key}: {' '.join(cmd).replace(str(b.sink.port), 'PORT')}")
    if sng is not None:
        print("  syslog-ng.conf (as run):")
        shown = sng.config(path="FILE", port=0, compress=False).replace(":0/_bulk", ":PORT/_bulk")
        for line in shown.splitlines():
            print(f"    {line}")
    counted = ", ".join(f"{k} {len(v)}" for k, v in results.items())
    print(f"catch-up runs counted: {counted}; wall = spawn -> sink has every line (start-up "
          "included); CPU = wait4 user+sys of the shipper's pid over its whole life / lines; "
          "peak RSS = its VmHWM")  # fmt: skip
    if star:
        print(f" * {sng.compression_note if sng else ''}: both gzip rows compare with syslog-ng "
              "sending uncompressed")  # fmt: skip
    print()
    print_table(rows)
    sink_shares = [
        100 * r["sink_cpu_s"] / r["wall_s"] for rs in results.values() for r in rs if r["wall_s"]
    ]
    if sink_shares:
        low, high = f"{min(sink_shares):.0f}", f"{max(sink_shares):.0f}"
        print(f"\nsink CPU while catching up: {low if low == high else low + '-' + high}% "
              "of one core (it is not the bottleneck while well below 100%)")  # fmt: skip
    for key, rs in results.items():
        if rs:
            walls = [r["wall_s"] for r in rs]
            first = [r["first_request_s"] for r in rs]
            print(f"  {key}: wall {', '.join(f'{w:.2f}' for w in walls)} s; first bulk request "
                  f"{median(first):.2f} s after spawn; {rs[0]['sink_requests']} requests, "
                  f"{rs[0]['sink_bytes_in'] / 2**20:.1f} MiB on the wire "
                  f"({rs[0]['sink_bytes_plain'] / 2**20:.1f} MiB NDJSON)")  # fmt: skip
    for key, r in live_results.items():
        lat, seq = r.get("latency_ms") or {}, r.get("seq") or {}
        print(f"  live {key}: n {lat.get('n', 0):,}, p90 {fmt(lat.get('p90'), '.1f')} ms, "
              f"p99.9 {fmt(lat.get('p999'), '.1f')} ms, max {fmt(lat.get('max'), '.1f')} ms, "
              f"duplicates {seq.get('duplicates', 'n/a')}, writer's largest write "
              f"{r.get('largest_write_lines', 'n/a')} lines")  # fmt: skip
    if failures:
        print("\nfailed runs (not counted):")
        for f in failures:
            print(f"  {f}")
    if budget_hit:
        print(f"\nbudget of {args.budget:.0f} s reached: fewer catch-up rounds than asked")
    if runs < 3:
        print("\nnote: fewer than 3 catch-up runs: single runs swing; read the medians of a "
              "default run")  # fmt: skip
    print(f"\ntotal {time.monotonic() - started:.0f} s")

    if args.json:
        doc = {
            "machine": info,
            "settings": {
                "lines": lines,
                "mean_line_bytes": mean_len,
                "runs_asked": runs,
                "live_rate": args.live_rate,
                "live_seconds": seconds,
                "logship_extra_args": args.logship_arg,
                "seed": args.seed,
            },
            "syslog_ng": {
                "available": sng is not None,
                "why_not": sng_why,
                "version": sng.version if sng else None,
                "compression": sng.compression if sng else None,
                "compression_note": sng.compression_note if sng else None,
                "setup_steps": sng_steps,
            },
            "logship_source": source_state(),
            "commands": b.commands,
            "catchup": results,
            "live": live_results,
            "failures": failures,
            "budget_hit": budget_hit,
            "table": rows,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
