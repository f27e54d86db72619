#!/usr/bin/env python3
"""waitfor's peak RSS for every kind of target, beside wait-for-it, and where it goes.

Every kind of target waitfor knows is run against a server this benchmark starts on
loopback (in a server process of its own, stopped at the end, also on failure):

- tcp, http, https (#ca= a CA made by trustme), unix (asyncio listeners); dns (#server=
  a UDP server on dnspython: an A record for ready.example, NXDOMAIN for anything else);
  file (a file in a private temp dir); exec:true;
- fakes of the wire protocols, enough for waitfor's checks: postgres (AuthenticationOk;
  with #query=, the login and a one-row answer, none for "... WHERE false"), mysql
  (greeting, then OK), redis (+PONG; with #key=, EXISTS answers :1 for "present"), amqp
  (Connection.Start);
- grpc and grpcs: a real grpcio server with grpcio-health-checking's HealthServicer
  set to SERVING; k8s://job/NAME: tests/kubeapi.py's API server with the recorded
  completed Job (--kubeconfig pointing at it).

Each is measured "ready" (the server answers; --timeout 10s) and "not ready" (--timeout
2s against a port bound but never listening, or a missing name, file, key, row or Job:
waitfor runs its full asyncio runner until the deadline, exit 124). wait-for-it is
measured on the tcp target, ready and not ready (-t 2), as the peer.

Peak RSS is ru_maxrss from os.wait4() on the tool's own pid, as in waitfor_bench.py (the
console scripts are exec'd through their shebang, so that pid is the Python process).
The Linux floor caveat applies: a child's ru_maxrss is never below the VmHWM of the
process that spawned it (vfork/posix_spawn + exec carries its high-water mark into the
child). So the tools are not spawned from this script, which has the servers' clients
and helpers loaded, but from a spawner: `python -I -S` with nothing but `os` loaded,
which posix_spawns each tool and reaps it with wait4. Its VmHWM (about 9 MiB) is the
floor; a figure at or below it is printed "<=floor", figures above it are exact.
Runs go `--jobs` at a time (default: the usable CPUs): RSS is per process, and the
not-ready runs spend their 2 s asleep.

Then where the memory goes: VmRSS after imports, each ladder in a fresh interpreter
(python with site, as the console script starts): (a) the interpreter alone, (b) +
agents.waitfor.cli, (c) + asyncio (in two steps: the ssl module it imports, OpenSSL's
libraries with it, then the rest), + agents.waitfor.runner (the not-ready path loads
them; a ready tcp, file or unix target is confirmed by a blocking first look without),
(d) + each kind's check module and the modules it loads (agents.waitfor.resolver,
checks._h2, agents.waitfor.kube ...), as increments. The kind's not-ready peak less its import
total is its run-time cost: the event loop, TLS contexts, threads, buffers.

Goal (from the issue): peak RSS <= 25 MiB, for every kind, ready and not ready; printed
as PASS/MISS (a MISS is reported, not an error: the exit code is 0 unless the benchmark
itself broke: a server that would not start, a kind that could not be measured).

What runs: by default a copy installed for the purpose, as an image installs it: wheels of
pod-agents[waitfor] and of wait-for-it built now (pip wheel; PyPI or pip's cache for the
dependencies) and installed into a private venv in the temp dir. The dev venv's editable
install runs a hook at every Python start (`__editable__*.pth`: pathlib, urllib, re ...)
that costs both tools about 2 MiB no user pays; `--in-place` measures the dev venv anyway.

By default the tools run with cached bytecode (a private PYTHONPYCACHEPREFIX, written by
a warm-up round that is not counted, PYTHONDONTWRITEBYTECODE dropped), as in a
pip-installed image; `--inherit-env` runs them with this environment unchanged. Nothing
is written to the source tree. The server process imports tests.kubeapi from this
repository (and aiohttp, grpcio, trustme, dnspython from the venv). Linux only.

Usage: .venv/bin/python benchmarks/waitfor_memory_bench.py [--quick] [--runs N] [--json FILE]
           [--jobs N] [--inherit-env] [--in-place]
       (default 3 counted runs, the max reported, about 75 s on 2 CPUs; --quick 1 run)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # our own imports (and the server's): no __pycache__ in the tree

from _common import median, print_table, source_state  # noqa: E402 (benchmarks/, our directory)
from waitfor_bench import (  # noqa: E402
    GOAL_RSS_MIB,
    HOST,
    WAIT_FOR_IT,
    WAITFOR,
    bound_socket,
    bytecode_note,
    editable_note,
    fmt_mib,
    machine,
    shebang,
    verdict,
)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
READY_TIMEOUT = "10s"  # a ready run exits at once; this only bounds a broken one
NOT_READY_TIMEOUT = "2s"
WARM_UP_NOT_READY_TIMEOUT = "1s"  # the warm-up only writes .pyc files and fills the page cache
CHILD_LIMIT_S = 15.0  # past a run's own --timeout, the benchmark kills it
SERVER_START_S = 60.0


class Tools:
    """What is measured: by default an installed copy (see install_copy), else the dev venv."""

    python = sys.executable
    waitfor = WAITFOR
    wait_for_it = WAIT_FOR_IT
    how = "the dev venv in place"


def install_copy(workdir: str) -> None:
    """pod-agents[waitfor] and wait-for-it installed from wheels into a private venv, as an
    image installs them: no editable-install hook runs at start-up. (The dev venv's hook,
    `__editable__*.pth`, imports pathlib, urllib and more into every Python it starts:
    about 2 MiB that no installed copy pays, on both tools.)"""
    wheels, venv = os.path.join(workdir, "wheels"), os.path.join(workdir, "venv")
    steps = [
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", wheels, f"{REPO}[waitfor]",
         "wait-for-it"],
        [sys.executable, "-m", "venv", venv],
        [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--no-index",
         "--find-links", wheels, "pod-agents[waitfor]", "wait-for-it"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False,
                              cwd=workdir)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"installing a copy failed: {' '.join(step[:4])} ...: "
                               f"{done.stderr.strip()[-1500:]}")  # fmt: skip
    Tools.python = os.path.join(venv, "bin", "python")
    Tools.waitfor = os.path.join(venv, "bin", "waitfor")
    Tools.wait_for_it = os.path.join(venv, "bin", "wait-for-it")
    Tools.how = "a private venv, pod-agents[waitfor] and wait-for-it installed from wheels"


# --- the spawner: a lean process that starts the tools, so their ru_maxrss is their own ---

SPAWNER = r"""
import os, time, resource
PARENT = os.getppid()
def say(text):
    os.write(1, (text + "\n").encode())
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return line.split()[1]
    return "0"
