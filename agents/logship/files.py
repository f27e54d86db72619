"""The file table (the prospector): which files are read, from where, and what happened
to each, keyed by file identity.

What a look at a file means and what to do about it are pure functions over what the
look found (`decide.py`), tested without files or processes; `FileTable` does the looking
and the acting. Filebeat's
filestream prospector and Vector's file server are the models: file-system events become
typed changes (new, grown, renamed, truncated, rewritten, deleted, idle, forgotten), and
each is decided in one place.

Each file has one `Harvester` task (supervised: a bug in it fails logship), which owns
the file's reading state. A harvester keeps its descriptor across renames, so a rotated
file is read to its end before it is closed; a file idle for `close_inactive` is closed
(its descriptor given back) and opened again once it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from agents._aio import wait_event
from agents._log import Logger
from agents.logship.checkpoint import Checkpointer
from agents.logship.decide import (
    POLL,
    Change,
    Idle,
    Inode,
    Seen,
    Step,
    after_finish,
    change_of,
    next_step,
    on_scan,
    poll_interval,
    where_to_start,
)
from agents.logship.discovery import scan
from agents.logship.events import EventBuilder
from agents.logship.fingerprint import HEAD_LIMIT, fingerprint
from agents.logship.harvester import Harvester
from agents.logship.multiline import Joiner
from agents.logship.pipeline import Pipeline
from agents.logship.registry import Entry, file_id, tail_of

# --- the table ---------------------------------------------------------------------------


@dataclass
class Phase:
    """Where the lifecycle stands, as the file table needs to know it."""

    draining: bool = False  # SIGTERM: read on until quiet
    final: bool = False  # the drain's last pass: read to the end once more and stop
    stop_now: bool = False  # a second signal or a failure: stop where you are
    keep_partial: bool = False  # writers still alive at the last pass: a partial last
    # line (and lines a multiline join holds) wait for the next start, never cut in two


class FileTable:
    def __init__(
        self,
        config: Any,
        *,
        log: Logger,
        checkpoints: Checkpointer,
        pipeline: Pipeline,
        builder: EventBuilder,
        index_for: Callable[[float], str],
        new_joiner: Callable[[], Joiner | None],
        start: Callable[[str, Coroutine[Any, Any, None]], asyncio.Task[None]],
        phase: Phase,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.log, self.phase, self.clock = config, log, phase, clock
        self.checkpoints, self.registry = checkpoints, checkpoints.registry
        self.pipeline, self.builder = pipeline, builder
        self.index_for, self.new_joiner, self.start = index_for, new_joiner, start
        self.harvesters: dict[str, Harvester] = {}  # by file key
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.by_inode: dict[Inode, str] = {}
        self.waiting_for_first_line: set[str] = set()
        self.seen: set[Inode] = set()  # the files the last scan saw
        # Files closed as inactive: a scan reopens one once it changed, not merely because
        # it is still there; the drain also reopens those with bytes left after their last
        # line, to ship them.
        self.idle: dict[Inode, Idle] = {}
        self.first_scan = True
        self.wake_scanner = asyncio.Event()
        self._reported: set[str] = set()

    # --- scanning and opening -------------------------------------------------------------

    async def scan(self) -> None:
        paths, problems = await asyncio.to_thread(scan, self.config.paths, self.config.exclude)
        for problem in problems:
            if problem not in self._reported:  # once per path, not once per scan
                self._reported.add(problem)
                self.log.warning("skipping a path", error=problem)
        seen: set[Inode] = set()
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                continue
            inode = (info.st_dev, info.st_ino)
            seen.add(inode)
            key = self.by_inode.get(inode)
            decision = on_scan(info.st_size, info.st_mtime_ns, self.idle.get(inode),
                               known=key is not None, draining=self.phase.draining)  # fmt: skip
            if decision is Seen.SKIP:
                continue
            self.idle.pop(inode, None)
            if decision is Seen.NEW:
                self._open(path, info.st_size)
                continue
            harvester = self.harvesters.get(key or "")
            if harvester is None:
                continue
            if harvester.path != path and change_of(harvester.look(), harvester.position) is (
                Change.OK
            ):
                harvester.path = path  # renamed, and nothing else: it is read by its new name
            harvester.wakeup.set()
        self.seen = seen
        self.idle = {inode: state for inode, state in self.idle.items() if inode in seen}
        self.first_scan = False

    def _open(self, path: str, size: int) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            if path not in self.waiting_for_first_line:
                self.log.warning("cannot open", path=path, error=exc.strerror)
                self.waiting_for_first_line.add(path)
            return
        try:
            found = fingerprint(fd, final=self.phase.final)
            first = os.pread(fd, HEAD_LIMIT, 0)
            entry = None if found is None else self.registry.find(found, first)
            tail_ok = entry is None or not entry.tail or tail_of(fd, entry.offset) == entry.tail
        except OSError as exc:
            os.close(fd)
            self.log.warning("cannot read", path=path, error=exc.strerror)
            return
        if found is None:  # empty, or the first line is still being written
            os.close(fd)
            self.waiting_for_first_line.add(path)
            return
        self.waiting_for_first_line.discard(path)
        # A file once identified by its partial first line keeps that identity.
        ident = found if entry is None else file_id(entry)
        start = where_to_start(
            None if entry is None else entry.offset, size, tail_ok=tail_ok,
            start_at_end=self.config.start_at == "end", first_scan=self.first_scan,
        )  # fmt: skip
        if entry is None:
            offset = _after_last_newline(fd, size) if start == "end" else 0
            entry = Entry(ident.key, dev=ident.dev, ino=ident.ino, head=ident.head,
                          head_len=ident.length, path=path, offset=offset)  # fmt: skip
            self.registry.put(entry)
        elif start == "rewritten":
            # Truncated, or rewritten past the old offset with the same first line, while
            # logship was away: what it held is gone; read what is there from the start.
            self.registry.restart(ident.key)
            self.log.warning("file rewritten while logship was away: reading it from the start",
                             path=path, file_id=ident.key)  # fmt: skip
        self.pipeline.track(ident.key, entry.generation, entry.offset)
        harvester = Harvester(
            path, fd, ident,
            offset=entry.offset, generation=entry.generation, builder=self.builder,
            put=self.pipeline.put_docs, index_for=self.index_for,
            max_line_bytes=self.config.max_line_bytes, joiner=self.new_joiner(),
            multiline_timeout=self.config.multiline_timeout, clock=self.clock,
        )  # fmt: skip
        if entry.generation and entry.offset == 0:
            harvester.flags = ("truncated",)
        self.harvesters[ident.key] = harvester
        self.by_inode[(ident.dev, ident.ino)] = ident.key
        self.tasks[ident.key] = self.start(f"harvester {path}", self._harvest(harvester))
        self.log.info("file opened", path=path, file_id=ident.key, offset=entry.offset)

    # --- one file's loop ------------------------------------------------------------------

    async def _harvest(self, h: Harvester) -> None:
        """One file's loop: read, look at the file, do what `next_step` says. Anything but
        an OSError is a bug and fails logship (the supervisor): a file silently no longer
        read would lose its lines."""
        try:
            while not self.phase.stop_now:
                final = self.phase.final
                h.wakeup.clear()  # a change from here on is read at the next turn
                read = await h.read_available()
                if final:  # drain: everything up to the end is read; ship the partial rest
                    if not self.phase.keep_partial:
                        await h.finish()
                    h.finished = True
                    return
                await h.flush_multiline_if_due()
                change = change_of(h.look(), h.position)
                quiet = self.clock() - h.last_growth
                step = next_step(
                    change, read=read, quiet=quiet, draining=self.phase.draining,
                    unacknowledged=self.unacknowledged(h), drain_quiet=self.config.drain_quiet,
                    close_inactive=self.config.close_inactive,
                )  # fmt: skip
                if step is Step.RESTART:
                    if not await self._truncated(h):
                        return
                elif step is Step.CLOSE_GONE:
                    await h.finish()
                    h.finished = True
                    why = "deleted" if change is Change.DELETED else "rotated"
                    self.log.info("file closed", path=h.path, file_id=h.key, reason=why)
                    return
                elif step is Step.CLOSE_IDLE:
                    self.log.info("file closed", path=h.path, file_id=h.key, reason="inactive")
                    info = os.fstat(h.fd)
                    left_over = h.splitter.pending_bytes > 0 or bool(h.joiner and h.joiner.pending)
                    self.idle[(info.st_dev, info.st_ino)] = (
                        info.st_size, info.st_mtime_ns, left_over
                    )  # fmt: skip
                    self._drop(h)
                    return
                elif step is Step.WAIT:
                    # A live file's few new lines: wait for the next change rather than look
                    # again now and find nothing (the watcher said if there is more).
                    await wait_event(h.wakeup, poll_interval(quiet, draining=self.phase.draining))
        except OSError as exc:  # the file's trouble (EIO, a stale NFS handle), not ours
            self.log.error("file read failed", path=h.path, file_id=h.key, error=exc.strerror)

    async def _truncated(self, h: Harvester) -> bool:
        """Read a truncated file again from 0, under the identity a restart would give it.

        With a new start the file is a new identity (so a logship started later finds the
        same one and resumes instead of shipping it all again); still starting as before
        it stays the same identity in a new generation, so its new lines get new ids.
        Returns False when logship stops before the new first line is complete.
        """
        while (new_id := h.reidentify(final=self.phase.final)) is None:
            if self.phase.stop_now or self.phase.final:
                return False
            await wait_event(h.wakeup, POLL)
            h.wakeup.clear()
        old_key = h.key
        if h.starts_as_before():
            generation = self.registry.restart(old_key)
            self.pipeline.track(old_key, generation, 0)
            h.restart(generation)
        else:
            entry = self.registry.get(new_id.key)
            if entry is None:
                entry = Entry(new_id.key, dev=new_id.dev, ino=new_id.ino, head=new_id.head,
                              head_len=new_id.length, path=h.path)  # fmt: skip
                self.registry.put(entry)
            else:
                self.registry.restart(new_id.key)
            self.checkpoints.forget(old_key)  # its content is gone
            generation = entry.generation
            self.pipeline.track(new_id.key, generation, 0)
            h.adopt(new_id, generation)
            self.harvesters[new_id.key] = self.harvesters.pop(old_key)
            self.tasks[new_id.key] = self.tasks.pop(old_key)
            self.by_inode[(new_id.dev, new_id.ino)] = new_id.key
        self.log.warning("file truncated: reading it again from the start", path=h.path,
                         file_id=h.key, generation=generation)  # fmt: skip
        return True

    def _drop(self, h: Harvester) -> None:
        h.close()
        self.harvesters.pop(h.key, None)
        self.tasks.pop(h.key, None)
        self.by_inode = {k: v for k, v in self.by_inode.items() if v != h.key}

    def unacknowledged(self, h: Harvester) -> int:
        return self.checkpoints.unacknowledged(h.key, h.generation, h.position)

    async def tidy(self) -> None:
        """The files read to their end after a rotation or a deletion: let go or forget
        (`after_finish`; checkpoint.py has the rest of the forget policy)."""
        for h in list(self.harvesters.values()):
            if not h.finished or h.fd < 0:
                continue
            deleted = _deleted(h.fd)
            decision = after_finish(deleted=deleted, unacknowledged=self.unacknowledged(h))
            if decision == "let go":
                # Its entry keeps the offset, and an unchanged file is not opened again.
                info = os.fstat(h.fd)
                self.idle[(info.st_dev, info.st_ino)] = (info.st_size, info.st_mtime_ns, False)
                self._drop(h)
            elif decision == "forget":
                self._drop(h)
                self.checkpoints.forget(h.key, h.generation)
                self.log.info("file forgotten", path=h.path, file_id=h.key, reason="deleted")

    def held(self) -> tuple[set[str], set[Inode]]:
        """The keys open and the inodes known: never forgotten as vanished."""
        return set(self.harvesters), set(self.by_inode) | self.seen

    # --- what the watcher and the lifecycle say --------------------------------------------

    def on_change(self, path: str) -> None:
        """On the loop, from the watcher: something changed at `path`."""
        owners = [h for h in self.harvesters.values() if h.path == path and not h.finished]
        for harvester in owners:
            harvester.wakeup.set()
        # A harvester keeps the path of its file until it finished reading it after a
        # rename: a new file at that path is the scanner's business (one stat, no rescan
        # for each write to a file that is still where it was).
        if not owners or not _still_at(path, owners):
            self.wake_scanner.set()

    def wake_all(self) -> None:
        """Every harvester looks at its file now (a signal, or inotify lost events)."""
        self.wake_scanner.set()
        for harvester in self.harvesters.values():
            harvester.wakeup.set()

    def active(self) -> list[Harvester]:
        return [h for key, h in self.harvesters.items()
                if not h.finished and not self.tasks[key].done()]  # fmt: skip

    def at_end(self) -> bool:
        """Every file still read is read to its end."""
        return all(_at_end(h) for h in self.active())

    def last_growth(self) -> float:
        """When a file still read last grew (0.0 when none is read)."""
        return max((h.last_growth for h in self.active()), default=0.0)

    def being_read(self) -> set[tuple[int, int]]:
        """(device, inode) of every file still read, or closed as inactive and watched
        for growth: whose writers the drain waits for (an app idle for longer than
        --close-inactive still writes its shutdown line to the file it holds)."""
        ids = set(self.idle)
        for h in self.active():
            with contextlib.suppress(OSError):
                if h.fd >= 0:
                    st = os.fstat(h.fd)
                    ids.add((st.st_dev, st.st_ino))
        return ids

    async def read_to_the_end(self, within: float, stopping: asyncio.Event) -> None:
        """The drain's last pass: each harvester's own task reads the rest and its partial
        last line (never a second reader, which would hand over lines out of order), until
        all are done, `within` seconds pass, or `stopping` is set."""
        self.phase.final = True
        await self.scan()  # files holding only a partial first line open now, as final
        for harvester in self.harvesters.values():
            harvester.wakeup.set()
        running = [task for task in self.tasks.values() if not task.done()]
        if running and not self.phase.stop_now:
            finished = asyncio.ensure_future(asyncio.wait(running))
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait((finished, stop), timeout=max(0.0, within),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finished.cancel()
            stop.cancel()
        # A task still waiting for memory now (Elasticsearch down, budget full) is
        # cancelled where it stands; what it did not hand over was not committed, and the
        # next start reads it again.
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def lag(self) -> dict[str, int]:
        """Bytes written but not yet read, by path (for /metrics)."""
        behind: dict[str, int] = {}
        for h in self.harvesters.values():
            try:
                behind[h.path] = max(0, os.fstat(h.fd).st_size - h.position) if h.fd >= 0 else 0
            except OSError:
                continue
        return behind

    def close(self) -> None:
        for harvester in self.harvesters.values():
            harvester.close()


def _at_end(h: Harvester) -> bool:
    if h.fd < 0:
        return True
    try:
        return os.fstat(h.fd).st_size <= h.position
    except OSError:
        return True


def _still_at(path: str, harvesters: list[Harvester]) -> bool:
    """Whether `path` names the file one of `harvesters` reads."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return any((h.id.dev, h.id.ino) == (info.st_dev, info.st_ino) for h in harvesters)


def _deleted(fd: int) -> bool:
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return False


def _after_last_newline(fd: int, size: int) -> int:
    """--start-at end: skip what is there, but not a line being written right now."""
    tail = os.pread(fd, min(size, 65536), max(0, size - 65536))
    newline = tail.rfind(b"\n")
    return size - len(tail) + newline + 1 if newline >= 0 else size
