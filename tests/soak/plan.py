"""What happens when in a soak: the issue's schedule for runs of an hour or more, and the
same kinds of fault packed closer for a short run (so that 10 minutes hold each)."""

from __future__ import annotations

import random
from dataclasses import dataclass

LONG = 3600.0  # from this duration on, the issue's schedule as written

# kind -> (first, every, lasts) in seconds. The issue's: Elasticsearch down 30 s every 10
# minutes, logship restarted (SIGTERM) every 15 minutes, killed (SIGKILL) once an hour;
# and a bad patch of the link (more latency and loss) for a minute every 10 minutes.
# The offsets keep the faults apart, so that each one's effect can be told on the plots.
ISSUE = {
    "outage": (300.0, 600.0, 30.0),
    "bad link": (660.0, 600.0, 60.0),
    "sigterm": (450.0, 900.0, 0.0),
    "sigkill": (1800.0, 3600.0, 0.0),
}
# A short run, 10 minutes: an outage every 3 minutes (at 60, 240, 420 s), a restart at 150
# and 480 s, a kill at 400 s, the bad link at 300 and 520 s.
SHORT = {
    "outage": (60.0, 180.0, 30.0),
    "bad link": (300.0, 220.0, 60.0),
    "sigterm": (150.0, 330.0, 0.0),
    "sigkill": (400.0, 480.0, 0.0),
}
JITTER = 5.0  # s: restarts and kills land at a random moment near their slot (seeded)


@dataclass(frozen=True)
class Fault:
    kind: str  # outage, bad link, sigterm, sigkill
    at: float  # seconds from the start
    lasts: float  # 0: a moment


def schedule(duration: float, rng: random.Random) -> list[Fault]:
    """Every fault of a run of `duration` seconds, in time order. Only faults that end
    before the app stops writing: the end of a run is for catching up."""
    table = ISSUE if duration >= LONG else SHORT
    faults = []
    for kind, (first, every, lasts) in table.items():
        at = first
        while at + lasts < duration - 10:
            moment = at + (rng.uniform(-JITTER, JITTER) if kind.startswith("sig") else 0.0)
            faults.append(Fault(kind, round(moment, 2), lasts))
            at += every
    return sorted(faults, key=lambda f: f.at)


def windows(duration: float) -> tuple[float, float]:
    """(warm-up end, reference window end), in seconds: after the warm-up, the samples of
    the reference window set the level the rest of the run must stay within. The window
    holds at least one of each periodic fault (an outage, a restart), so its peaks are the
    peaks the faults cause, not a quiet stretch's, and it starts once the rotated copies on
    disk are as many as they will be (KEEP + 1 rotations): a restarted logship opens them
    all, so its descriptors depend on them."""
    if duration >= LONG:
        return 1200.0, 2400.0  # warm-up 20 min, reference 20-40 min
    return 240.0, 420.0  # warm-up 4 min, reference 4-7 min: an outage, a bad link, a kill