def batch(line):
    parallel, *jobs = line.split("\x1e")
    pending = [job.split("\x1f") for job in reversed(jobs)]
    running = {}
    while pending or running:
        if os.getppid() != PARENT:  # the benchmark is gone: start nothing more
            pending.clear()
        while pending and len(running) < int(parallel):
            idx, err, *argv = pending.pop()
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            ]
            try:
                pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
            except OSError as exc:
                say(f"fail {idx} {exc.errno}")
                continue
            running[pid] = (idx, time.monotonic())
            say(f"pid {idx} {pid}")
        pid, status, usage = os.wait4(-1, 0)
        if pid in running:
            idx, started = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            say(f"exit {idx} {code} {usage.ru_maxrss} {time.monotonic() - started:.3f}")
    say("done " + hwm())
buf = b""
while True:
    chunk = os.read(0, 1 << 16)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        batch(line.decode())
"""


class Run:
    """One tool process: its argv, and what wait4 said of it."""

    def __init__(self, case: Case, state: str, argv: list[str], limit_s: float) -> None:
        self.case, self.state, self.argv, self.limit_s = case, state, argv, limit_s
        self.err_path = ""
        self.pid: int | None = None
        self.started = 0.0
        self.exit_code: int | None = None
        self.maxrss_kib: int | None = None
        self.elapsed_s: float | None = None
        self.killed = False
        self.problem: str | None = None

    def ok(self) -> bool:
        if self.problem is not None or self.exit_code is None or self.killed:
            return False
        if self.state == "ready":
            return self.exit_code == 0
        if self.case.tool == "waitfor":
            return self.exit_code == 124  # the deadline passed: what a not-ready run ends with
        return self.exit_code > 0  # wait-for-it: 1 when it gives up

    def why(self) -> str:
        if self.problem is not None:
            return self.problem
        tail = ""
        with contextlib.suppress(OSError), open(self.err_path, "rb") as fh:
            lines = fh.read()[-4096:].decode(errors="replace").strip().splitlines()
            tail = lines[-1][:300] if lines else ""
        killed = " (killed: no exit)" if self.killed else ""
        return f"exit {self.exit_code}{killed}" + (f": {tail}" if tail else "")


class Spawner:
    def __init__(self, env: dict[str, str] | None, workdir: str) -> None:
        self.log_path = os.path.join(workdir, "spawner.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", SPAWNER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=workdir,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it ourselves
            )
        self.workdir = workdir
        self.hwm_kib = 0
        self.runs: list[Run] = []  # the batch under way
        self.live: dict[int, int] = {}  # index in the batch -> pid, until its exit is read
        self._buf = b""
        self._count = 0

    def _line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                with open(self.log_path, "rb") as fh:
                    log = fh.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"the spawner died: {log.strip()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def _read(self, line: str) -> bool:
        """One line of the spawner's; True at the batch's end."""
        what, *rest = line.split()
        if what == "done":
            self.hwm_kib = max(self.hwm_kib, int(rest[0]))
            self.runs = []
            return True
        idx = int(rest[0])
        run = self.runs[idx]
        if what == "pid":
            run.pid, run.started = int(rest[1]), time.monotonic()
            self.live[idx] = run.pid
        elif what == "exit":
            self.live.pop(idx, None)
            run.exit_code, run.maxrss_kib = int(rest[1]), int(rest[2])
            run.elapsed_s = float(rest[3])
        elif what == "fail":
            run.problem = f"cannot start: {os.strerror(int(rest[1]))}"
        return False

    def run(self, runs: list[Run], parallel: int) -> None:
        """Run them all, `parallel` at a time; kill any that outlive their limit."""
        assert self.proc.stdin is not None
        jobs = []
        for idx, run in enumerate(runs):
            self._count += 1
            run.err_path = os.path.join(self.workdir, f"run-{self._count}.stderr")
            fields = [str(idx), run.err_path, *run.argv]
            assert not any(c in f for f in fields for c in "\n\x1e\x1f"), fields
            jobs.append("\x1f".join(fields))
        self.runs = runs
        self.proc.stdin.write(("\x1e".join([str(parallel), *jobs]) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            now = time.monotonic()
            for idx, pid in list(self.live.items()):
                run = runs[idx]
                if not run.killed and now - run.started > run.limit_s:
                    run.killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            line = self._line(0.25)
            if line is not None and self._read(line):
                return

    def close(self) -> None:
        """At the end: EOF, and it exits. Cut short in a batch (an error, Ctrl-C): kill it
        first, so that it starts nothing more, then the tools it had started, by pid."""
        aborted = bool(self.runs)
        if aborted:
            self.proc.kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(CHILD_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if aborted:
            with contextlib.suppress(RuntimeError, OSError, IndexError, ValueError):
                while (line := self._line(0)) is not None:  # what it said before it died
                    self._read(line)
            for pid in self.live.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- the servers (a process of their own: `--serve DIR`) ---------------------------------


def serve(workdir: str) -> int:
    """Start every server, print their endpoints as one JSON line, stop at stdin's EOF."""
    import asyncio
    import ssl
    import struct
    from concurrent import futures
    from pathlib import Path

    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
    import grpc
    import trustme
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    sys.path.insert(0, REPO)
    from tests.kubeapi import KubeAPI, recorded_object

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = os.path.join(workdir, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server_tls)

    ready_file = os.path.join(workdir, "ready.file")
    with open(ready_file, "w") as fh:
        fh.write("ready\n")

    async def tcp_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def http_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                b"Connection: close\r\n\r\nok\n"
            )
            await writer.drain()
        writer.close()

    def pg_message(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("!I", len(body) + 4) + body

    async def postgres_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:  # the startup message (an SSLRequest is answered "N" first)
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                body = await reader.readexactly(size - 4)
                if body[:4] != struct.pack("!I", 80877103):
                    break
                writer.write(b"N")
            writer.write(pg_message(b"R", struct.pack("!I", 0)))  # AuthenticationOk
            writer.write(pg_message(b"Z", b"I"))  # ReadyForQuery
            await writer.drain()
            while True:
                kind = await reader.readexactly(1)
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                sql = (await reader.readexactly(size - 4)).rstrip(b"\0").lower()
                if kind != b"Q":
                    break  # Terminate
                column = b"?column?\0" + struct.pack("!IhIhih", 0, 0, 23, 4, -1, 0)
                out = pg_message(b"T", struct.pack("!h", 1) + column)
                rows = 0 if b"false" in sql else 1
                for _ in range(rows):
                    out += pg_message(b"D", struct.pack("!hi", 1, 1) + b"1")
                out += pg_message(b"C", b"SELECT %d\0" % rows) + pg_message(b"Z", b"I")
                writer.write(out)
                await writer.drain()
        writer.close()

    def mysql_greeting() -> bytes:
        p = b"\x0a8.0.0-fake\0" + struct.pack("<I", 1) + b"abcdefgh\0"
        p += struct.pack("<H", 0xF7FF) + b"\x21" + struct.pack("<H", 2)
        p += struct.pack("<H", 0x81FF) + bytes([21]) + b"\0" * 10
        p += b"ijklmnopqrst\0" + b"mysql_native_password\0"
        return len(p).to_bytes(3, "little") + b"\0" + p

    async def mysql_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            writer.write(mysql_greeting())
            await writer.drain()
            head = await reader.readexactly(4)
            await reader.readexactly(int.from_bytes(head[:3], "little"))
            ok = b"\x00\x00\x00\x02\x00\x00\x00"
            writer.write(len(ok).to_bytes(3, "little") + bytes([head[3] + 1]) + ok)
            await writer.drain()
            await reader.read(100)
        writer.close()

    async def redis_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(4096):
                parts = data.split(b"\r\n")  # one command per write: waitfor waits for replies
                name, args = parts[2].upper(), parts[4::2]
                if name == b"PING":
                    writer.write(b"+PONG\r\n")
                elif name == b"EXISTS":
                    writer.write(b":1\r\n" if args[0] == b"present" else b":0\r\n")
                elif name in (b"AUTH", b"SELECT"):
                    writer.write(b"+OK\r\n")
                else:
                    writer.write(b"-ERR unknown command\r\n")
                await writer.drain()
        writer.close()

    async def amqp_fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readexactly(8)
            payload = struct.pack("!HH", 10, 10) + b"\x00\x09" + b"\0\0\0\0"
            payload += b"\0\0\0\x05PLAIN" + b"\0\0\0\x05en_US"
            writer.write(struct.pack("!BHI", 1, 0, len(payload)) + payload + b"\xce")
            await writer.drain()
            await reader.read(100)
        writer.close()

    class DnsFake(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            query = dns.message.from_wire(data)
            answer = dns.message.make_response(query)
            question = query.question[0]
            if str(question.name).lower() != "ready.example.":
                answer.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                answer.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A", "10.0.0.1"))
            self.transport.sendto(answer.to_wire(), addr)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: dict[str, object] = {"ca": ca_path}
        servers = []
        for name, handler, tls in (
            ("tcp", tcp_fake, None),
            ("http", http_fake, None),
            ("https", http_fake, server_tls),
            ("postgres", postgres_fake, None),
            ("mysql", mysql_fake, None),
            ("redis", redis_fake, None),
            ("amqp", amqp_fake, None),
        ):
            server = await asyncio.start_server(handler, HOST, 0, ssl=tls)
            servers.append(server)
            ends[name] = server.sockets[0].getsockname()[1]
        ends["unix"] = os.path.join(workdir, "ready.sock")
        servers.append(await asyncio.start_unix_server(tcp_fake, ends["unix"]))
        transport, _ = await loop.create_datagram_endpoint(DnsFake, local_addr=(HOST, 0))
        ends["dns"] = transport.get_extra_info("sockname")[1]
        ends["file"] = ready_file

        grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, grpc_server)
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        ends["grpc"] = grpc_server.add_insecure_port(f"{HOST}:0")
        chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        credentials = grpc.ssl_server_credentials([(leaf.private_key_pem.bytes(), chain)])
        ends["grpcs"] = grpc_server.add_secure_port(f"{HOST}:0", credentials)
        grpc_server.start()

        kube_dir = Path(workdir) / "kube"
        kube_dir.mkdir()
        kube = KubeAPI(kube_dir)
        kube.__enter__()
        try:
            job = recorded_object("jobs/get-complete.json")
            kube.put("jobs", job)
            ends["job"] = job["metadata"]["name"]
            ends["kubeconfig"] = str(kube.kubeconfig)

            eof = asyncio.Event()

            def on_stdin() -> None:
                if not os.read(0, 4096):
                    eof.set()

            loop.add_reader(0, on_stdin)
            sys.stdout.write(json.dumps(ends) + "\n")
            sys.stdout.flush()
            await eof.wait()
            loop.remove_reader(0)
        finally:
            kube.__exit__(None, None, None)
            grpc_server.stop(None)
            transport.close()
            for server in servers:
                server.close()
                await server.wait_closed()

    parent = os.getppid()
    asyncio.run(main())
    if os.getppid() != parent:  # the benchmark was killed: its finally never ran
        time.sleep(1.0)  # the spawner starts nothing more once orphaned; let it see so
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


class Servers:
    """The server process: started, its endpoints read, stopped (stdin EOF, then kill)."""

    def __init__(self, workdir: str) -> None:
        self.log_path = os.path.join(workdir, "servers.log")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve", workdir],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SERVER_START_S)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("{"):
            self.stop()
            raise RuntimeError(f"the servers did not start: {line!r} {self.log_tail()}")
        self.ends: dict = json.loads(line)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as fh:
            return fh.read()[-3000:].decode(errors="replace").strip()
        return ""

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- the cases --------------------------------------------------------------------------


class Case:
    def __init__(self, kind: str, ready: str, not_ready: str, how: str,
                 flags: tuple[str, ...] = (), tool: str = "waitfor") -> None:  # fmt: skip
        self.kind, self.ready, self.not_ready, self.how = kind, ready, not_ready, how
        self.flags, self.tool = flags, tool
        self.rss: dict[str, list[float]] = {"ready": [], "not ready": []}
        self.failures: list[str] = []

    def argv(self, state: str, not_ready_timeout: str = NOT_READY_TIMEOUT) -> list[str]:
        target = self.ready if state == "ready" else self.not_ready
        timeout = READY_TIMEOUT if state == "ready" else not_ready_timeout
        if self.tool == "wait-for-it":
            return [Tools.wait_for_it, "-s", target, "-t", timeout.removesuffix("s")]
        return [Tools.waitfor, "--timeout", timeout, *self.flags, target]

    def peak(self, state: str) -> float | None:
        return max(self.rss[state]) if self.rss[state] else None


def make_cases(ends: dict, closed: int, workdir: str) -> list[Case]:
    h, ca = HOST, ends["ca"]
    dns_server = f"server={h}:{ends['dns']}&type=A"
    kube = ("--kubeconfig", ends["kubeconfig"])
    refused = "closed port"
    # fmt: off
    return [
        Case("tcp", f"tcp://{h}:{ends['tcp']}", f"tcp://{h}:{closed}", refused),
        Case("http", f"http://{h}:{ends['http']}/", f"http://{h}:{closed}/", refused),
        Case("https", f"https://{h}:{ends['https']}/#ca={ca}", f"https://{h}:{closed}/#ca={ca}",
             refused),
        Case("dns", f"dns://ready.example#{dns_server}", f"dns://missing.example#{dns_server}",
             "NXDOMAIN"),
        Case("file", f"file://{ends['file']}", f"file://{workdir}/missing.file", "missing file"),
        Case("unix", f"unix://{ends['unix']}", f"unix://{workdir}/missing.sock",
             "missing socket"),
        Case("postgres", f"postgres://{h}:{ends['postgres']}", f"postgres://{h}:{closed}",
             refused),
        Case("postgres #query", f"postgres://bench@{h}:{ends['postgres']}/bench#query=SELECT%201",
             f"postgres://bench@{h}:{ends['postgres']}/bench#query=SELECT%201%20WHERE%20false",
             "no row"),
        Case("mysql", f"mysql://{h}:{ends['mysql']}", f"mysql://{h}:{closed}", refused),
        Case("redis", f"redis://{h}:{ends['redis']}", f"redis://{h}:{closed}", refused),
        Case("redis #key", f"redis://{h}:{ends['redis']}#key=present",
             f"redis://{h}:{ends['redis']}#key=absent", "missing key"),
        Case("amqp", f"amqp://{h}:{ends['amqp']}", f"amqp://{h}:{closed}", refused),
        Case("grpc", f"grpc://{h}:{ends['grpc']}", f"grpc://{h}:{closed}", refused),
        Case("grpcs", f"grpcs://{h}:{ends['grpcs']}#ca={ca}", f"grpcs://{h}:{closed}#ca={ca}",
             refused),
        Case("k8s", f"k8s://job/{ends['job']}", "k8s://job/no-such-job", "missing job", kube),
        Case("exec", "exec:true", "exec:false", "exits 1"),
        Case("wait-for-it (tcp)", f"{h}:{ends['tcp']}", f"{h}:{closed}", refused,
             tool="wait-for-it"),
    ]
    # fmt: on


# What each kind imports beyond the runner: its check module and the libraries it loads
# (some only at its first probe, as agents.waitfor.kube).
KIND_MODULES = {
    "tcp": ["agents.waitfor.checks.tcp"],
    "http": ["agents.waitfor.checks.http"],
    "https": ["agents.waitfor.checks.http"],
    "dns": ["agents.waitfor.checks.dns", "agents.waitfor.resolver"],
    "file": ["agents.waitfor.checks.files"],
    "unix": ["agents.waitfor.checks.files"],
    "postgres": ["agents.waitfor.checks.postgres"],
    "postgres #query": ["agents.waitfor.checks.postgres"],
    "mysql": ["agents.waitfor.checks.mysql"],
    "redis": ["agents.waitfor.checks.redis"],
    "redis #key": ["agents.waitfor.checks.redis"],
    "amqp": ["agents.waitfor.checks.amqp"],
    "grpc": ["agents.waitfor.checks.grpc_health", "agents.waitfor.checks._h2"],
    "grpcs": ["agents.waitfor.checks.grpc_health", "agents.waitfor.checks._h2"],
    "k8s": ["agents.waitfor.checks.k8s", "agents.waitfor.kube"],
    "exec": ["agents.waitfor.checks.exec"],
}
BASE_STEPS = [
    ("(b) + agents.waitfor.cli", ["agents.waitfor.cli"]),
    ("(c) + asyncio: its ssl (OpenSSL)", ["ssl"]),
    ("(c) + asyncio: the rest", ["asyncio"]),
    ("    + agents.waitfor.runner", ["agents.waitfor.runner"]),
]

# --- the import ladder (a fresh interpreter each; prints "label<TAB>VmRSS<TAB>modules") --

LADDER = r"""
import importlib, sys
def rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
out = [("(a) interpreter", rss(), len(sys.modules))]
for step in sys.argv[1:]:
    label, _, names = step.partition("=")
    for name in names.split(","):
        importlib.import_module(name)
    out.append((label, rss(), len(sys.modules)))
print("\n".join(f"{label}\t{kib}\t{mods}" for label, kib, mods in out))
"""


def ladder(steps: list[tuple[str, list[str]]], env: dict[str, str] | None, cwd: str,
           ) -> list[tuple[str, int, int]]:  # fmt: skip
    argv = [Tools.python, "-c", LADDER, *(f"{label}={','.join(m)}" for label, m in steps)]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"import ladder failed: {done.stderr.strip()[-2000:]}")
    rows = [line.split("\t") for line in done.stdout.strip().splitlines()]
    return [(label, int(kib), int(mods)) for label, kib, mods in rows]


def breakdown(runs: int, env: dict[str, str] | None, cwd: str) -> dict:
    """Median over `runs` fresh ladders of VmRSS (KiB) and module counts."""
    base: dict[str, list[tuple[int, int]]] = {}
    by_modules: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}  # (before, after, +mods)
    for _ in range(runs):
        for label, kib, mods in ladder(BASE_STEPS, env, cwd):
            base.setdefault(label, []).append((kib, mods))
        for modules in dict.fromkeys(tuple(m) for m in KIND_MODULES.values()):
            rows = ladder([*BASE_STEPS, ("kind", list(modules))], env, cwd)
            (_, before, mods_before), (_, after, mods_after) = rows[-2], rows[-1]
            by_modules.setdefault(modules, []).append((before, after, mods_after - mods_before))
    kinds = {kind: by_modules[tuple(modules)] for kind, modules in KIND_MODULES.items()}

    def med(values: list[int]) -> float:
        found = median([float(v) for v in values])
        assert found is not None
        return found

    return {
        "base": {
            label: {"rss_kib": med([k for k, _ in v]), "modules": med([m for _, m in v])}
            for label, v in base.items()
        },
        "kinds": {
            kind: {
                "before_kib": med([b for b, _, _ in v]),
                "after_kib": med([a for _, a, _ in v]),
                "added_kib": med([a - b for b, a, _ in v]),
                "added_modules": med([m for _, _, m in v]),
                "modules": KIND_MODULES[kind],
            }
            for kind, v in kinds.items()
        },
    }


