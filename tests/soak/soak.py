"""The soak (issue 17): logship for hours beside an app that logs 2,000 lines/s, through
Elasticsearch outages, restarts, kills and a shaped link, sampled every few seconds; at
the end every line must be in the index exactly once, and logship's memory, descriptors,
registry, threads and asyncio tasks must have stayed within a stated bound after the warm-up.

    python -m tests.soak.soak --duration 2h --out DIR [--seed N]     # as root

The app: 20 files at 95 lines/s each, rotated by rename every minute (logrotate's
`rotate 3`: older copies deleted), and one copytruncate file at 100 lines/s, rotated every
minute too: 2,000 lines/s in all. logship and the Elasticsearch stand-in run on two test
hosts (tests/netns.py) joined by a link with 20 ± 10 ms of latency and 0.5% loss each way,
and a bad minute now and then (200 ± 50 ms, 3%). What happens when: tests/soak/plan.py.
Into DIR: samples.csv, summary.json, summary.txt, soak.png, resources.png (report.py).
Exit 0 when the verdict is pass, 1 when not, 2 when this machine cannot run it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from agents.logship.registry import FILENAME
from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import BROKEN, App
from tests.netns import TestNet, missing
from tests.soak import report
from tests.soak.ledger import INDEX, Ledger, harvest
from tests.soak.plan import SHORTEST, Fault, schedule

FILES = 20
FILE_RATE = 95.0  # lines/s of each renamed file: 20 x 95 + CT_RATE = 2,000
CT_RATE = 100.0
ROTATE_EVERY = 60.0  # s
KEEP = 3  # rotated copies kept
WIDTH = 60  # padding per line: ~73 bytes a line
SAMPLE_EVERY = 5.0  # s
HARVEST_EVERY = 15.0  # s: ~30,000 documents (~100 MiB of the stand-in's memory), ~1 s
BASE_LINK: dict[str, float] = {"delay": 0.02, "jitter": 0.01, "loss": 0.005}
BAD_LINK: dict[str, float] = {"delay": 0.2, "jitter": 0.05, "loss": 0.03}
CATCH_UP = 300.0  # s after the app's last line for logship to have shipped everything
STOP_TIMEOUT = 60.0  # s for a SIGTERM'd logship to drain (its --drain-timeout is 25 s)


def seconds(text: str) -> float:
    """Durations: "2h", "10m", "90s", "90" → seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(h|m|min|s)?\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (2h, 10m, 90s)")
    unit = {"h": 3600, "m": 60, "min": 60, "s": 1, None: 1}[found.group(2)]
    return float(found.group(1)) * unit


@dataclass
class Life:
    """One logship process: its counters as last scraped, and how it ended."""

    shipper: LogshipProcess
    started: float
    counters: dict[str, float] = field(default_factory=dict)
    ended: float | None = None
    exit_code: int | None = None
    how: str = ""  # sigterm, sigkill, final stop


@dataclass
class Event:
    kind: str
    at: float  # s from the start
    until: float  # s from the start (== at for a moment)
    detail: str = ""


COUNTERS = (
    "events_acked_total",
    "retries_total",
    "bulk_requests_total",
    "lines_read_total",
    "dead_lettered_total",
)


