#!/usr/bin/env python3
"""waitfor vs wait-for-it on loopback TCP: exit time, detection latency, peak RSS.

Both tools are the console scripts installed next to the running interpreter
(`.venv/bin/waitfor`, `.venv/bin/wait-for-it`), started directly (no shell), with
stdout and stderr to /dev/null. Runs are interleaved (A, B, A, B, order rotated every
round) so machine noise lands on every tool alike.

1. already-up exit: a listener is open before the tool starts; time from just before
   spawning to the child's exit (pidfd wake-up).
2. detection latency: the port is bound but not listening (connects are refused);
   at a random moment 1-2 s after the spawn the socket starts listening; latency =
   exit time - the moment listen() returned. Every tool gets the same moment in a round.
3. peak RSS: ru_maxrss from os.wait4() on the tool's own pid (the console scripts are
   exec'd by the kernel through their shebang, so that pid is the Python process).
   Linux caveat: a child's ru_maxrss is never below this benchmark's own VmHWM at spawn
   time (fork/vfork + exec carries the parent's high-water mark into the child), so a
   figure at or below that floor is printed as "<=floor"; figures above it are exact.

Goals (from the issue), printed as PASS/MISS: already-up exit median <= 0.6x
wait-for-it's; median detection latency <= 60 ms; peak RSS <= 25 MiB.

By default the tools run with cached bytecode (a private PYTHONPYCACHEPREFIX, with
PYTHONDONTWRITEBYTECODE dropped), as in a pip-installed image; `--inherit-env` runs them
with this environment unchanged. Nothing is written to the source tree. Linux only.

Usage: .venv/bin/python benchmarks/waitfor_bench.py [--quick] [--runs N] [--json FILE]
       (default about 80 s; --quick about 25 s; --budget caps the total)
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from _common import median, quantile  # benchmarks/, this script's own directory

BIN_DIR = os.path.dirname(sys.executable)  # not resolved: .venv/bin/python is a symlink
WAITFOR = os.path.join(BIN_DIR, "waitfor")
WAIT_FOR_IT = os.path.join(BIN_DIR, "wait-for-it")
HOST = "127.0.0.1"
TOOL_TIMEOUT_S = 10  # passed to both tools, so a lost listener cannot hang a run
CHILD_LIMIT_S = 15.0  # the benchmark's own hard limit on one child, past its expected exit

GOAL_UP_RATIO = 0.6
GOAL_DETECT_MS = 60.0
GOAL_RSS_MIB = 25.0


class Variant:
    def __init__(self, key: str, tool: str, flags: tuple[str, ...] = ()) -> None:
        self.key, self.tool, self.flags = key, tool, flags

    @property
    def label(self) -> str:
        return " ".join(self.flags) or "(defaults)"

    def argv(self, port: int | str) -> list[str]:
        if self.tool == "waitfor":
            return [
                WAITFOR,
                "--timeout",
                f"{TOOL_TIMEOUT_S}s",
                *self.flags,
                f"tcp://{HOST}:{port}",
            ]
        return [WAIT_FOR_IT, "-s", f"{HOST}:{port}", "-t", str(TOOL_TIMEOUT_S), *self.flags]


WF_DEFAULT = Variant("waitfor", "waitfor")
WF_100 = Variant("waitfor --interval 100ms", "waitfor", ("--interval", "100ms"))
WF_50 = Variant("waitfor --interval 50ms", "waitfor", ("--interval", "50ms"))
WFI = Variant("wait-for-it", "wait-for-it")


class Samples:
    def __init__(self) -> None:
        self.values: list[float] = []  # seconds (time) or KiB (RSS)
        self.failures: list[str] = []


# Environment for the tools; None inherits ours. See --inherit-env.
CHILD_ENV: dict[str, str] | None = None


class Child:
    """One tool process, waited for with a pidfd (no polling) and reaped with wait4."""

    def __init__(self, argv: list[str]) -> None:
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=CHILD_ENV,
        )
        self.pid = self.proc.pid
        self.t_exit: float | None = None
        self.exit_code: int | None = None
        self.maxrss_kib: int | None = None
        self._pidfd: int | None = None
        self._poller: select.poll | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # old kernel or not Linux: wait() polls
            return
        self._poller = select.poll()
        self._poller.register(self._pidfd, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """Block until the child exits (→ True, reaped) or `timeout` seconds pass (→ False)."""
        if self.exit_code is not None:
            return True
        if self._poller is not None:
            if not self._poller.poll(max(0.0, timeout) * 1000.0):
                return False
            self.t_exit = time.perf_counter()
            self._reap(os.wait4(self.pid, 0))
            return True
        deadline = time.perf_counter() + timeout
        while True:  # no pidfd (not Linux): poll every 0.5 ms
            result = os.wait4(self.pid, os.WNOHANG)
            if result[0]:
                self.t_exit = time.perf_counter()
                self._reap(result)
                return True
            if time.perf_counter() >= deadline:
                return False
            time.sleep(0.0005)

    def _reap(self, result: tuple[int, int, resource.struct_rusage]) -> None:
        _, status, rusage = result
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code  # reaped here; Popen must not wait again
        self.maxrss_kib = rusage.ru_maxrss  # KiB on Linux
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def kill(self) -> None:
        if self.exit_code is None:
            self.proc.kill()
            self.wait(5.0)

    def exe(self) -> str:
        try:
            return os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return "?"


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port, not yet listening (connects get refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    return sock


def drain(listener: socket.socket) -> None:
    """Accept and close whatever the tools left in the accept queue, so it never fills."""
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.close()


def own_hwm_kib() -> int:
    """This process's VmHWM: the floor under any child's ru_maxrss on Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rotated(items: list[Variant], by: int) -> list[Variant]:
    by %= len(items)
    return items[by:] + items[:by]