# --- the run ------------------------------------------------------------------------------

CHILD_ENV: dict[str, str] | None = None  # the tools' environment; None inherits ours


def mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="counted runs per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="one counted run per case")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="tools running at once (default: the usable CPUs)",
    )
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="run the tools with this environment as is; by default they get cached "
        "bytecode (PYTHONPYCACHEPREFIX in a temp dir, PYTHONDONTWRITEBYTECODE dropped), "
        "as a pip-installed image has",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="measure the dev venv's waitfor and wait-for-it (an editable install: its "
        "hook costs both ~2 MiB); by default a copy is installed from wheels first (~10 s)",
    )
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    if args.quick:
        args.runs = 1
    if args.runs < 1 or args.jobs < 1:
        parser.error("--runs and --jobs must be at least 1")
    for path in (WAITFOR, WAIT_FOR_IT) if args.in_place else ():
        if not os.access(path, os.X_OK):
            print(f"not found or not executable: {path}", file=sys.stderr)
            return 2

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the finally below stops what we started

    signal.signal(signal.SIGTERM, stop)
    global CHILD_ENV
    workdir = tempfile.mkdtemp(prefix="waitfor-memory-bench-")
    if not args.inherit_env:
        # .pyc files as a pip-installed image has them, kept out of the tree (see
        # waitfor_bench.py: PYTHONDONTWRITEBYTECODE would recompile waitfor at each start).
        CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pyc")
    servers = spawner = closed = None
    try:
        if not args.in_place:
            print("waitfor_memory_bench: installing a copy from wheels", flush=True)
            install_copy(workdir)
        servers = Servers(workdir)
        closed = bound_socket()  # bound, never listening: connects are refused
        spawner = Spawner(CHILD_ENV, workdir)
        return bench(args, servers, spawner, closed.getsockname()[1], workdir)
    except RuntimeError as exc:
        print(f"waitfor_memory_bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("waitfor_memory_bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if spawner is not None:
            spawner.close()
        if servers is not None:
            servers.stop()
        if closed is not None:
            closed.close()
        shutil.rmtree(workdir, ignore_errors=True)


def bench(args: argparse.Namespace, servers: Servers, spawner: Spawner, closed: int,
          workdir: str) -> int:  # fmt: skip
    info = machine()
    cases = make_cases(servers.ends, closed, workdir)
    states = ("ready", "not ready")
    # a ready run ~0.3 s, a not-ready one its --timeout + 0.2 s; the ladders ~1 s a round
    estimate = len(cases) * (args.runs * 2.5 + 1.5) / args.jobs + args.runs
    print(
        f"waitfor_memory_bench: {len(cases)} cases x ready / not ready, 1 warm-up + "
        f"{args.runs} counted round(s), {args.jobs} at a time, about {estimate:.0f} s",
        flush=True,
    )
    started = time.monotonic()
    limit = {s: float((READY_TIMEOUT if s == "ready" else NOT_READY_TIMEOUT)[:-1]) + CHILD_LIMIT_S
             for s in states}  # fmt: skip

    brief = WARM_UP_NOT_READY_TIMEOUT
    warm = [Run(c, s, c.argv(s, brief), limit[s]) for c in cases for s in states]
    spawner.run(warm, args.jobs)
    print(f"  warm-up done in {time.monotonic() - started:.1f} s", flush=True)
    for i in range(args.runs):
        runs = [Run(c, s, c.argv(s), limit[s]) for c in cases for s in states]
        shift = (i * 7) % len(runs)  # a different neighbour for each run every round
        spawner.run(runs[shift:] + runs[:shift], args.jobs)
        for run in runs:
            if run.ok() and run.maxrss_kib is not None:
                run.case.rss[run.state].append(float(run.maxrss_kib))
            else:
                run.case.failures.append(f"{run.state}: {run.why()}")
        print(f"  round {i + 1} done in {time.monotonic() - started:.1f} s", flush=True)
    floor = spawner.hwm_kib
    parts = breakdown(args.runs, CHILD_ENV, workdir)
    print(f"  import ladders done in {time.monotonic() - started:.1f} s", flush=True)

    # ---- report -------------------------------------------------------------------------
    peer = cases[-1]
    peer_peak = max((p for s in states if (p := peer.peak(s)) is not None), default=None)
    rows = []
    for case in cases:
        ready, waiting = case.peak("ready"), case.peak("not ready")
        peak = None if ready is None or waiting is None else max(ready, waiting)
        is_peer = case is peer
        rows.append({
            "kind": case.kind,
            "ready MiB": fmt_mib(ready, floor),
            "not ready as": case.how,
            "not-ready MiB": fmt_mib(waiting, floor),
            "x wait-for-it": "n/a" if peak is None or not peer_peak else f"{peak / peer_peak:.2f}x",
            "goal": f"<= {GOAL_RSS_MIB:.0f} MiB",
            "result": "(peer)" if is_peer else verdict(None if peak is None else
                                                       peak / 1024 <= GOAL_RSS_MIB),
            "_peak_kib": peak,
        })  # fmt: skip

    def short(text: str) -> str:
        return text.replace(workdir, "$TMP")

    print()
    print(
        f"machine: nproc {info['nproc']} (usable {info['usable_cpus']}), "
        f"CPU {info['cpu_model']}, {info['kernel']}, Python {info['python']}, "
        f"loadavg {' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"  # type: ignore[union-attr]
    )
    print(f"source: {source_state()}")
    print(f"tools from: {Tools.how}")
    print(f"waitfor:     {short(Tools.waitfor)} --timeout {READY_TIMEOUT} (ready) / "
          f"{NOT_READY_TIMEOUT} (not ready) [flags] TARGET; shebang "
          f"{short(shebang(Tools.waitfor))}")  # fmt: skip
    print(f"wait-for-it: {short(Tools.wait_for_it)} -s HOST:PORT -t 10 / 2; shebang "
          f"{short(shebang(Tools.wait_for_it))}")  # fmt: skip
    print(f"bytecode: {bytecode_note(CHILD_ENV, 'a warm-up round')}")
    if args.in_place:
        print(f"editable-install hooks: {editable_note()}")
    print(
        f"peak RSS = max of {args.runs} run(s) of ru_maxrss (wait4 on the tool's pid), "
        f"{args.jobs} at a time; floor (the spawner's VmHWM) {floor / 1024:.1f} MiB"
    )
    print(f"targets ($TMP = the private temp dir; port {closed} is bound, never listening):")
    width = max(len(c.kind) for c in cases)
    for case in cases:
        flags = " ".join(case.flags)
        flags = short(flags) + " " if flags else ""
        print(f"  {case.kind.ljust(width)}  {flags}{short(case.ready)}")
        print(f"  {''.ljust(width)}  not ready: {short(case.not_ready)}")
    print()
    headers = ["kind", "ready MiB", "not ready as", "not-ready MiB", "x wait-for-it", "goal",
               "result"]  # fmt: skip
    print_table(rows, headers)

    print()
    print("where it goes: VmRSS after importing, each ladder in a fresh interpreter "
          f"(median of {args.runs})")  # fmt: skip
    base_rows, prev = [], None
    for label, row in parts["base"].items():
        base_rows.append({
            "step": label,
            "RSS MiB": mib(row["rss_kib"]),
            "+ MiB": "" if prev is None else f"+{(row['rss_kib'] - prev['rss_kib']) / 1024:.1f}",
            "modules": f"{row['modules']:.0f}",
        })  # fmt: skip
        prev = row
    print_table(base_rows, ["step", "RSS MiB", "+ MiB", "modules"])
    print()
    kind_rows = []
    for case in cases:
        part = parts["kinds"].get(case.kind)
        if part is None:
            continue
        waiting = case.peak("not ready")
        kind_rows.append({
            "(d) + kind": case.kind,
            "imports": ", ".join(m.removeprefix("agents.waitfor.") for m in part["modules"]),
            "+ MiB": f"+{part['added_kib'] / 1024:.1f}",
            "+ modules": f"{part['added_modules']:.0f}",
            "RSS after MiB": mib(part["after_kib"]),
            "not-ready peak": mib(waiting),
            "run-time MiB": "n/a" if waiting is None else
                            f"{(waiting - part['after_kib']) / 1024:+.1f}",
        })  # fmt: skip
    print_table(kind_rows, ["(d) + kind", "imports", "+ MiB", "+ modules", "RSS after MiB",
                            "not-ready peak", "run-time MiB"])  # fmt: skip
    print(
        "run-time = not-ready peak - RSS after imports: the event loop, sockets, TLS contexts, "
        "threads, buffers\n(a few tenths either way are noise: waitfor imports its check "
        "before asyncio, the ladder after).\nA ready tcp, file or unix target is confirmed by "
        "a blocking first look: neither asyncio nor the runner is imported."
    )

    failures = [f"{c.kind} {f}" for c in cases for f in c.failures]
    if failures:
        print("\nfailed runs (not counted):")
        for failure in failures:
            print(f"  {short(failure)}")
    unmeasured = [r["kind"] for r in rows if r["_peak_kib"] is None]
    over = [f"{r['kind']} ({r['_peak_kib'] / 1024:.1f})" for r in rows
            if r["_peak_kib"] is not None and r["result"] == "MISS"]  # fmt: skip
    print()
    if over:
        print(f"over {GOAL_RSS_MIB:.0f} MiB: {', '.join(over)}")
    else:
        print(f"every measured kind within {GOAL_RSS_MIB:.0f} MiB")
    if unmeasured:
        print(f"not measured (every run of a state failed): {', '.join(unmeasured)}")

    if args.json:
        doc = {
            "machine": info,
            "source": source_state(),
            "runs": args.runs,
            "jobs": args.jobs,
            "rss_floor_kib": floor,
            "bytecode": bytecode_note(CHILD_ENV, "a warm-up round"),
            "tools_from": Tools.how,
            "editable_hooks": editable_note() if args.in_place else "none",
            "goal_mib": GOAL_RSS_MIB,
            "cases": [
                {
                    "kind": c.kind,
                    "tool": c.tool,
                    "commands": {s: [short(a) for a in c.argv(s)] for s in states},
                    "not_ready_as": c.how,
                    "peak_rss_kib": {s: c.peak(s) for s in states},
                    "samples_kib": c.rss,
                    "failures": [short(f) for f in c.failures],
                }
                for c in cases
            ],
            "breakdown": parts,
            "table": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"\nwrote {args.json}")
    return 1 if unmeasured else 0


if __name__ == "__main__":
    sys.exit(main())