class Soak:
    def __init__(self, duration: float, out: Path, seed: int) -> None:
        self.duration, self.out, self.seed = duration, out, seed
        self.rng = random.Random(seed)
        self.faults = schedule(duration, self.rng)
        self.work = out / "work"
        self.logs = self.work / "logs"
        self.t0 = 0.0
        self.net: TestNet | None = None
        self.es: StandInProcess | None = None
        self.apps: list[App] = []
        self.prefixes = [f"r{i:02d}" for i in range(FILES)] + ["ct"]
        self.ledger = Ledger(self.prefixes)
        self.lives: list[Life] = []
        self.lock = threading.Lock()  # lives and the current logship: the timeline swaps them
        self.samples: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.indexed_last = 0  # documents stored (harvested + in the index), last known
        self.harvests = 0
        self.harvest_seconds = 0.0
        self.summaries: list[dict[str, Any]] = []  # the writers', once they stopped
        self.caught_up_after: float | None = None  # s from the app's last line
        self.ct_started = 0.0  # s: when the copytruncate file's writer started
        self.heals: list[threading.Timer] = []  # each bad stretch's end

    # --- setting up --------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self, net: TestNet) -> None:
        self.net = net
        shutil.rmtree(self.work, ignore_errors=True)
        self.logs.mkdir(parents=True)
        net.netem(**BASE_LINK, seed=self.seed)
        self.es = StandInProcess(
            "--host", "0.0.0.0", seed=self.seed, prefix=net.es.prefix, host=net.es.control
        ).start(timeout=30)
        self.t0 = time.monotonic()
        self.start_logship("start")
        for i, prefix in enumerate(self.prefixes[:FILES]):
            self.apps.append(self.app(self.logs / f"app-{i:02d}.log", prefix, FILE_RATE, "rename"))
        self.ct_started = self.now()
        self.apps.append(self.app(self.logs / "ct.log", "ct", CT_RATE, "copytruncate"))

    def app(self, path: Path, prefix: str, rate: float, rotate: str) -> App:
        return App(
            path,
            prefix,
            count=0,
            rate=rate,
            width=WIDTH,
            rotate=rotate,
            every=int(rate * ROTATE_EVERY),
            keep=KEEP,
            orphan_exit=True,
            progress=str(self.work / f"{prefix}.written"),
        )

    def start_logship(self, why: str) -> None:
        assert self.net is not None and self.es is not None
        # The renamed files and their rotated copies; the copytruncate file alone (its
        # copies are other files, which would be shipped again: docs/logship.md).
        shipper = LogshipProcess(
            f"http://{self.net.es.data}:{self.es.port}",
            self.work,
            "--path",
            str(self.logs / "ct.log"),
            glob="app-*.log*",
            prefix=self.net.ship.prefix,
            http_host=self.net.ship.control,
        )
        life = Life(shipper, self.now(), how=why)
        with self.lock:  # known before it starts: a start that fails is still taken down
            self.lives.append(life)
        try:
            shipper.start(timeout=60)
        except Exception as e:
            shipper.kill()
            with self.lock:
                life.ended, life.how = self.now(), f"{why}: did not start"
            raise RuntimeError(f"logship did not start ({why}): {e}") from e

    def current(self) -> Life | None:
        with self.lock:
            life = self.lives[-1] if self.lives else None
        return life if life is not None and life.ended is None else None

    # --- the faults ----------------------------------------------------------------------

    def timeline(self) -> None:
        """Carry out the schedule (a thread: a restart waits for logship's drain)."""
        actions: list[tuple[float, Callable[[], None]]] = []
        for fault in self.faults:
            actions.append((fault.at, lambda f=fault: self.fault(f)))  # type: ignore[misc]
        for at, action in sorted(actions, key=lambda a: a[0]):
            if self.stop.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            try:
                action()
            except Exception as e:  # said in the verdict; the run goes on
                self.failures.append(f"at {self.now():.0f} s the schedule failed: {e!r}")

    def fault(self, fault: Fault) -> None:
        assert self.net is not None and self.es is not None
        at = self.now()
        if fault.kind == "outage":
            self.es.control("down", seconds=fault.lasts)
            self.events.append(Event("outage", at, at + fault.lasts))
        elif fault.kind == "bad link":
            # Healed `lasts` after it began, also when a restart before it ran late.
            self.net.netem(**BAD_LINK, seed=self.seed + 1)
            self.events.append(Event("bad link", at, at + fault.lasts))
            heal = threading.Timer(fault.lasts, self.heal_link)
            heal.daemon = True
            heal.start()
            self.heals.append(heal)
        else:
            self.events.append(self.restart(fault.kind, at))

    def heal_link(self) -> None:
        assert self.net is not None
        try:
            self.net.netem(**BASE_LINK, seed=self.seed)
        except Exception as e:  # said in the verdict; the run goes on
            self.failures.append(f"at {self.now():.0f} s healing the link failed: {e!r}")

    def restart(self, kind: str, at: float) -> Event:
        life = self.current()
        assert life is not None, "no logship to restart"
        if kind == "sigterm":
            try:
                code: int | None = life.shipper.stop(STOP_TIMEOUT)
                if code != 0:
                    self.failures.append(f"logship exited {code} at SIGTERM ({at:.0f} s)")
            except subprocess.TimeoutExpired:
                life.shipper.kill()
                code = life.shipper.proc.returncode if life.shipper.proc else None
                self.failures.append(
                    f"logship did not exit within {STOP_TIMEOUT:g} s of SIGTERM ({at:.0f} s): "
                    "killed"
                )
        else:
            life.shipper.kill()
            code = life.shipper.proc.returncode if life.shipper.proc else None
        with self.lock:
            life.ended, life.exit_code, life.how = self.now(), code, kind
        gone = self.now()
        self.start_logship(kind)
        detail = f"exit {code}, stopped in {gone - at:.1f} s, back in {self.now() - gone:.1f} s"
        return Event(kind, at, self.now(), detail)

    # --- sampling --------------------------------------------------------------------------

    def written(self) -> int:
        total = 0
        for prefix in self.prefixes:
            with contextlib.suppress(OSError, ValueError):  # not yet written
                total += int((self.work / f"{prefix}.written").read_text() or 0)
        return total

    def indexed(self) -> tuple[int, bool]:
        """Documents stored so far (harvested + still in the index); whether the stand-in
        answered. While it is down nothing can be stored: the last count stands."""
        assert self.es is not None
        try:
            self.indexed_last = self.ledger.unique + self.es.count(INDEX)
            return self.indexed_last, True
        except (OSError, HTTPException, ValueError):
            return self.indexed_last, False

    def sample(self, phase: str) -> None:
        row: dict[str, Any] = {"t": round(self.now(), 2), "phase": phase}
        row["indexed"], up = self.indexed()
        row["written"] = self.written()  # after: what it says is up to 0.1 s old
        row["es_up"] = int(up)
        row["lag"] = row["written"] - row["indexed"]
        life = self.current()
        if life is not None:
            row.update(process(life.shipper))
            row.update(metrics(life))
        row.update(data_dir(self.work / "data"))
        if self.es is not None and self.es.proc is not None:
            stand_in = proc_status(self.es.proc.pid)
            row["standin_rss_mib"] = stand_in.get("rss_mib")
        with self.lock:
            # Counters over all lives: the ended ones' last scrape, plus the current one's.
            for name in COUNTERS:
                total = sum(lf.counters.get(name, 0.0) for lf in self.lives)
                row[name.removesuffix("_total") + "_all"] = total
        self.samples.append(row)

    def harvest(self) -> None:
        assert self.es is not None
        started = time.monotonic()
        try:
            harvest(self.es, self.ledger)
        except (OSError, HTTPException, ValueError):
            return  # down, or going down while it answered: the next one
        self.harvests += 1
        self.harvest_seconds += time.monotonic() - started

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> None:
        thread = threading.Thread(target=self.timeline, name="timeline", daemon=True)
        thread.start()
        next_sample = next_harvest = 0.0
        while self.now() < self.duration:
            if self.now() >= next_sample:
                self.sample("writing")
                next_sample += SAMPLE_EVERY
            if self.now() >= next_harvest:
                self.harvest()
                next_harvest = self.now() + HARVEST_EVERY
            time.sleep(max(0.0, min(next_sample, next_harvest, self.duration) - self.now()))
        self.stop.set()
        thread.join(timeout=STOP_TIMEOUT + 60)
        for heal in self.heals:  # a bad stretch that began late: healed for the catch-up
            if heal.is_alive():
                heal.cancel()
                self.heal_link()
        self.summaries = [app.stop() for app in self.apps]
        self.catch_up(next_sample)

    def catch_up(self, next_sample: float) -> None:
        """Sample on until logship has read and shipped everything (or CATCH_UP is out)."""
        ends = self.now() + CATCH_UP
        stopped = self.now()
        quiet = 0
        while self.now() < ends:
            if self.now() >= next_sample:
                self.sample("catching up")
                next_sample += SAMPLE_EVERY
            life = self.current()
            done = life is not None and shipped_all(life.shipper)
            quiet = quiet + 1 if done else 0
            if quiet >= 3:  # three looks, a second apart: nothing in flight, nothing unread
                self.caught_up_after = self.now() - stopped
                break
            time.sleep(1.0)
        if self.caught_up_after is None:
            self.failures.append(
                f"logship had not shipped everything {CATCH_UP:g} s after the app's last line"
            )
        self.sample("caught up")

    def finish(self) -> None:
        """Stop logship cleanly, take the last documents, check every line and every life."""
        life = self.current()
        if life is not None:
            code = life.shipper.stop(STOP_TIMEOUT)
            with self.lock:
                life.ended, life.exit_code, life.how = self.now(), code, "final stop"
            if code != 0:
                self.failures.append(f"logship exited {code} at the final SIGTERM")
        assert self.es is not None
        for _ in range(5):
            self.harvest()
            if self.es.count(INDEX) == 0:
                break
        for lf in self.lives:
            err = lf.shipper.stderr()
            if "Traceback" in err:
                self.failures.append(f"a traceback in {lf.shipper.stderr_path.name}")
            broken = [e["message"] for e in lf.shipper.events() if e["message"].startswith(BROKEN)]
            if broken:
                self.failures.append(f"{lf.shipper.stderr_path.name}: {broken[:3]}")

    def verdict_lines(self) -> dict[str, Any]:
        files = {}
        for prefix, summary in zip(self.prefixes, self.summaries, strict=True):
            files[prefix] = self.ledger.check(prefix, summary["written"], summary["destroyed"])
        missing = sum(f["missing"] for f in files.values())
        doubled = sum(f["doubled"] for f in files.values())
        if missing:
            bad = {p: f["missing_first"] for p, f in files.items() if f["missing"]}
            self.failures.append(f"{missing} lines missing (first seqs per file: {bad})")
        if doubled or self.ledger.doubled:
            bad = {p: f["doubled_first"] for p, f in files.items() if f["doubled"]}
            self.failures.append(f"{self.ledger.doubled} documents doubled a line ({bad})")
        if self.ledger.strangers_total:
            self.failures.append(
                f"{self.ledger.strangers_total} documents no writer wrote, "
                f"e.g. {self.ledger.strangers}"
            )
        beyond = sum(f["beyond_written"] for f in files.values())
        if beyond:
            self.failures.append(f"{beyond} lines past what the writers say they wrote")
        return {
            "written": sum(s["written"] for s in self.summaries),
            "indexed": self.ledger.unique,
            "missing": missing,
            "doubled": self.ledger.doubled,
            "lost_in_copytruncate_window": files["ct"]["lost_in_copytruncate_window"],
            "copytruncate_rotations": self.summaries[-1]["rotations"],
            "rename_rotations": sum(s["rotations"] for s in self.summaries[:-1]),
            "seen_again_same_id": self.ledger.seen_again,
            "per_file": files,
        }

    def teardown(self) -> None:
        self.stop.set()
        for heal in self.heals:
            heal.cancel()
        for app in self.apps:
            app.kill()
        for life in self.lives:
            life.shipper.kill()
        if self.es is not None:
            (self.out / "standin.stderr").write_text(self.es.stderr()[-2_000_000:])
            self.es.stop()


