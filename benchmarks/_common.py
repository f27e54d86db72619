"""Plumbing the logship benchmark's scenarios share: children, the sink's client, figures.

Children die with this process (PR_SET_PDEATHSIG), are polled rather than waited on
blindly, and are reaped with wait4 so that their CPU time is theirs alone. Linux only.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "_sink.py")
HOST = "127.0.0.1"
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
        self.hwm_kib = 0  # VmHWM: peak RSS since exec
        self.rss_kib = 0  # VmRSS at the last sample
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
        if self.t_exit is None:
            self.t_exit = time.monotonic()
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code  # reaped here: Popen must not wait again
        self.rusage_cpu_s = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
        self.rusage_maxrss_kib = usage.ru_maxrss  # type: ignore[attr-defined]
        self._log.close()
        with contextlib.suppress(ValueError):
            CHILDREN.remove(self)

    def sample(self) -> None:
        """Read VmHWM (the process's own peak RSS since exec) and VmRSS while it lives."""
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                elif line.startswith("VmRSS:"):
                    self.rss_kib = int(line.split()[1])
                    break

    def cpu_now(self) -> float | None:
        """utime+stime so far of all its threads, from /proc (clock ticks)."""
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def context_switches(self) -> int | None:
        """Voluntary + involuntary context switches of its live threads (wake-ups, roughly)."""
        total = 0
        for status in glob.glob(f"/proc/{self.pid}/task/*/status"):
            with contextlib.suppress(OSError, ValueError), open(status) as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt")):
                        total += int(line.split()[1])
        return total or None

    def wait(self, timeout: float, every: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            self.sample()
            time.sleep(every)
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait for the exit on a pidfd: t_exit is the moment it ended, not a poll later."""
        if self.exit_code is not None:
            return True
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:
            return self.wait(timeout, every=0.002)
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        if not ready:
            return False
        self.t_exit = time.monotonic()
        _, status, usage = os.wait4(self.pid, 0)
        self._reap(status, usage)
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


def sh(argv: list[str], cwd: str | None = None, timeout: float = 180.0) -> tuple[int, str]:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: no answer in {timeout:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()


# --- the sink (benchmarks/_sink.py, in its own process) ---------------------------------


class Sink:
    def __init__(self, log_path: str, env: dict[str, str]) -> None:
        self.child = Child(
            [sys.executable, SINK, "--host", HOST, "--port", "0", "--exit-on-stdin-eof"],
            log_path=log_path,
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
        self.port, self.control_port = (int(x) for x in line.split()[1:3])
        self.url = f"http://{HOST}:{self.port}"
        self._conn: http.client.HTTPConnection | None = None

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.control_port, timeout=30)
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

    def reset(self, target: int, *, live: bool = False, record: bool = False) -> None:
        self._call("POST", "/_bench/reset", {"target": target, "live": live, "record": record})

    def stats(
        self,
        *,
        latency: bool = False,
        expect: int | None = None,
        seq: int | None = None,
    ) -> dict:
        query = []
        if latency:
            query.append("latency=1")
        if expect is not None:
            query.append(f"record=1&expect={expect}")
        if seq is not None:
            query.append(f"seq={seq}")
        return self._call("GET", "/_bench/stats" + ("?" + "&".join(query) if query else ""))

    def down(self, mode: str) -> float:
        """The data port goes away (mode refuse) or answers 503; returns when (monotonic)."""
        return self._call("POST", "/_bench/outage", {"down": True, "mode": mode})["t"]

    def up(self, prefix_target: int) -> float:
        """Back on the same port; the sink notes when seqs below prefix_target are stored."""
        body = {"down": False, "prefix_target": prefix_target}
        return self._call("POST", "/_bench/outage", body)["t"]

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.child.stop(5.0)


# --- figures ----------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: list[float]) -> float | None:
    return quantile(values, 0.5)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[dict], headers: list[str]) -> None:
    table = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip())


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
    code, head = sh(["git", "-C", repo, "log", "-1", "--format=%h %cs"], timeout=10)
    if code != 0:
        return "not a git checkout"
    code, dirty = sh(
        ["git", "--no-optional-locks", "-C", repo, "status", "--porcelain", "--", "agents"],
        timeout=10,
    )
    changed = len(dirty.splitlines()) if code == 0 else 0
    return f"commit {head}" + (f" + {changed} changed file(s) in agents/" if changed else "")
