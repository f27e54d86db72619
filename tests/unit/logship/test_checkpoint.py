"""The checkpointer's commit rule and forget policy, on a real registry, with a clock the
test sets: no process, no waiting."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from agents._log import Logger
from agents.logship.checkpoint import FORGET_AFTER, Checkpointer
from agents.logship.registry import Entry, Registry

NOW = 2_000_000_000.0


def checkpointer(tmp: Path) -> tuple[Checkpointer, io.StringIO]:
    out = io.StringIO()
    registry = Registry(tmp / "data")
    return Checkpointer(registry, Logger("t", json_lines=True, stream=out), wall=lambda: NOW), out


def entry_for(path: Path, key: str, *, age: float) -> Entry:
    info = os.stat(path) if path.exists() else None
    dev, ino = (info.st_dev, info.st_ino) if info else (1, 10_000_000 + len(key))
    return Entry(key, dev=dev, ino=ino, head="h", path=str(path), offset=5, updated=NOW - age)


def test_a_commit_moves_forward_within_its_generation_only(tmp_path: Path) -> None:
    c, _ = checkpointer(tmp_path)
    c.registry.put(Entry("k", dev=1, ino=2, head="h", path="/p", offset=0))
    c.commit("k", 0, 100, "t100", path="/p")
    c.commit("k", 0, 50, "t50", path="/p")  # an older acknowledgement: no step back
    assert (c.registry.get("k").offset, c.registry.get("k").tail) == (100, "t100")  # type: ignore[union-attr]
    c.commit("k", 1, 200, "t200", path="/p")  # a generation the file no longer has
    c.commit("gone", 0, 10, "t", path="/q")  # a file forgotten meanwhile
    assert c.registry.get("k").offset == 100  # type: ignore[union-attr]
    assert c.registry.get("gone") is None


@pytest.mark.asyncio
async def test_only_stale_entries_of_files_gone_from_their_path_and_unheld_are_forgotten(
    tmp_path: Path,
) -> None:
    c, out = checkpointer(tmp_path)
    there = tmp_path / "there.log"
    there.write_text("x\n")
    moved = tmp_path / "moved.log"
    moved.write_text("y\n")
    entries = {
        "vanished": entry_for(tmp_path / "vanished.log", "vanished", age=FORGET_AFTER + 1),
        "recent": entry_for(tmp_path / "recent.log", "recent", age=FORGET_AFTER - 1),
        "there": entry_for(there, "there", age=FORGET_AFTER + 1),
        "open": entry_for(tmp_path / "open.log", "open", age=FORGET_AFTER + 1),
        "seen": entry_for(tmp_path / "seen.log", "seen", age=FORGET_AFTER + 1),
        "replaced": entry_for(moved, "replaced", age=FORGET_AFTER + 1),
    }
    entries["replaced"].ino += 1  # another file stands at its path now
    for entry in entries.values():
        c.registry.put(entry)
    seen = entries["seen"]
    await c.forget_vanished({"open"}, {(seen.dev, seen.ino)})
    assert sorted(c.registry.entries) == ["open", "recent", "seen", "there"]
    said = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(e["file_id"] for e in said) == ["replaced", "vanished"]
    assert {e["reason"] for e in said} == {"vanished"}


def test_a_deleted_file_goes_with_its_ledger(tmp_path: Path) -> None:
    c, _ = checkpointer(tmp_path)
    c.registry.put(Entry("k", dev=1, ino=2, head="h", path="/p"))
    c.ledger.track("k", 0, 0)
    c.ledger.sent("k", 0, 0, 10, events=3)
    assert c.unacknowledged("k", 0, 0) == 3
    c.forget("k", 0)
    assert c.registry.get("k") is None
    assert c.unacknowledged("k", 0, 0) == 0  # a fresh ledger, nothing in it