# --- looking at a process ------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, Any]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 2) if "VmRSS" in fields else None,
        "threads": int(fields["Threads"]) if "Threads" in fields else None,
    }


def process(shipper: LogshipProcess) -> dict[str, Any]:
    """logship's RSS, threads and open descriptors (`ip netns exec` execs it in place, so
    its pid is the Popen's, once the exec is done)."""
    if shipper.proc is None or shipper.proc.poll() is not None:
        return {}
    pid = shipper.proc.pid
    try:
        if b"agents.logship" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return {}
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    return {"pid": pid, "fds": fds, **proc_status(pid)}


GAUGES = ("queue_bytes", "files_open", "unacknowledged_events", "elasticsearch_reachable",
          "asyncio_tasks", "oldest_request_seconds")  # fmt: skip


def scrape(shipper: LogshipProcess) -> dict[str, float]:
    """Every unlabelled logship_ metric, and the per-file lag summed (file_lag_bytes)."""
    values: dict[str, float] = {"file_lag_bytes": 0.0}
    for line in shipper.metrics().splitlines():
        if not line.startswith("logship_"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.removeprefix("logship_")
        if name.startswith("file_lag_bytes{"):
            values["file_lag_bytes"] += float(value)
        elif "{" not in name:
            values[name] = float(value)
    return values


def metrics(life: Life) -> dict[str, Any]:
    try:
        values = scrape(life.shipper)
    except (OSError, HTTPException, ValueError):
        return {}
    life.counters = {k: values[k] for k in COUNTERS if k in values}
    return {k: values[k] for k in (*GAUGES, "file_lag_bytes") if k in values}


def shipped_all(shipper: LogshipProcess) -> bool:
    try:
        values = scrape(shipper)
    except (OSError, HTTPException, ValueError):
        return False
    return (
        values.get("file_lag_bytes") == 0
        and values.get("unacknowledged_events") == 0
        and values.get("queue_bytes") == 0
    )


def data_dir(path: Path) -> dict[str, Any]:
    """The registry's size and entries, and the data dir's bytes in all."""
    row: dict[str, Any] = {}
    try:
        row["data_dir_bytes"] = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        text = (path / FILENAME).read_text()
        row["registry_bytes"] = len(text.encode())
        row["registry_entries"] = len(json.loads(text)["entries"])
    except (OSError, ValueError, KeyError):
        pass  # not written yet, or replaced while read
    return row


# --- the program -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration",
        type=seconds,
        default=seconds("2h"),
        help="how long the app writes (2h, 10m, 600s); default 2h",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--seed", type=int, default=None, help="the random moments (default: any)")
    args = parser.parse_args(argv)
    if args.duration < SHORTEST:
        parser.error(
            f"--duration {args.duration:g} s is too short: a soak needs at least "
            f"{SHORTEST / 60:g} minutes (a warm-up, one period of faults to compare with, "
            "and more of the same)"
        )
    args.out = args.out.resolve()  # logship is given absolute paths
    reason = missing()
    if reason:
        print(f"the soak cannot run here: {reason}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    args.out.mkdir(parents=True, exist_ok=True)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # as Ctrl-C: take everything down
    soak = Soak(args.duration, args.out, seed)
    print(f"soak: {args.duration:g} s, seed {seed}, results in {args.out}", flush=True)
    lines: dict[str, Any] = {}
    try:
        with TestNet() as net:
            try:
                soak.start(net)
                soak.run()
                soak.finish()
                lines = soak.verdict_lines()
            finally:
                soak.teardown()
    except KeyboardInterrupt:
        soak.failures.append("interrupted")
        raise
    except Exception as e:
        soak.failures.append(f"the soak failed: {e!r}")
        raise
    finally:
        summary = report.write(soak, lines)
        print(summary, flush=True)
    if not soak.failures:
        shutil.rmtree(soak.logs, ignore_errors=True)  # ~30 MB of numbered lines
    return 0 if not soak.failures else 1


if __name__ == "__main__":
    sys.exit(main())
