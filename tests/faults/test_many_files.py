"""Many files in a deep tree matched by `**`, and files that appear and vanish quickly."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import App, messages, shipped, sized, stop_cleanly
from tests.helpers import exactly_once, wait_for, write_lines

Shippers = Callable[..., LogshipProcess]


def tree_path(root: Path, i: int, depth: int) -> Path:
    """File i of a tree `depth` directories deep, 10 entries per directory level."""
    parts = [f"d{(i // 10**level) % 10}" for level in range(depth, 0, -1)]
    return root.joinpath(*parts, f"f{i:05d}.log")


@sized(
    dict(files=1000, depth=3, grow=200, ready=60, catch_up=120),
    dict(files=10_000, depth=4, grow=2000, ready=300, catch_up=600),
    timeout=1500,
)
def test_many_files_in_a_deep_tree_matched_by_double_star(
    es: StandInProcess, tmp: Path, shippers: Shippers, rng: random.Random, size: Any
) -> None:
    expected: list[str] = []
    paths = [tree_path(tmp / "logs", i, size.depth) for i in range(size.files)]
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"f{i:05d} before {n}" for n in range(3)]
        write_lines(path, lines)
        expected += lines
    args = ("--scan-interval", "2s")
    shipper = shippers(es, tmp, *args, glob="**/*.log").start(wait_ready=False)
    wait_for(shipper.ready, timeout=size.ready, what=f"logship ready with {size.files} files")
    for i in rng.sample(range(size.files), size.grow):  # some grow while logship runs
        lines = [f"f{i:05d} after {n}" for n in range(2)]
        write_lines(paths[i], lines)
        expected += lines
    for i in range(size.files, size.files + size.grow // 2):  # and new ones appear, deeper
        path = tree_path(tmp / "logs" / "late", i, size.depth)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_lines(path, [f"late {i}"])
        expected.append(f"late {i}")
    shipped(es, len(expected), timeout=size.catch_up)
    assert shipper.metric("files_open") == size.files + size.grow // 2
    stop_cleanly(shipper, timeout=120)
    exactly_once(messages(es), expected)


@sized(
    dict(files=200, lines=5, life=0.03, stable=3000, catch_up=60),
    dict(files=5000, lines=5, life=0.03, stable=60_000, catch_up=300),
)
def test_files_that_appear_and_vanish_quickly(
    es: StandInProcess, tmp: Path, shippers: Shippers, rng: random.Random, size: Any
) -> None:
    """ "A file created and deleted between two looks cannot be read": such a file ships
    all of its lines or none, never some of them, never twice; the others all ship."""
    shipper = shippers(es, tmp).start()
    app = App(tmp / "logs" / "stable.log", prefix="stable", count=size.stable, rate=1000)
    lives = [rng.uniform(0.0, size.life) for _ in range(size.files)]
    written: dict[int, list[str]] = {}

    def churn() -> None:
        for i, life in enumerate(lives):
            path = tmp / "logs" / f"brief-{i}.log"
            written[i] = [f"brief {i} line {n}" for n in range(size.lines)]
            write_lines(path, written[i])
            time.sleep(life)
            path.unlink()

    churner = threading.Thread(target=churn)
    churner.start()
    churner.join(timeout=size.catch_up * 2)
    assert not churner.is_alive()
    stable = app.expected()
    shipped(es, len(stable), timeout=size.catch_up)
    stop_cleanly(shipper)
    got = messages(es)
    briefs = Counter({m: n for m, n in got.items() if m.startswith("brief ")})
    partial = {i: [got[m] for m in lines] for i, lines in written.items()
               if 0 < sum(got[m] > 0 for m in lines) < len(lines)}  # fmt: skip
    assert not partial, f"files shipped in part: {dict(list(partial.items())[:3])}"
    whole = [m for lines in written.values() if got[lines[0]] for m in lines]
    exactly_once(briefs, whole)
    exactly_once(Counter({m: n for m, n in got.items() if m.startswith("stable ")}), stable)
    print(f"{len(whole) // size.lines} of {size.files} brief files shipped")