def run_up_once(variant: Variant, listener: socket.socket, port: int, out: dict) -> None:
    child = Child(variant.argv(port))
    if not child.wait(TOOL_TIMEOUT_S + CHILD_LIMIT_S):
        child.kill()
        out["up"][variant.key].failures.append("killed: no exit")
        return
    drain(listener)
    assert child.t_exit is not None
    assert child.maxrss_kib is not None
    if child.exit_code != 0:
        out["up"][variant.key].failures.append(f"exit {child.exit_code}")
        return
    out["up"][variant.key].values.append(child.t_exit - child.t_start)
    out["rss"][variant.key].values.append(float(child.maxrss_kib))


def run_detect_once(variant: Variant, delay: float, out: dict) -> None:
    sock = bound_socket()
    try:
        port = sock.getsockname()[1]
        child = Child(variant.argv(port))
        if child.wait(child.t_start + delay - time.perf_counter()):
            out["detect"][variant.key].failures.append(
                f"exited ({child.exit_code}) before the listener opened"
            )
            return
        out["exe"].setdefault(variant.key, child.exe())
        sock.listen(64)
        t_listen = time.perf_counter()
        if not child.wait(CHILD_LIMIT_S):
            child.kill()
            out["detect"][variant.key].failures.append("killed: no exit")
            return
        assert child.t_exit is not None
        if child.exit_code != 0:
            out["detect"][variant.key].failures.append(f"exit {child.exit_code}")
            return
        out["detect"][variant.key].values.append(child.t_exit - t_listen)
        if child.maxrss_kib is not None:
            out["rss_wait"][variant.key].values.append(float(child.maxrss_kib))
    finally:
        sock.close()


def p90(values: list[float]) -> float | None:
    return quantile(values, 0.9)


def machine() -> dict[str, object]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        import platform

        model = platform.processor() or "?"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": affinity,
        "cpu_model": model,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "kernel": f"{os.uname().sysname} {os.uname().release}",
        "loadavg_at_start": os.getloadavg(),
    }


