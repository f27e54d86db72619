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

    __slots__ = ("_acked", "_events", "_ranges", "committed", "tail")

    def __init__(self, committed: int) -> None:
        self.committed = committed  # everything before this offset is acknowledged
        self.tail: str | None = None  # the hash of the bytes before `committed`, if known
        # (start, end, events, tail) in file order
        self._ranges: deque[tuple[int, int, int, str | None]] = deque()
        self._acked: set[int] = set()  # starts of acknowledged ranges not yet committed
        self._events = 0  # events in _ranges

    def sent(self, start: int, end: int, events: int = 1, tail: str | None = None) -> None:
        """`events` events covering [start, end) entered the pipeline (in file order);
        `tail` is the hash of the bytes before `end`, when known."""
        if self._ranges and start < self._ranges[-1][1]:
            raise ValueError(f"range {start}-{end} overlaps or precedes the last one")
        self._ranges.append((start, end, events, tail))
        self._events += events

    def acked(self, start: int) -> int | None:
        """The event starting at `start` is acknowledged. Returns the new committed offset
        when it moved, else None."""
        self._acked.add(start)
        moved = False
        while self._ranges and self._ranges[0][0] in self._acked:
            first, end, events, tail = self._ranges.popleft()
            self._acked.discard(first)
            self._events -= events
            self.committed, self.tail = end, tail
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

    def sent(
        self, key: str, generation: int, start: int, end: int, events: int = 1,
        tail: str | None = None,
    ) -> None:  # fmt: skip
        self._files[(key, generation)].sent(start, end, events, tail)

    def acked(self, key: str, generation: int, start: int) -> tuple[int, str | None] | None:
        """The new committed offset and the hash of the bytes before it, when it moved."""
        acks = self._files.get((key, generation))
        if acks is None:
            return None
        committed = acks.acked(start)
        return None if committed is None else (committed, acks.tail)

    def outstanding(self) -> int:
        return sum(a.outstanding for a in self._files.values())

    def forget(self, key: str, generation: int) -> None:
        self._files.pop((key, generation), None)
