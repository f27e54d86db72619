"""The checkpointer: which position of each file is committed, when it is written, and
when an entry is forgotten.

It owns the registry (positions by file identity, `registry.py`) and the ledger of
acknowledgements (`acks.py`), which the pipeline fills as events go out and come back: a
position is committed when everything before it was acknowledged (stored or
dead-lettered), never further, with the hash of the bytes before it taken at the read.

The registry is written at most every `SAVE_EVERY` seconds when something changed, and at
shutdown; a write that fails is said once and then once a minute, and its recovery once.

The forget policy, so that rotation does not make the registry grow forever: a deleted
file's entry once it was read to its end and everything from it acknowledged (the file
table says when: `forget`); an entry whose file is neither open, nor at its recorded path,
nor seen by the last scan, once it was not updated for `FORGET_AFTER`. An entry whose file
is still there is never forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Collection

from agents._log import Logger
from agents.logship.acks import AckTracker
from agents.logship.registry import Entry, Registry, tail_of

SAVE_EVERY = 1.0  # registry writes, at most this often (and at shutdown)
# A vanished file's entry is kept this long after its last commit: a file renamed out of
# sight and back, or a volume briefly unmounted, then keeps its place.
FORGET_AFTER = 600.0
SAY_AGAIN = 60.0  # a registry that cannot be written is said again after this long


class Checkpointer:
    def __init__(
        self, registry: Registry, log: Logger, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.registry, self.log, self.wall = registry, log, wall
        self.ledger = AckTracker()

    def unacknowledged(self, key: str, generation: int, position: int) -> int:
        """Events of the file read and not yet committed (tracked from `position` if new)."""
        return self.ledger.track(key, generation, position).outstanding

    def commit(
        self, key: str, generation: int, offset: int, tail: str | None, *, path: str | None,
        fd: int = -1,
    ) -> None:  # fmt: skip
        """Everything of file `key` (in `generation`) before `offset` is acknowledged.
        `tail`, the hash of the bytes before it, travelled with the events from the read
        (a restart compares it, to tell whether the file still holds what was shipped);
        when it is not known, it is read from `fd` (the open file, or -1)."""
        entry = self.registry.get(key)
        if entry is None or entry.generation != generation:
            return  # forgotten or truncated meanwhile: that position means nothing now
        if tail is None:
            tail = ""
            if fd >= 0:
                with contextlib.suppress(OSError):
                    tail = tail_of(fd, offset)
        self.registry.commit(key, offset, path=path, tail=tail)

    def forget(self, key: str, generation: int | None = None) -> None:
        """The file is done with: its entry (and its ledger of `generation`) go."""
        if generation is not None:
            self.ledger.forget(key, generation)
        self.registry.forget(key)

    async def run(
        self,
        tidy: Callable[[], Awaitable[None]],
        held: Callable[[], tuple[Collection[str], Collection[tuple[int, int]]]],
    ) -> None:
        """The periodic writer: every SAVE_EVERY, let the file table `tidy` up, forget the
        vanished entries (`held`: the keys open and the (dev, ino) seen), write if changed."""
        failing_since: float | None = None
        last_said = 0.0
        while True:
            await asyncio.sleep(SAVE_EVERY)
            await tidy()
            await self.forget_vanished(*held())
            # Serialised here, on the loop that changes the entries; written in a thread.
            snapshot = self.registry.snapshot()
            if snapshot is None:
                continue
            try:
                await asyncio.to_thread(self.registry.write, snapshot)
            except OSError as exc:
                now = time.monotonic()
                if failing_since is None or now - last_said >= SAY_AGAIN:
                    self.log.error("registry not saved: will retry", when="periodic",
                                   error=exc.strerror)  # fmt: skip
                    last_said = now
                failing_since = failing_since or now
            else:
                if failing_since is not None:
                    self.log.info("registry saved again", failed_for=round(
                        time.monotonic() - failing_since, 1))  # fmt: skip
                    failing_since = None

    async def forget_vanished(
        self, open_keys: Collection[str], held: Collection[tuple[int, int]]
    ) -> None:
        """Forget the entries not updated for FORGET_AFTER whose file is not open, not
        seen by the last scan, and no longer at its recorded path."""
        cutoff = self.wall() - FORGET_AFTER
        candidates = [e for e in self.registry.stale(cutoff)
                      if e.key not in open_keys and (e.dev, e.ino) not in held]  # fmt: skip
        if not candidates:
            return
        for entry in await asyncio.to_thread(_vanished, candidates):
            # The registry may have changed while the thread looked.
            if (
                self.registry.get(entry.key) is entry
                and entry.updated < cutoff
                and entry.key not in open_keys
            ):
                self.registry.forget(entry.key)
                self.log.info("file forgotten", path=entry.path, file_id=entry.key,
                              reason="vanished")  # fmt: skip

    def save(self, when: str) -> None:
        """Write now if anything changed (at shutdown); a failure is said, not raised."""
        try:
            self.registry.save()
        except OSError as exc:
            self.log.error("registry not saved: will retry", when=when, error=exc.strerror)


def _vanished(entries: list[Entry]) -> list[Entry]:
    """The entries whose file is no longer at their path (runs in a thread: stat may block)."""
    gone = []
    for entry in entries:
        try:
            info = os.stat(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            gone.append(entry)
            continue
        except OSError:
            continue  # cannot tell (permissions, I/O): keep it
        if (info.st_dev, info.st_ino) != (entry.dev, entry.ino):
            gone.append(entry)
    return gone
