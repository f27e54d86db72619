"""What happens when in a soak: the issue's schedule for long runs, and the same kinds of
fault packed closer for a short run (so that 10 minutes hold each).

Both schedules repeat: every fault kind comes back at a fixed interval, so the whole
pattern (which fault follows which, how close) repeats after one period, the least common
multiple of the intervals. The flatness check (report.check_bounds) relies on that: after
the warm-up, one whole period is the reference window, and the rest of the run repeats
what the reference held, so its peaks may exceed the reference's by slack for chance only.
Comparing with a window that lacked a kind of fault was comparing unlike with unlike: a
SIGKILL's successor opens every rotated copy at once, a catch-up behind an outage that
meets a bad link holds more in memory; those peaks are the faults', not a leak's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# kind -> (first, every, lasts) in seconds. The issue's: Elasticsearch down 30 s every 10
# minutes, logship restarted (SIGTERM) every 15 minutes, killed (SIGKILL) once an hour;
# and a bad patch of the link (more latency and loss) for a minute every 10 minutes.
# The offsets keep the faults apart, so that each one's effect can be told on the plots.
# Period: 1 hour.
ISSUE = {
    "outage": (300.0, 600.0, 30.0),
    "bad link": (660.0, 600.0, 60.0),
    "sigterm": (450.0, 900.0, 0.0),
    "sigkill": (1800.0, 3600.0, 0.0),
}
# A short run: every kind once every 3 minutes, in the order an hour of the issue's has
# them (an outage, a restart, a bad stretch, a kill).
SHORT = {
    "outage": (20.0, 180.0, 30.0),
    "sigterm": (75.0, 180.0, 0.0),
    "bad link": (100.0, 180.0, 45.0),
    "sigkill": (160.0, 180.0, 0.0),
}
JITTER = 5.0  # s: restarts and kills land at a random moment near their slot (seeded)
# The warm-up: until the rotated copies on disk are as many as they will be (KEEP + 1
# rotations of a minute; a restarted logship opens them all, so its descriptors depend
# on them). A long run waits longer: its registry settles only once deleted files have
# been forgotten (report.registry_warm_up, 15 minutes).
WARM_UP = {"short": 240.0, "long": 1200.0}
AFTER = 600.0  # s: at least this much of the run follows the reference window


@dataclass(frozen=True)
class Fault:
    kind: str  # outage, bad link, sigterm, sigkill
    at: float  # seconds from the start
    lasts: float  # 0: a moment


def period(table: dict[str, tuple[float, float, float]]) -> float:
    """After how long the table's pattern of faults repeats."""
    return float(math.lcm(*(int(every) for _, every, _ in table.values())))


# From this duration on, the issue's schedule as written: a warm-up, one period as the
# reference window, and AFTER more (1 h 30 min; the default run is 2 h).
LONG = WARM_UP["long"] + period(ISSUE) + AFTER
SHORTEST = WARM_UP["short"] + period(SHORT) + 120.0  # 9 minutes: the reference and a bit


def table(duration: float) -> dict[str, tuple[float, float, float]]:
    return ISSUE if duration >= LONG else SHORT


def schedule(duration: float, rng: random.Random) -> list[Fault]:
    """Every fault of a run of `duration` seconds, in time order. Only faults that end
    before the app stops writing: the end of a run is for catching up."""
    faults = []
    for kind, (first, every, lasts) in table(duration).items():
        at = first
        while at + lasts < duration - 10:
            moment = at + (rng.uniform(-JITTER, JITTER) if kind.startswith("sig") else 0.0)
            faults.append(Fault(kind, round(moment, 2), lasts))
            at += every
    return sorted(faults, key=lambda f: f.at)


def windows(duration: float) -> tuple[float, float]:
    """(warm-up end, reference window end), in seconds: after the warm-up, one whole
    period of the schedule is the reference window; the rest of the run must stay within
    the level its samples set."""
    warm = WARM_UP["long" if duration >= LONG else "short"]
    return warm, warm + period(table(duration))
