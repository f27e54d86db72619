"""Rotation under load — rename-and-create, copytruncate, truncation to 0 — a file deleted
while Elasticsearch is down, and an inode reused by a new file: each line exactly once,
except what the README's copytruncate window allows to be lost (and no more)."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import App, caught_up, docs, messages, shipped, sized, stop_cleanly
from tests.faults.writer import line
from tests.helpers import exactly_once, registry_entries, wait_for, write_lines

Shippers = Callable[..., LogshipProcess]


@sized(
    dict(lines=10_000, every=1000, rate=2500, catch_up=60),
    dict(lines=200_000, every=10_000, rate=4000, catch_up=300),
)
def test_rename_and_create_rotation_under_load(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    shipper = shippers(es, tmp, glob="app.log*").start()
    app = App(tmp / "logs" / "app.log", count=size.lines, rate=size.rate, width=60,
              rotate="rename", every=size.every)  # fmt: skip
    expected = app.expected()
    rotations = app.finish()["rotations"]
    assert rotations == size.lines // size.every - 1
    shipped(es, len(expected), timeout=size.catch_up)
    # "the renamed file is read to its end and closed": only app.log stays open
    wait_for(lambda: shipper.metric("files_open") == 1, timeout=30, what="rotated files closed")
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)


def lost_only_what_the_window_allows(
    got: Counter[str], app: App, width: int
) -> tuple[list[str], int]:
    """The README's copytruncate window: lines written after logship's last read of a
    content and before its truncation are destroyed. So what is missing of a destroyed
    content is its tail (logship reads in order), and nothing after the last truncation.
    Returns the lines that must be there, exactly once, and how many were lost."""
    summary = app.finish()
    must, lost = [], 0
    for first, last in summary["destroyed"]:
        content = [line(app.prefix, s, width) for s in range(first, last + 1)]
        shipped_here = [m for m in content if got[m]]
        must += content[: len(shipped_here)]  # a prefix: any gap is a line lost mid-content
        lost += len(content) - len(shipped_here)
    tail_from = summary["destroyed"][-1][1] + 1 if summary["destroyed"] else 0
    must += [line(app.prefix, s, width) for s in range(tail_from, summary["written"])]
    return must, lost


@pytest.mark.parametrize("rotate", ["copytruncate", "truncate"])
@sized(
    dict(lines=10_000, every=1000, rate=2500, catch_up=60),
    dict(lines=200_000, every=10_000, rate=4000, catch_up=300),
)
def test_truncating_rotation_under_load(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any, rotate: str
) -> None:
    # With copytruncate, --path names the live file only: the copies are other files.
    shipper = shippers(es, tmp, glob="app.log").start()
    app = App(tmp / "logs" / "app.log", count=size.lines, rate=size.rate, width=60,
              rotate=rotate, every=size.every)  # fmt: skip
    summary = app.finish()
    assert len(summary["destroyed"]) == size.lines // size.every - 1
    last_content = [line("line", s, 60) for s in range(summary["destroyed"][-1][1] + 1,
                                                       summary["written"])]  # fmt: skip
    log = tmp / "logs" / "app.log"
    wait_for(lambda: caught_up(shipper, log), timeout=size.catch_up, what="logship at the end")
    stop_cleanly(shipper)
    got = messages(es)
    must, lost = lost_only_what_the_window_allows(got, app, 60)
    print(f"{rotate}: {lost} of {summary['written']} lines lost in the truncation window")
    exactly_once(got, must)
    assert shipper.logged("file truncated"), "no truncation was noticed"
    later = [d for d in docs(es) if d["message"] in set(must[-len(last_content) :])]
    assert all("truncated" in d["log"].get("flags", []) for d in later)


@pytest.mark.parametrize("rotate", ["copytruncate", "truncate"])
@sized(dict(lines=20_000, catch_up=60), dict(lines=400_000, catch_up=300))
def test_truncated_and_rewritten_while_logship_waits_in_the_middle(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any, rotate: str
) -> None:
    """What lagging behind the app looks like, made deterministic: logship has read part
    of the file and waits for memory when the file is truncated and written again, past
    logship's position. The README's window allows the old content's unread tail to be
    lost; the new content must ship exactly once, from its first line."""
    log = tmp / "logs" / "app.log"
    args = ("--queue-bytes", "1MiB", "--batch-bytes", "256KiB")
    shipper = shippers(es, tmp, *args, glob="app.log").start()
    es.control("fail_requests", status=503)
    old = [line("old", s, 60) for s in range(size.lines)]
    write_lines(log, old)
    wait_for(lambda: shipper.metric("queue_bytes") > 512 * 1024, what="the budget to fill")
    assert 0 < shipper.metric("lines_read_total") < len(old) / 2  # in the middle of it
    if rotate == "copytruncate":
        shutil.copyfile(log, log.with_name("app.log.1"))
    os.truncate(log, 0)
    new = [line("new", s, 70) for s in range(size.lines)]
    write_lines(log, new)  # longer than where logship stands
    es.control("reset_faults")
    wait_for(lambda: caught_up(shipper, log), timeout=size.catch_up, what="the new content")
    after = [line("after", s, 70) for s in range(100)]  # the app goes on writing
    write_lines(log, after)
    wait_for(lambda: caught_up(shipper, log), timeout=size.catch_up, what="the last lines")
    stop_cleanly(shipper)
    got = messages(es)
    old_shipped = [m for m in old if got[m]]
    assert old_shipped == old[: len(old_shipped)], "the old content lost lines in its middle"
    exactly_once(got, old_shipped + new + after)


@sized(
    dict(lines=20_000, width=100, down=4.0, catch_up=60),
    dict(lines=150_000, width=100, down=60.0, catch_up=300),
)
def test_a_file_deleted_while_elasticsearch_is_down_is_read_to_its_end(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """ "A file deleted while logship has it open is read to its end": also when most of
    it is not read yet at the deletion because Elasticsearch is down (the memory budget
    is full, the file waits), and logship ships it when Elasticsearch is back."""
    log = tmp / "logs" / "app.log"
    shipper = shippers(es, tmp, "--queue-bytes", "256KiB", "--batch-bytes", "64KiB").start()
    write_lines(log, ["first"])
    wait_for(lambda: es.count() == 1, what="the first line")
    es.control("down", seconds=size.down)  # the control API is on the same port: timed
    outage_ends = time.monotonic() + size.down
    expected = ["first", *[line("line", s, size.width) for s in range(size.lines)]]
    write_lines(log, expected[1:])
    wait_for(lambda: shipper.metric("queue_bytes") > 128 * 1024, what="the budget to fill")
    assert shipper.metric("lines_read_total") < len(expected) / 2  # most of it unread
    log.unlink()
    assert time.monotonic() < outage_ends - 0.5, "deleted too late: make the outage longer"
    wait_for(lambda: shipper.logged("Elasticsearch unreachable"), what="the outage")
    shipped(es, len(expected), timeout=size.catch_up)
    wait_for(lambda: shipper.logged("file closed", reason="deleted"), what="the file closed")
    wait_for(lambda: shipper.logged("file forgotten", reason="deleted"), what="the entry dropped")
    wait_for(lambda: not registry_entries(tmp), what="an empty registry")
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)


def reuse_inode(path: Path, inode: int, content: str) -> bool:
    """Create `path` anew with `content`, on the freed `inode` if the filesystem gives it
    back. ext4 hands out the lowest free inode of the directory's group, so files beside
    it (outside the glob) take the free inodes below it first, then it comes back."""
    spares = []
    try:
        for attempt in range(5000):
            candidate = path.with_name(f".candidate-{attempt}")
            candidate.write_text(content)
            if candidate.stat().st_ino == inode:
                candidate.rename(path)
                return True
            spares.append(candidate)
        return False
    finally:
        for spare in spares:
            spare.unlink()


@pytest.mark.parametrize("logship_running", [True, False], ids=["running", "stopped"])
@sized(dict(lines=2000), dict(lines=100_000))
def test_an_inode_reused_by_a_new_file_is_a_new_file(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any, logship_running: bool
) -> None:
    log = tmp / "logs" / "app.log"
    old = [line("old", s, 40) for s in range(size.lines)]
    write_lines(log, old)
    shipper = shippers(es, tmp).start()
    shipped(es, len(old), timeout=60)
    inode = log.stat().st_ino
    if not logship_running:
        stop_cleanly(shipper)
    log.unlink()
    if logship_running:  # the old file's descriptor must go before the inode is free
        wait_for(lambda: shipper.logged("file forgotten", reason="deleted"), what="let go")
    # longer than the old one: its saved offset is no sign of a truncation
    new = [line("new", s, 60) for s in range(size.lines)]
    if not reuse_inode(log, inode, "".join(f"{m}\n" for m in new)):
        pytest.skip(f"{tmp}: the filesystem did not hand inode {inode} out again")
    assert log.stat().st_ino == inode
    if not logship_running:
        shipper = shippers(es, tmp).start()
    shipped(es, len(old) + len(new), timeout=60)
    stop_cleanly(shipper)
    exactly_once(messages(es), old + new)
