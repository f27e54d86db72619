"""The file table's decisions, as pure functions: no files, no processes, no clock."""

from __future__ import annotations

import pytest

from agents.logship.decide import (
    INLINE_READ,
    Change,
    Seen,
    Step,
    after_finish,
    change_of,
    next_step,
    on_scan,
    where_to_start,
)
from agents.logship.harvester import Look


def look(size: int, *, deleted: bool = False, same_start: bool = True,
         rewritten: bool = False, at_path: bool | None = True) -> Look:  # fmt: skip
    return Look(size, deleted, same_start, rewritten, at_path)


@pytest.mark.parametrize(
    ("seen", "position", "change"),
    [
        (look(100), 100, Change.OK),  # nothing new
        (look(150), 100, Change.OK),  # grown
        (look(50), 100, Change.TRUNCATED),  # shrunk
        (look(150, same_start=False), 100, Change.TRUNCATED),  # copytruncate, regrown
        (look(100, same_start=False), 100, Change.OK),  # the start is read only on growth
        (look(150, rewritten=True), 100, Change.TRUNCATED),  # rewritten behind us
        (look(100, deleted=True), 100, Change.DELETED),
        (look(100, at_path=False), 100, Change.MOVED),  # renamed away, or replaced
        (look(100, at_path=None), 100, Change.OK),  # cannot tell: as it was
        (look(10, deleted=True), 100, Change.TRUNCATED),  # truncated first, then deleted
    ],
)
def test_what_a_look_means(seen: Look, position: int, change: Change) -> None:
    assert change_of(seen, position) is change


def step(change: Change, *, read: int = 0, quiet: float = 0.0, draining: bool = False,
         unacknowledged: int = 0) -> Step:  # fmt: skip
    return next_step(change, read=read, quiet=quiet, draining=draining,
                     unacknowledged=unacknowledged, drain_quiet=1.0,
                     close_inactive=300.0)  # fmt: skip


def test_a_truncated_file_is_read_again_whatever_else() -> None:
    assert step(Change.TRUNCATED, read=10, unacknowledged=5) is Step.RESTART


def test_a_rotated_or_deleted_file_closes_once_read_to_its_end_and_quiet() -> None:
    for change in (Change.MOVED, Change.DELETED):
        assert step(change, quiet=0.5) is Step.WAIT  # the app may still write to it
        assert step(change, read=10, quiet=5.0) is Step.WAIT  # it just grew
        assert step(change, quiet=1.0) is Step.CLOSE_GONE


def test_an_idle_file_closes_only_when_all_of_it_is_acknowledged_and_not_draining() -> None:
    assert step(Change.OK, quiet=299.0) is Step.WAIT
    assert step(Change.OK, quiet=300.0) is Step.CLOSE_IDLE
    assert step(Change.OK, quiet=300.0, unacknowledged=1) is Step.WAIT
    assert step(Change.OK, quiet=300.0, draining=True) is Step.WAIT


def test_a_file_catching_up_reads_on_and_a_live_one_waits() -> None:
    assert step(Change.OK, read=INLINE_READ + 1) is Step.READ_ON
    assert step(Change.OK, read=INLINE_READ) is Step.WAIT


def test_what_a_scan_does_with_a_file() -> None:
    idle = (100, 7, False)
    assert on_scan(100, 7, idle, known=False, draining=False) is Seen.SKIP  # unchanged
    assert on_scan(120, 9, idle, known=False, draining=False) is Seen.NEW  # it changed
    assert on_scan(100, 7, None, known=True, draining=False) is Seen.KNOWN
    assert on_scan(100, 7, None, known=False, draining=False) is Seen.NEW
    left_over = (100, 7, True)  # bytes after its last line: shipped at drain
    assert on_scan(100, 7, left_over, known=False, draining=False) is Seen.SKIP
    assert on_scan(100, 7, left_over, known=False, draining=True) is Seen.NEW


@pytest.mark.parametrize(
    ("offset", "size", "tail_ok", "at_end", "first", "start"),
    [
        (None, 500, True, False, True, "beginning"),
        (None, 500, True, True, True, "end"),  # --start-at end, there at start-up
        (None, 500, True, True, False, "beginning"),  # appeared later: all of it
        (300, 500, True, False, False, "resume"),
        (300, 200, True, False, False, "rewritten"),  # shorter than what was shipped
        (300, 500, False, False, False, "rewritten"),  # other bytes before the offset
    ],
)
def test_where_a_file_just_opened_is_read_from(
    offset: int | None, size: int, tail_ok: bool, at_end: bool, first: bool, start: str
) -> None:
    assert where_to_start(offset, size, tail_ok=tail_ok, start_at_end=at_end,
                          first_scan=first) == start  # fmt: skip


def test_a_finished_file_is_kept_until_acknowledged_then_let_go_or_forgotten() -> None:
    assert after_finish(deleted=True, unacknowledged=3) == "keep"
    assert after_finish(deleted=False, unacknowledged=3) == "keep"
    assert after_finish(deleted=True, unacknowledged=0) == "forget"
    assert after_finish(deleted=False, unacknowledged=0) == "let go"


def test_the_drain_quiet_starts_at_the_signal_never_before() -> None:
    from agents.logship.decide import drain_may_end

    def may_end(now: float, **kw: object) -> bool:
        facts: dict[str, object] = {
            "signal_at": 100.0, "last_growth": 10.0, "at_end": True, "writers": None,
            "writers_gone_at": None, "quiet": 1.0,
        }  # fmt: skip
        return drain_may_end(now=now, **(facts | kw))  # type: ignore[arg-type]

    # blind: idle for 90 s before the signal, still 1 s of quiet after it (the 20 ms case)
    assert not may_end(100.02) and not may_end(100.99) and may_end(101.0)
    assert not may_end(101.5, last_growth=100.6) and may_end(101.6, last_growth=100.6)
    assert not may_end(200.0, at_end=False)
    # seen: nothing ends while a writer lives, however quiet
    assert not may_end(150.0, writers=1)
    # the last writer went at 130: quiet counts from then
    assert not may_end(130.5, writers=0, writers_gone_at=130.0)
    assert may_end(131.0, writers=0, writers_gone_at=130.0)
