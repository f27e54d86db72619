"""Which offsets may be committed: only the contiguous acknowledged prefix of each file.

Events of one file are sent in several bulk requests at once and come back in any order.
A file's committed offset may only move past an event once it and every event before it
were acknowledged (stored, already stored, or dead-lettered) — otherwise a crash would
skip the unacknowledged ones.

`outstanding` counts events, not ranges: a range is one read's run of events, and what an
operator is told ("unacknowledged=N", `logship_unacknowledged_events`) is how many lines
a restart would send again.
"""

from __future__ import annotations

from collections import deque


class FileAcks:
    """One file (one identity and generation): ranges handed out, in order, and acks."""

    __slots__ = ("_acked", "_events", "_ranges", "committed")

    def __init__(self, committed: int) -> None:
        self.committed = committed  # everything before this offset is acknowledged
        # (start, end, events) in file order
        self._ranges: deque[tuple[int, int, int]] = deque()
        self._acked: set[int] = set()  # starts of acknowledged ranges not yet committed
        self._events = 0  # events in _ranges

    def sent(self, start: int, end: int, events: int = 1) -> None:
        """`events` events covering [start, end) entered the pipeline (in file order)."""
        if self._ranges and start < self._ranges[-1][1]:
            raise ValueError(f"range {start}-{end} overlaps or precedes the last one")
        self._ranges.append((start, end, events))
        self._events += events

    def acked(self, start: int) -> int | None:
        """The event starting at `start` is acknowledged. Returns the new committed offset
        when it moved, else None."""
        self._acked.add(start)
        moved = False
        while self._ranges and self._ranges[0][0] in self._acked:
            first, end, events = self._ranges.popleft()
            self._acked.discard(first)
            self._events -= events
            self.committed = end
            moved = True
        return self.committed if moved else None

    @property
    def outstanding(self) -> int:
        """Events not yet committed: a restart would send them again."""
        return self._events


class AckTracker:
    """All files' acknowledgements, keyed by (file key, generation)."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, int], FileAcks] = {}

    def track(self, key: str, generation: int, committed: int) -> FileAcks:
        slot = (key, generation)
        acks = self._files.get(slot)
        if acks is None:
            acks = self._files[slot] = FileAcks(committed)
        return acks

    def sent(self, key: str, generation: int, start: int, end: int, events: int = 1) -> None:
        self._files[(key, generation)].sent(start, end, events)

    def acked(self, key: str, generation: int, start: int) -> int | None:
        acks = self._files.get((key, generation))
        return None if acks is None else acks.acked(start)

    def outstanding(self) -> int:
        return sum(a.outstanding for a in self._files.values())

    def forget(self, key: str, generation: int) -> None:
        self._files.pop((key, generation), None)
