"""One file, read from its committed offset to its end, again and again as it grows.

A harvester belongs to one file identity (device, inode, first line) and survives
renames: it keeps the open descriptor, so a rotated file is read to its end before it
is closed. At every end of file it looks at what happened to the file: shrunk or given a
new first line (truncation, copytruncate) → start again at 0 in a new generation, the
events flagged; deleted or replaced at its path → finish reading and stop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents.logship.bulk import Docs
from agents.logship.events import EventBuilder
from agents.logship.fingerprint import HEAD_LIMIT, FileId, fingerprint, starts_with
from agents.logship.lines import Line, LineRun, LineSplitter
from agents.logship.multiline import Joiner
from agents.logship.registry import TAIL_BYTES, tail_hash

# Below glibc's 128 KiB mmap threshold (see memory.MALLOC_SETTINGS): 256 KiB reads, each a
# fresh bytes object, left the catch-up's peak RSS ~6 MiB higher for the same CPU.
READ_SIZE = 120 * 1024
TAIL = TAIL_BYTES  # bytes before the position compared before each read
INLINE_READ = 64 * 1024  # new bytes up to this are read on the event loop

Put = Callable[[Docs], Awaitable[None]]


class Window:
    """A chunk just read, and the TAIL bytes read before it: what the hash of the bytes
    before an offset inside it (registry.tail_of) is made of, without reading again."""

    __slots__ = ("before", "chunk", "start")

    def __init__(self, before: bytes, chunk: bytes, start: int) -> None:
        self.before, self.chunk, self.start = before, chunk, start  # chunk's file offset

    def tail_before(self, end: int) -> str | None:
        """registry.tail_of(fd, end) from what was read; None when it does not reach."""
        lo = max(0, end - TAIL_BYTES)
        if lo < self.start - len(self.before) or end > self.start + len(self.chunk):
            return None  # ends before the window, or after it
        if lo >= self.start:
            return tail_hash(self.chunk[lo - self.start : end - self.start])
        before = self.before[len(self.before) - (self.start - lo) :]
        return tail_hash(before + self.chunk[: max(0, end - self.start)])


@dataclass(frozen=True, slots=True)
class Look:
    """What one look at an open file found (files.change_of says what it means)."""

    size: int
    deleted: bool  # no link left
    same_start: bool  # it still starts with the bytes that identified it
    rewritten: bool  # the bytes before the read position are not the ones read
    at_path: bool | None  # its path still names it (None: cannot tell)


class Harvester:
    def __init__(
        self,
        path: str,
        fd: int,
        file_id: FileId,
        *,
        offset: int,
        generation: int,
        builder: EventBuilder,
        put: Put,
        index_for: Callable[[float], str],
        max_line_bytes: int,
        joiner: Joiner | None = None,
        multiline_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.fd, self.id = path, fd, file_id
        self.key = file_id.key
        self.generation = generation
        self.builder, self._put, self.index_for = builder, put, index_for
        self.max_line_bytes = max_line_bytes
        self.splitter = LineSplitter(offset, max_bytes=max_line_bytes)
        self.joiner, self.multiline_timeout = joiner, multiline_timeout
        self.flags: tuple[str, ...] = ()
        self.clock = clock
        self.last_growth = clock()
        self.last_line_at = clock()
        self.finished = False  # deleted or rotated away and read to the end
        self.wakeup = asyncio.Event()
        self._tail = b""  # the last TAIL bytes read, to notice a rewrite behind our back
        self.rewritten = False

    @property
    def position(self) -> int:
        """Offset just past everything read."""
        return self.splitter.position

    async def read_available(self) -> int:
        """Read up to the current end of file; returns how many bytes were read."""
        total = 0
        loop = asyncio.get_running_loop()
        while True:
            if self._rewritten_behind():
                self.rewritten = True  # a look says "truncated": read again from 0
                break
            if os.fstat(self.fd).st_size - self.position <= INLINE_READ:
                # A live file's few new lines: from the page cache in microseconds, cheaper
                # than a hop to a worker thread and back.
                chunk = os.pread(self.fd, READ_SIZE, self.position)
            else:
                chunk = await loop.run_in_executor(None, os.pread, self.fd, READ_SIZE,
                                                   self.position)  # fmt: skip
            if not chunk:
                break
            total += len(chunk)
            window = Window(self._tail, chunk, self.position)
            self._tail = chunk[-TAIL:] if len(chunk) >= TAIL else (self._tail + chunk)[-TAIL:]
            now = time.time()  # the read time: @timestamp of these lines
            for item in self.splitter.feed_runs(chunk):
                if isinstance(item, LineRun):
                    if self.joiner is None:
                        docs = self.builder.render_run(
                            item, index=self.index_for(now), key=self.key,
                            generation=self.generation, path=self.path, flags=self.flags,
                            now=now, max_bytes=self.max_line_bytes,
                        )  # fmt: skip
                        if docs is not None:
                            docs.tail = window.tail_before(docs.end)
                            await self._put(docs)
                            continue
                    await self._lines(item.lines(self.max_line_bytes), now, window)
                else:
                    await self._lines([item], now, window)
            if len(chunk) < READ_SIZE:
                break
        if total:
            self.last_growth = self.clock()
        return total

    async def _lines(self, lines: list[Line], now: float, window: Window) -> None:
        if self.joiner is not None:
            self.last_line_at = self.clock()
            lines = [event for line in lines for event in self.joiner.feed(line)]
        await self._emit(lines, now, window)

    async def _emit(
        self, lines: list[Line], now: float | None = None, window: Window | None = None
    ) -> None:
        if not lines:
            return
        now = time.time() if now is None else now
        for docs in self.builder.render_lines(
            lines, index=self.index_for(now), key=self.key, generation=self.generation,
            path=self.path, flags=self.flags, now=now,
        ):  # fmt: skip
            if window is not None:
                docs.tail = window.tail_before(docs.end)
            await self._put(docs)

    async def flush_multiline_if_due(self) -> None:
        """Release a pending joined event after `multiline_timeout` without new lines."""
        quiet = self.clock() - self.last_line_at >= self.multiline_timeout
        if self.joiner is not None and self.joiner.pending and quiet:
            await self._emit(self.joiner.flush())

    async def finish(self) -> None:
        """At drain or when the file is gone: ship the partial last line and pending joins."""
        pending: list[Line] = []
        last = self.splitter.flush()
        if self.joiner is not None:
            if last is not None:
                pending += self.joiner.feed(last)
            pending += self.joiner.flush()
        elif last is not None:
            pending.append(last)
        await self._emit(pending)

    def _rewritten_behind(self) -> bool:
        """Whether the bytes just before our position are no longer the ones we read: the
        file was truncated and written past our position while we were not looking (a
        full memory budget holds a harvester in the middle of its reads)."""
        if not self._tail:
            return False
        at = self.position - len(self._tail)
        return os.pread(self.fd, len(self._tail), at) != self._tail

    def look(self) -> Look:
        """Look at the file (its descriptor, and what its path names now)."""
        info = os.fstat(self.fd)
        size = info.st_size
        # The start is read only when the size says something may have happened.
        same_start = size == 0 or size == self.position or self.starts_as_before()
        try:
            at = os.stat(self.path)
            at_path: bool | None = (at.st_dev, at.st_ino) == (info.st_dev, info.st_ino)
        except FileNotFoundError:
            at_path = False
        except OSError:
            at_path = None
        return Look(size, info.st_nlink == 0, same_start, self.rewritten, at_path)

    def restart(self, generation: int) -> None:
        """The file was truncated: read it again from 0 as a new generation."""
        self.generation = generation
        self.splitter = LineSplitter(0, max_bytes=self.max_line_bytes)
        self._tail, self.rewritten = b"", False
        if self.joiner is not None:
            self.joiner.flush()  # what was pending belonged to the old content
        self.flags = ("truncated",)

    def adopt(self, file_id: FileId, generation: int) -> None:
        """Truncated and rewritten with another first line: it is now that file, from 0."""
        self.id, self.key = file_id, file_id.key
        self.restart(generation)

    def starts_as_before(self) -> bool:
        """Whether the file still starts with the bytes that identified it."""
        return starts_with(os.pread(self.fd, HEAD_LIMIT, 0), self.id)

    def reidentify(self, *, final: bool = False) -> FileId | None:
        """The file's identity as a fresh look would take it now (None while its new first
        line is incomplete and not `final`)."""
        return fingerprint(self.fd, final=final)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