def shebang(path: str) -> str:
    with open(path, "rb") as fh:
        return fh.readline().decode(errors="replace").strip()


def fmt_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f}"


def fmt_mib(kib: float | None, floor_kib: int) -> str:
    if kib is None:
        return "n/a"
    if kib <= floor_kib:
        return f"<={floor_kib / 1024:.1f}"
    return f"{kib / 1024:.1f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 already-up, 3 detection runs")
    parser.add_argument("--runs", type=int, help="runs per tool for every scenario")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--seed", type=int, help="seed for the listener delays")
    parser.add_argument(
        "--budget",
        type=float,
        default=240.0,
        metavar="SECONDS",
        help="stop starting new rounds after this long (default 240)",
    )
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="run the tools with this environment as is; by default they get cached "
        "bytecode (PYTHONPYCACHEPREFIX in a temp dir, PYTHONDONTWRITEBYTECODE dropped), "
        "as a pip-installed image has",
    )
    args = parser.parse_args(argv)
    n_up, n_detect = (5, 3) if args.quick else (15, 10)
    if args.runs is not None:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        n_up = n_detect = args.runs
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)

    for path in (WAITFOR, WAIT_FOR_IT):
        if not os.access(path, os.X_OK):
            print(f"not found or not executable: {path}", file=sys.stderr)
            return 2

    global CHILD_ENV
    pyc_dir = None
    if not args.inherit_env:
        # Without this, PYTHONDONTWRITEBYTECODE=1 (set in many dev shells and images) makes
        # waitfor recompile its own modules at every start while wait-for-it, installed
        # by pip with .pyc files, does not. The prefix keeps .pyc files out of the tree.
        pyc_dir = tempfile.mkdtemp(prefix="waitfor-bench-pyc-")
        CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = pyc_dir
    try:
        return bench(args, n_up, n_detect, seed)
    finally:
        if pyc_dir is not None:
            shutil.rmtree(pyc_dir, ignore_errors=True)


def bytecode_note(child_env: dict[str, str] | None, warm_up: str = "the warm-up runs") -> str:
    """How the tools got their bytecode: `child_env` is their environment (None: ours)."""
    if child_env is not None:
        return f"cached (.pyc in a private PYTHONPYCACHEPREFIX, written by {warm_up})"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "inherited, PYTHONDONTWRITEBYTECODE set: uncached modules compile at every start"
    return "inherited"


def editable_note() -> str:
    lib = os.path.join(BIN_DIR, os.pardir, "lib", "python*", "site-packages", "__editable__*")
    found = [os.path.basename(p) for p in glob.glob(lib) if p.endswith(".pth")]
    if not found:
        return "none"
    return ", ".join(found) + " (site runs it at every Python start, both tools pay it)"


