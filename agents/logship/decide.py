"""What the file table does, decided from what it saw: pure functions, no I/O.

A harvester's look at its file (`Look`) becomes a `Change`; a change, with how much was
read and how long the file was quiet, becomes a `Step`. On SIGTERM `drain_may_end` says
when the app is done writing. A scan's find becomes `Seen`; a
file just opened starts where `where_to_start` says; a file read to its end after it went
away is kept, let go or forgotten as `after_finish` says. `files.FileTable` acts on them.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from agents.logship.harvester import INLINE_READ, Look

POLL = 0.25  # how often a harvester looks at its file without an inotify wake-up...
IDLE_POLL = 2.0  # ...growing to this while the file stays quiet (inotify still wakes it)

Inode = tuple[int, int]
# A file closed as inactive, by inode: (size, mtime_ns, bytes left after its last line)
Idle = tuple[int, int, bool]


class Change(Enum):
    """What happened to an open file since it was last read."""

    OK = "ok"  # as it was, perhaps grown
    TRUNCATED = "truncated"  # shrunk, or rewritten from the start (copytruncate)
    DELETED = "deleted"  # no link left: read to its end, then forgotten
    MOVED = "moved"  # its path names another file now, or none (rotated)


def change_of(look: Look, position: int) -> Change:
    """The change a look at a file read up to `position` shows."""
    if look.rewritten or look.size < position:
        return Change.TRUNCATED
    if look.size > 0 and look.size != position and not look.same_start:
        return Change.TRUNCATED  # copytruncate, then regrown past our position
    if look.deleted:
        return Change.DELETED
    if look.at_path is False:
        return Change.MOVED
    return Change.OK


class Step(Enum):
    """What a harvester does after a read and a look."""

    RESTART = "restart"  # truncated: read again from 0
    CLOSE_GONE = "close gone"  # deleted or rotated away, read to its end and quiet
    CLOSE_IDLE = "close idle"  # nothing new for close_inactive: give the descriptor back
    READ_ON = "read on"  # catching up: read again at once
    WAIT = "wait"  # for the next change (or the poll)


def next_step(
    change: Change,
    *,
    read: int,
    quiet: float,
    draining: bool,
    unacknowledged: int,
    drain_quiet: float,
    close_inactive: float,
) -> Step:
    if change is Change.TRUNCATED:
        return Step.RESTART
    if change in (Change.DELETED, Change.MOVED) and not read and quiet >= drain_quiet:
        return Step.CLOSE_GONE
    # Not while lines of it are unacknowledged: reopened, it would read them again from
    # the committed offset, over ranges still in flight.
    if not read and quiet >= close_inactive and not draining and not unacknowledged:
        return Step.CLOSE_IDLE
    if read > INLINE_READ:
        return Step.READ_ON
    return Step.WAIT


def poll_interval(quiet: float, *, draining: bool) -> float:
    """How long a harvester waits for an inotify wake-up before it looks at its file: POLL
    while the file grows or logship drains; then doubling with each second of quiet, up to
    IDLE_POLL, so an idle pod's files cost a wake-up every 2 s instead of 4 a second each.
    (The poll is for what inotify misses: network filesystems, a truncation with no write.)"""
    if draining or quiet < 1.0:
        return POLL
    return min(IDLE_POLL, POLL * 2 ** min(int(quiet), 8))


class Seen(Enum):
    """What a scan does with a file it found at a path."""

    SKIP = "skip"  # closed as idle and unchanged since
    KNOWN = "known"  # open already: its harvester looks at it now
    NEW = "new"  # open it


def on_scan(size: int, mtime_ns: int, idle: Idle | None, *, known: bool, draining: bool) -> Seen:
    # An idle file with bytes after its last line is opened at drain to ship them.
    if idle is not None and idle[:2] == (size, mtime_ns) and not (draining and idle[2]):
        return Seen.SKIP
    return Seen.KNOWN if known else Seen.NEW


Start = Literal["beginning", "end", "resume", "rewritten"]


def where_to_start(
    entry_offset: int | None, size: int, *, tail_ok: bool, start_at_end: bool, first_scan: bool
) -> Start:
    """Where to read a file just opened: a file never seen from its beginning (or its end,
    with --start-at end, for the files there at the first scan); a known one where its
    commit left off, unless it was truncated or rewritten while logship was away."""
    if entry_offset is None:
        return "end" if start_at_end and first_scan else "beginning"
    if entry_offset > size or not tail_ok:
        return "rewritten"
    return "resume"


def after_finish(*, deleted: bool, unacknowledged: int) -> Literal["keep", "let go", "forget"]:
    """A file read to its end after it was rotated away or deleted: keep it while lines of
    it are unacknowledged; then let go of its descriptor (rotated: its entry stays, so an
    unchanged file is not read again) or forget it (deleted: nothing of it is left)."""
    if unacknowledged:
        return "keep"
    return "forget" if deleted else "let go"


def drain_may_end(
    *,
    now: float,
    signal_at: float,
    last_growth: float,
    at_end: bool,
    writers: int | None,
    writers_gone_at: float | None,
    quiet: float,
) -> bool:
    """Whether the drain may stop reading: every file is read to its end, no process
    still writes one (`writers`: how many are seen; None when logship cannot see them),
    and nothing grew for `quiet` since the latest of the signal, the last growth and the
    moment the last writer was gone. The quiet never starts before the signal: a file
    idle for minutes before it gets its shutdown line a moment after (issue 12)."""
    if not at_end or writers:
        return False
    since = max(signal_at, last_growth, writers_gone_at or signal_at)
    return now - since >= quiet