def bench(args: argparse.Namespace, n_up: int, n_detect: int, seed: int) -> int:
    rng = random.Random(seed)
    info = machine()
    up_variants = [WF_DEFAULT, WFI]
    detect_variants = [WF_DEFAULT, WF_100, WF_50, WFI]
    out: dict = {
        "up": {v.key: Samples() for v in up_variants},
        "rss": {v.key: Samples() for v in up_variants},
        "detect": {v.key: Samples() for v in detect_variants},
        "rss_wait": {v.key: Samples() for v in detect_variants},
        "exe": {},
    }
    estimate = n_up * 2 * 0.3 + n_detect * len(detect_variants) * 1.75
    print(
        f"waitfor_bench: {n_up} already-up runs, {n_detect} detection runs per tool, "
        f"seed {seed}, about {estimate:.0f} s (budget {args.budget:.0f} s)",
        flush=True,
    )
    started = time.monotonic()
    budget_hit = False

    listener = bound_socket()
    listener.listen(128)
    listener.setblocking(False)
    up_port = listener.getsockname()[1]
    try:
        for variant in up_variants * 2:  # warm-up: page cache, .pyc files; not counted
            warm = Samples()
            scratch = {"up": {variant.key: warm}, "rss": {variant.key: Samples()}}
            run_up_once(variant, listener, up_port, scratch)
            if warm.failures:
                print(f"warm-up of {variant.key} failed: {warm.failures[0]}", file=sys.stderr)
                return 1
        rss_floor_kib = own_hwm_kib()
        for i in range(n_up):
            if time.monotonic() - started > args.budget:
                budget_hit = True
                break
            for variant in rotated(up_variants, i):
                run_up_once(variant, listener, up_port, out)
        rss_floor_kib = max(rss_floor_kib, own_hwm_kib())
    finally:
        listener.close()
    print(f"  already-up done in {time.monotonic() - started:.1f} s", flush=True)

    delays: list[float] = []
    for i in range(n_detect):
        if time.monotonic() - started > args.budget:
            budget_hit = True
            break
        delay = rng.uniform(1.0, 2.0)  # one moment per round, shared by every tool
        delays.append(delay)
        for variant in rotated(detect_variants, i):
            run_detect_once(variant, delay, out)
    print(f"  detection done in {time.monotonic() - started:.1f} s", flush=True)

    # ---- report -------------------------------------------------------------------
    up_wf, up_wfi = out["up"][WF_DEFAULT.key].values, out["up"][WFI.key].values
    det_wfi = out["detect"][WFI.key].values
    rss_wf, rss_wfi = out["rss"][WF_DEFAULT.key].values, out["rss"][WFI.key].values

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    rows: list[dict[str, object]] = []
    r = ratio(median(up_wf), median(up_wfi))
    rows.append(
        {
            "scenario": "already-up exit, ms (med / p90)",
            "flags": WF_DEFAULT.label,
            "waitfor": f"{fmt_ms(median(up_wf))} / {fmt_ms(p90(up_wf))}",
            "wait-for-it": f"{fmt_ms(median(up_wfi))} / {fmt_ms(p90(up_wfi))}",
            "ratio": r,
            "goal": f"<= {GOAL_UP_RATIO:.2f}x wait-for-it",
            "result": verdict(None if r is None else r <= GOAL_UP_RATIO),
        }
    )
    for variant in (WF_DEFAULT, WF_100, WF_50):
        vals = out["detect"][variant.key].values
        med = median(vals)
        rows.append(
            {
                "scenario": "detection latency, ms (med / p90)",
                "flags": variant.label,
                "waitfor": f"{fmt_ms(med)} / {fmt_ms(p90(vals))}",
                "wait-for-it": f"{fmt_ms(median(det_wfi))} / {fmt_ms(p90(det_wfi))}",
                "ratio": ratio(med, median(det_wfi)),
                "goal": f"median <= {GOAL_DETECT_MS:.0f} ms",
                "result": verdict(None if med is None else med * 1000 <= GOAL_DETECT_MS),
            }
        )
    # Already up: waitfor's blocking first look, no event loop. Waiting: the full runner
    # (asyncio loaded), measured on the detection runs.
    rss_wait_wf = out["rss_wait"][WF_DEFAULT.key].values
    rss_wait_wfi = out["rss_wait"][WFI.key].values
    for scenario, ours, theirs in (
        ("peak RSS already up, MiB (med / max)", rss_wf, rss_wfi),
        ("peak RSS while waiting, MiB (med / max)", rss_wait_wf, rss_wait_wfi),
    ):
        peak_wf = max(ours) if ours else None
        peak_wfi = max(theirs) if theirs else None
        rows.append(
            {
                "scenario": scenario,
                "flags": WF_DEFAULT.label,
                "waitfor": f"{fmt_mib(median(ours), rss_floor_kib)} / "
                f"{fmt_mib(peak_wf, rss_floor_kib)}",
                "wait-for-it": f"{fmt_mib(median(theirs), rss_floor_kib)} / "
                f"{fmt_mib(peak_wfi, rss_floor_kib)}",
                "ratio": ratio(peak_wf, peak_wfi),
                "goal": f"max <= {GOAL_RSS_MIB:.0f} MiB",
                "result": verdict(None if peak_wf is None else peak_wf / 1024 <= GOAL_RSS_MIB),
            }
        )

    print()
    print(
        f"machine: nproc {info['nproc']} (usable {info['usable_cpus']}), "
        f"CPU {info['cpu_model']}, {info['kernel']}, Python {info['python']}, "
        f"loadavg {' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"  # type: ignore[union-attr]
    )
    print(f"waitfor:     {WAITFOR} --timeout {TOOL_TIMEOUT_S}s [flags] tcp://{HOST}:PORT")
    print(
        f"             shebang {shebang(WAITFOR)}; measured pid's exe during detection: "
        f"{out['exe'].get(WF_DEFAULT.key, '?')}"
    )
    print(f"wait-for-it: {WAIT_FOR_IT} -s {HOST}:PORT -t {TOOL_TIMEOUT_S}")
    print(
        f"             shebang {shebang(WAIT_FOR_IT)}; measured pid's exe during detection: "
        f"{out['exe'].get(WFI.key, '?')}"
    )
    counts = (
        ", ".join(f"{k} {len(s.values)}" for k, s in out["up"].items())
        + "; detection: "
        + ", ".join(f"{k} {len(s.values)}" for k, s in out["detect"].items())
    )
    print(f"runs counted: already-up: {counts}")
    print(f"bytecode: {bytecode_note(CHILD_ENV)}")
    print(f"editable-install hooks: {editable_note()}")
    print(
        f"ratio = waitfor / wait-for-it (lower is better); p90 by linear interpolation; "
        f"RSS floor (this script's VmHWM) {rss_floor_kib / 1024:.1f} MiB"
    )
    print()
    headers = ["scenario", "waitfor flags", "waitfor", "wait-for-it", "ratio", "goal", "result"]
    table = [
        [
            str(row["scenario"]),
            str(row["flags"]),
            str(row["waitfor"]),
            str(row["wait-for-it"]),
            "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x",
            str(row["goal"]),
            str(row["result"]),
        ]
        for row in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    failures = [
        f"{scenario} {key}: {', '.join(s.failures)}"
        for scenario in ("up", "detect")
        for key, s in out[scenario].items()
        if s.failures
    ]
    if failures:
        print("\nfailed runs (not counted):")
        for f in failures:
            print(f"  {f}")
    if budget_hit:
        print(f"\nbudget of {args.budget:.0f} s reached: fewer rounds than asked")
    if len(out["detect"][WF_DEFAULT.key].values) < 10:
        print(
            "\nnote: fewer than 10 detection runs; single jittered samples swing widely, "
            "so read the medians of a full run"
        )

    if args.json:
        import json

        doc = {
            "machine": info,
            "seed": seed,
            "runs_asked": {"up": n_up, "detect": n_detect},
            "budget_hit": budget_hit,
            "detect_delays_s": delays,
            "rss_floor_kib": rss_floor_kib,
            "bytecode": bytecode_note(CHILD_ENV),
            "editable_hooks": editable_note(),
            "commands": {v.key: v.argv("PORT") for v in detect_variants},
            "samples": {
                "up_exit_s": {k: s.values for k, s in out["up"].items()},
                "detect_latency_s": {k: s.values for k, s in out["detect"].items()},
                "peak_rss_kib": {k: s.values for k, s in out["rss"].items()},
                "peak_rss_waiting_kib": {k: s.values for k, s in out["rss_wait"].items()},
            },
            "failures": {
                scenario: {k: s.failures for k, s in out[scenario].items()}
                for scenario in ("up", "detect")
            },
            "summary": {
                scenario: {
                    k: {
                        "n": len(s.values),
                        "median": median(s.values),
                        "p90": p90(s.values),
                        "max": max(s.values) if s.values else None,
                    }
                    for k, s in out[scenario].items()
                }
                for scenario in ("up", "detect", "rss", "rss_wait")
            },
            "table": rows,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
