"""logship's lifecycle: start, watch and ship, drain on SIGTERM, commit, exit.

`App` is the lifecycle owner: it builds the parts (before the loop), and its supervisor
owns every task: the pipeline, the checkpointer's writer, one harvester per file, the
scanner, the status server; a task that fails makes logship commit what was acknowledged
and exit 1. Signal handlers only set flags. On the first SIGTERM
logship keeps reading — in a co-located sidecar the app is still writing its shutdown
lines — until every file is at its end and none grew for `drain_quiet` (or until
`drain_timeout`), ships it all, commits the registry and exits 0. A second signal
commits what was acknowledged and exits at once.

With `--template-file`, logship watches and reads its files at once — /readyz does not
wait for Elasticsearch, and startup lines wait in the memory budget — but the pipeline
sends nothing before the template is installed: an unreachable Elasticsearch is asked
again with backoff, forever, as for bulk requests; a template it refuses ends logship
with exit code 2 and a line naming the file and the reason.

Positions, and when files are forgotten: `checkpoint.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from agents._aio import wait_event
from agents._log import Logger
from agents._options import OptionError
from agents._stray import asyncio_handler
from agents._supervise import Failure, Supervisor
from agents.logship.bulk import Event, ItemResult
from agents.logship.checkpoint import Checkpointer
from agents.logship.discovery import Watcher, scan
from agents.logship.events import EventBuilder, parse_labels_file
from agents.logship.fingerprint import HEAD_LIMIT, fingerprint
from agents.logship.harvester import INLINE_READ, Harvester
from agents.logship.multiline import Joiner, MultilineError
from agents.logship.output.deadletter import DeadLetterFile, DeadLetterIndex
from agents.logship.output.elasticsearch import ElasticsearchSender, client_options
from agents.logship.output.template import TemplateRefused, install_template, load_template
from agents.logship.pipeline import Pipeline
from agents.logship.registry import Entry, Registry, file_id, tail_of
from agents.logship.server import StatusServer, render_metrics

POLL = 0.25  # how often a harvester looks at its file without an inotify wake-up...
IDLE_POLL = 2.0  # ...growing to this while the file stays quiet (inotify still wakes it)


def poll_interval(quiet: float, *, draining: bool) -> float:
    """How long a harvester waits for an inotify wake-up before it looks at its file: POLL
    while the file grows or logship drains; then doubling with each second of quiet, up to
    IDLE_POLL, so an idle pod's files cost a wake-up every 2 s instead of 4 a second each.
    (The poll is for what inotify misses: network filesystems, a truncation with no write.)"""
    if draining or quiet < 1.0:
        return POLL
    return min(IDLE_POLL, POLL * 2 ** min(int(quiet), 8))


class App:
    """logship's lifecycle owner. Made (the build step, before the event loop: secrets,
    TLS files, labels, the template file, the data dir probe and the registry are read
    here, so no blocking I/O runs in the loop at start), then `run()`: `startup()` →
    `serve()` until a signal or a failure → `drain()` → `shutdown()`."""

    def __init__(self, config: Any, log: Logger, env: Mapping[str, str] | None = None) -> None:
        self.config, self.log = config, log
        self.env = os.environ if env is None else env
        self.registry = Registry(config.data_dir)
        self.checkpoints = Checkpointer(self.registry, log)
        self.harvesters: dict[str, Harvester] = {}  # by file key
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.by_inode: dict[tuple[int, int], str] = {}
        self.waiting_for_first_line: set[str] = set()
        self.ready = False
        self.draining = False
        self.stop_now = False
        self._signals = 0
        self._wake_scanner = asyncio.Event()
        self._stopping = asyncio.Event()  # set with stop_now
        self._leave = asyncio.Event()  # serve() returns: a signal, or a failure
        self._opened = asyncio.Event()  # the first scan's files are open: imports may run
        self._first_scan = True
        self._final_read = False  # drain: each harvester reads to its end once more and stops
        self._seen: set[tuple[int, int]] = set()  # (dev, ino) of the files the last scan saw
        # Files closed as inactive, by (dev, ino): (size, mtime, left over) then. A scan
        # reopens one once it changed, not merely because it is still there; the drain also
        # reopens those with bytes left after their last line, to ship them.
        self._idle: dict[tuple[int, int], tuple[int, int, bool]] = {}
        self._reported: set[str] = set()
        self.supervisor = Supervisor(log, quiet=(OptionError,), on_failure=self._failed)
        self._undo = contextlib.ExitStack()  # global state set by startup(), undone in shutdown()
        self.server: StatusServer | None = None
        self.watcher: Watcher | None = None
        self._build()
        for warning in self.registry.load():
            self.log.warning("registry", error=warning)

    # --- the build step -------------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.config
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            probe = cfg.data_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OptionError(
                f"--data-dir: cannot write to {cfg.data_dir}: {exc.strerror}"
            ) from None
        labels: dict[str, str] = {}
        if cfg.labels_file is not None and cfg.labels_file.is_file():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                labels = parse_labels_file(cfg.labels_file.read_text(encoding="utf-8"))
        fields = dict(pair.split("=", 1) for pair in cfg.field)
        stream = tuple(cfg.data_stream.split(".", 1)) if cfg.data_stream else None
        json_mode = {"off": None, "root": "", "key": cfg.json_key}[cfg.json_lines]
        self.template = load_template(cfg.template_file) if cfg.template_file else None
        self.builder = EventBuilder(
            fields=fields, json_mode=json_mode, timestamp_field=cfg.timestamp_field or None,
            env=self.env, labels=labels, data_stream=stream,  # type: ignore[arg-type]
        )  # fmt: skip
        if cfg.multiline_preset or cfg.multiline_pattern:
            try:
                self._joiner_spec = (cfg.multiline_preset, cfg.multiline_pattern)
                self._new_joiner()
            except MultilineError as exc:
                raise OptionError(f"--multiline-pattern: {exc}") from None
        else:
            self._joiner_spec = None
        self.index_name = f"logs-{stream[0]}-{stream[1]}" if stream else None
        if cfg.insecure:
            self.log.warning("TLS verification of Elasticsearch disabled (--insecure)")
        self.sender = ElasticsearchSender(client_options(cfg))  # raises OptionError
        dead_letter_file = DeadLetterFile(cfg.data_dir)
        self.dead_letter: DeadLetterFile | DeadLetterIndex = dead_letter_file
        if cfg.dead_letter.startswith("index:"):
            self.dead_letter = DeadLetterIndex(self.sender, cfg.dead_letter.split(":", 1)[1],
                                               fallback=dead_letter_file, log=self.log)  # fmt: skip
        self.pipeline = Pipeline(
            self.sender,
            commit=self._commit,
            dead_letter=self._dead,
            log=self.log,
            batch_docs=cfg.batch_docs,
            batch_bytes=cfg.batch_bytes,
            flush_interval=cfg.flush_interval,
            max_in_flight=cfg.max_in_flight,
            queue_bytes=cfg.queue_bytes,
        )

    def _new_joiner(self) -> Joiner | None:
        if self._joiner_spec is None:
            return None
        preset, pattern = self._joiner_spec
        cfg = self.config
        if preset:
            return Joiner.preset(preset, max_lines=cfg.multiline_max_lines)
        return Joiner(pattern, negate=cfg.multiline_negate, match=cfg.multiline_match,
                      max_lines=cfg.multiline_max_lines)  # fmt: skip

    def _index_for(self, now: float) -> str:
        return self.index_name or time.strftime(self.config.index, time.gmtime(now))

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> int:
        """Start, ship until SIGTERM, drain, shut down → the exit code (0, or 1 after a
        failure). A configuration error found while running raises OptionError (exit 2)."""
        try:
            await self.startup()
            await self.serve()
            if self.draining and not self.stop_now:
                await self.drain()
        finally:
            await self.shutdown()
        failure = self.supervisor.failure
        if failure is not None and isinstance(failure.error, OptionError):
            raise failure.error
        return 1 if failure is not None else 0

    @property
    def alive(self) -> bool:
        """False once a task failed: /healthz and /readyz say so at once."""
        return self.supervisor.failure is None

    def _failed(self, failure: Failure) -> None:
        """A supervised task failed: stop everything now (what was acknowledged is
        committed at shutdown) rather than go on looking alive while shipping nothing."""
        self.ready = False
        self.stop_now = True
        self._stopping.set()
        self._leave.set()
        self._wake_scanner.set()

    async def startup(self) -> None:
        """Handlers, the status server, the watcher and the first scan; ready after it."""
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        loop.set_exception_handler(asyncio_handler(self.log))
        self._undo.callback(loop.set_exception_handler, previous)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.handle_signal, signum)
            self._undo.callback(loop.remove_signal_handler, signum)
        # The transport logs every dead-node timeout itself: our own lines say it once.
        transport_log = logging.getLogger("elastic_transport")
        self._undo.callback(transport_log.setLevel, transport_log.level)
        transport_log.setLevel(logging.CRITICAL)
        listening: asyncio.Task[None] | None = None
        if self.config.http_port:
            # /healthz answers during a long first scan; /readyz once it is done. The
            # server's imports run in a thread meanwhile, as does the client's (_ship).
            self.server = StatusServer(self.config.http_host, self.config.http_port,
                                       ready=lambda: self.ready and self.alive,
                                       alive=lambda: self.alive, metrics=self._metrics)  # fmt: skip
            listening = self.supervisor.start("status-server", self._listen(self.server))
        guard = self.supervisor.guard
        self.watcher = Watcher(self.config.paths, guard("watcher", self._on_change), loop,
                               overflow=guard("watcher", self._look_everywhere),
                               backend=self.config.watch,
                               on_error=partial(self.supervisor.fail, "watcher"))  # fmt: skip
        self.supervisor.start("pipeline", self._ship())
        held = lambda: (self.harvesters.keys(), set(self.by_inode) | self._seen)  # noqa: E731
        self.supervisor.start("registry-saver", self.checkpoints.run(lambda: self._prune(), held))
        for problem in self.watcher.start():
            self.log.warning("watch", error=problem)
        await self._scan()
        self._opened.set()
        if listening is not None:
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((listening, stopping), return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        if self.stop_now:
            return
        self.ready = True
        port = self.server.port if self.server else None
        self.log.info("started", paths=list(self.config.paths), es=len(self.config.es),
                      files=len(self.harvesters), http_port=port)  # fmt: skip

    async def _listen(self, server: StatusServer) -> None:
        try:
            await server.setup()
        except OSError as exc:
            where = f"{self.config.http_host}:{self.config.http_port}"
            raise OptionError(f"--http-port: cannot listen on {where}: {exc.strerror}") from None

    async def serve(self) -> None:
        """Watch and ship until a signal or a failure; the scanner is a supervised task."""
        if self.stop_now:
            return
        scanner = self.supervisor.start("scanner", self._watch_until_signal())
        await self._leave.wait()
        await self.supervisor.cancel([scanner])

    async def shutdown(self) -> None:
        """Stop every task, commit what was acknowledged, close, and undo what startup()
        set up. Runs after a drain, a second signal and a failure alike."""
        if self.watcher is not None:
            self.watcher.stop()
        await self.supervisor.cancel()
        self.checkpoints.save("shutdown")
        for harvester in self.harvesters.values():
            harvester.close()
        await self.sender.close()
        if self.server is not None:
            await self.server.cleanup()
        self._undo.close()

    async def _ship(self) -> None:
        """Import the client (in a thread), install the index template, if any; then run
        the pipeline."""
        await self._opened.wait()  # the GIL goes to opening the files first
        await self.sender.warm()
        if self.template is not None:
            try:
                await install_template(self.sender, self.template, self.log)
            except TemplateRefused as exc:
                raise OptionError(str(exc)) from None
        await self.pipeline.run()

    def handle_signal(self, signum: int) -> None:
        """Only flags (and wake-ups): the lifecycle methods act on them."""
        self._signals += 1
        if self._signals == 1:
            self.draining = True
            self.drain_started = time.monotonic()
            self.log.info("draining", signal=signal.Signals(signum).name)
        else:
            self.stop_now = True
            self._stopping.set()
            self.log.warning("second signal: committing what was acknowledged and exiting")
        self._leave.set()
        self._wake_scanner.set()
        for harvester in self.harvesters.values():  # out of an idle poll: look now
            harvester.wakeup.set()

    def _look_everywhere(self) -> None:
        """inotify's queue overflowed: changes were lost, so every file and the globs are
        looked at now rather than at their next poll."""
        self.log.warning("watch", error="inotify queue overflowed; looking at every file")
        self._wake_scanner.set()
        for harvester in self.harvesters.values():
            harvester.wakeup.set()

    def _on_change(self, path: str) -> None:
        """On the loop, from the watcher: something changed at `path`."""
        owners = [h for h in self.harvesters.values() if h.path == path and not h.finished]
        for harvester in owners:
            harvester.wakeup.set()
        # A harvester keeps the path of its file until it finished reading it after a
        # rename: a new file at that path is the scanner's business (one stat, no rescan
        # for each write to a file that is still where it was).
        if not owners or not _still_at(path, owners):
            self._wake_scanner.set()

    async def _watch_until_signal(self) -> None:
        while not (self.draining or self.stop_now):
            await wait_event(self._wake_scanner, self.config.scan_interval)
            self._wake_scanner.clear()
            if not (self.draining or self.stop_now):
                await self._scan()
                for problem in self.watcher.refresh():  # roots that appeared since
                    self.log.warning("watch", error=problem)

    # --- files ----------------------------------------------------------------------------

    async def _scan(self) -> None:
        paths, problems = await asyncio.to_thread(scan, self.config.paths, self.config.exclude)
        for problem in problems:
            if problem not in self._reported:  # once per path, not once per scan
                self._reported.add(problem)
                self.log.warning("skipping a path", error=problem)
        seen: set[tuple[int, int]] = set()
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                continue
            inode = (info.st_dev, info.st_ino)
            seen.add(inode)
            idle = self._idle.get(inode)
            if (
                idle is not None
                and idle[:2] == (info.st_size, info.st_mtime_ns)
                and not (self.draining and idle[2])
            ):
                continue
            self._idle.pop(inode, None)
            key = self.by_inode.get(inode)
            if key is not None:
                harvester = self.harvesters.get(key)
                if harvester is not None and harvester.path != path and harvester.examine() == "ok":
                    harvester.path = path
                if harvester is not None:
                    harvester.wakeup.set()
                continue
            self._open(path, info.st_size)
        self._seen = seen
        self._idle = {inode: state for inode, state in self._idle.items() if inode in seen}
        self._first_scan = False

    def _open(self, path: str, size: int) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            if path not in self.waiting_for_first_line:
                self.log.warning("cannot open", path=path, error=exc.strerror)
                self.waiting_for_first_line.add(path)
            return
        try:
            found = fingerprint(fd, final=self._final_read)
            entry = (
                None if found is None else self.registry.find(found, os.pread(fd, HEAD_LIMIT, 0))
            )
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
        if entry is None:
            start = 0
            if self.config.start_at == "end" and self._first_scan:
                start = _after_last_newline(fd, size)
            entry = Entry(ident.key, dev=ident.dev, ino=ident.ino, head=ident.head,
                          head_len=ident.length, path=path, offset=start)  # fmt: skip
            self.registry.put(entry)
        elif entry.offset > size or (entry.tail and tail_of(fd, entry.offset) != entry.tail):
            # Truncated, or rewritten past the old offset with the same first line, while
            # logship was away: what it held is gone; read what is there from the start.
            self.registry.restart(ident.key)
            self.log.warning("file rewritten while logship was away: reading it from the start",
                             path=path, file_id=ident.key)  # fmt: skip
        self.pipeline.track(ident.key, entry.generation, entry.offset)
        harvester = Harvester(
            path, fd, ident,
            offset=entry.offset, generation=entry.generation, builder=self.builder,
            put=self.pipeline.put_docs, index_for=self._index_for,
            max_line_bytes=self.config.max_line_bytes, joiner=self._new_joiner(),
            multiline_timeout=self.config.multiline_timeout,
        )  # fmt: skip
        if entry.generation and entry.offset == 0:
            harvester.flags = ("truncated",)
        self.harvesters[ident.key] = harvester
        self.by_inode[(ident.dev, ident.ino)] = ident.key
        self.tasks[ident.key] = self.supervisor.start(f"harvester {path}", self._harvest(harvester))
        self.log.info("file opened", path=path, file_id=ident.key, offset=entry.offset)

    async def _truncated(self, h: Harvester) -> bool:
        """Read a truncated file again from 0, under the identity a restart would give it.

        With a new first line the file is a new identity (so a logship started later finds
        the same one and resumes instead of shipping it all again); with the same first
        line it stays the same identity in a new generation, so its new lines get new ids.
        Returns False when logship stops before the new first line is complete.
        """
        while (new_id := h.reidentify(final=self._final_read)) is None:
            if self.stop_now or self._final_read:
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
            self.registry.forget(old_key)  # its content is gone
            generation = entry.generation
            self.pipeline.track(new_id.key, generation, 0)
            h.adopt(new_id, generation)
            self.harvesters[new_id.key] = self.harvesters.pop(old_key)
            self.tasks[new_id.key] = self.tasks.pop(old_key)
            self.by_inode[(new_id.dev, new_id.ino)] = new_id.key
        self.log.warning("file truncated: reading it again from the start", path=h.path,
                         file_id=h.key, generation=generation)  # fmt: skip
        return True

    async def _harvest(self, h: Harvester) -> None:
        """One file's loop: read, look at the file, wait for more. Anything but an OSError
        is a bug and fails logship (the supervisor): a file silently no longer read would
        lose its lines."""
        try:
            while not self.stop_now:
                final = self._final_read
                h.wakeup.clear()  # a change from here on is read at the next turn
                read = await h.read_available()
                if final:  # drain: everything up to the end is read; ship the partial rest
                    await h.finish()
                    h.finished = True
                    return
                await h.flush_multiline_if_due()
                state = h.examine()
                if state == "truncated":
                    if not await self._truncated(h):
                        return
                    continue
                quiet = time.monotonic() - h.last_growth
                if state in ("deleted", "moved") and not read and quiet >= self.config.drain_quiet:
                    await h.finish()
                    h.finished = True
                    why = "deleted" if state == "deleted" else "rotated"
                    self.log.info("file closed", path=h.path, file_id=h.key, reason=why)
                    return
                # Not while lines of it are unacknowledged: reopened, it would read them
                # again from the committed offset, over ranges still in flight.
                if (
                    not read
                    and quiet >= self.config.close_inactive
                    and not self.draining
                    and not self._unacknowledged(h)
                ):
                    self.log.info("file closed", path=h.path, file_id=h.key, reason="inactive")
                    info = os.fstat(h.fd)
                    left_over = h.splitter.pending_bytes > 0 or bool(h.joiner and h.joiner.pending)
                    self._idle[(info.st_dev, info.st_ino)] = (
                        info.st_size, info.st_mtime_ns, left_over
                    )  # fmt: skip
                    self._forget_harvester(h)
                    return
                if read > INLINE_READ:
                    continue  # catching up: read on at once
                # A live file's few new lines: wait for the next change rather than look
                # again now and find nothing (the watcher has already said if there is more).
                await wait_event(h.wakeup, poll_interval(quiet, draining=self.draining))
        except OSError as exc:  # the file's trouble (EIO, a stale NFS handle), not ours
            self.log.error("file read failed", path=h.path, file_id=h.key, error=exc.strerror)

    def _forget_harvester(self, h: Harvester) -> None:
        h.close()
        self.harvesters.pop(h.key, None)
        self.tasks.pop(h.key, None)
        self.by_inode = {k: v for k, v in self.by_inode.items() if v != h.key}

    def _unacknowledged(self, h: Harvester) -> int:
        # track() hands back the file's existing ledger: _open() made one for every harvester
        return self.pipeline.acks.track(h.key, h.generation, h.position).outstanding

    async def _prune(self) -> None:
        """Let go of the files read to their end after a rotation; forget the deleted ones
        (see checkpoint.py for the rest of the forget policy)."""
        for h in list(self.harvesters.values()):
            if h.finished and h.fd >= 0 and not _deleted(h.fd) and not self._unacknowledged(h):
                # Rotated away and read to its end: let go of the descriptor; the registry
                # keeps its offset, and an unchanged file is not opened again.
                info = os.fstat(h.fd)
                self._idle[(info.st_dev, info.st_ino)] = (info.st_size, info.st_mtime_ns, False)
                self._forget_harvester(h)
                continue
            if h.finished and h.fd >= 0 and _deleted(h.fd) and not self._unacknowledged(h):
                self._forget_harvester(h)
                self.pipeline.acks.forget(h.key, h.generation)
                self.checkpoints.forget(h.key)
                self.log.info("file forgotten", path=h.path, file_id=h.key, reason="deleted")

    # --- shutdown -------------------------------------------------------------------------

    async def drain(self) -> None:
        """Read until every file is at its end and quiet, ship everything, within the deadline."""
        cfg = self.config
        started = self.drain_started
        deadline = started + cfg.drain_timeout
        events_before = self.pipeline.stats.events_in
        while time.monotonic() < deadline and not self.stop_now:
            await self._scan()  # files created during shutdown count too
            active = [h for key, h in self.harvesters.items()
                      if not h.finished and not self.tasks[key].done()]  # fmt: skip
            quiet = all(time.monotonic() - h.last_growth >= cfg.drain_quiet for h in active)
            at_end = all(_at_end(h) for h in active)
            if quiet and at_end:
                break
            await asyncio.sleep(0.05)
        # Each harvester's own task reads the rest and its partial last line: never a second
        # reader, which would hand over lines out of order. A task still waiting for memory
        # at the deadline (Elasticsearch down, budget full) is cancelled where it stands;
        # what it did not hand over was not committed, and the next start reads it again.
        self._final_read = True
        await self._scan()  # files holding only a partial first line open now, as final
        for harvester in self.harvesters.values():
            harvester.wakeup.set()
        running = [task for task in self.tasks.values() if not task.done()]
        if running and not self.stop_now:
            finished = asyncio.ensure_future(asyncio.wait(running))
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((finished, stopping), timeout=max(0.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finished.cancel()
            stopping.cancel()
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.pipeline.flush()
        while self.pipeline.unacknowledged and time.monotonic() < deadline and not self.stop_now:
            self.pipeline.flush()
            await asyncio.sleep(0.02)
        if not self.alive:
            return  # a failure ended the drain: said already; shutdown() commits
        left = self.pipeline.unacknowledged
        fields = {
            "events_during_drain": self.pipeline.stats.events_in - events_before,
            "duration": round(time.monotonic() - started, 3),
            "unacknowledged": left,
        }
        if left:
            self.log.error("drain deadline passed: unacknowledged events are re-sent at the "
                           "next start, if the volume survives", **fields)  # fmt: skip
        else:
            self.log.info("drained", **fields)

    # --- bookkeeping ----------------------------------------------------------------------

    def _commit(self, key: str, generation: int, offset: int) -> None:
        harvester = self.harvesters.get(key)
        if harvester is None:
            self.checkpoints.commit(key, generation, offset, path=None, fd=-1)
        else:
            self.checkpoints.commit(key, generation, offset, path=harvester.path,
                                    fd=harvester.fd)  # fmt: skip

    async def _dead(self, event: Event, result: ItemResult) -> None:
        self.log.error(
            "event refused by Elasticsearch: dead-lettered",
            path=event.path, offset=event.offset, status=result.status, error=result.reason[:300],
        )  # fmt: skip
        await self.dead_letter.write(event, result)

    def _metrics(self) -> str:
        lag: dict[str, int] = {}
        for h in self.harvesters.values():
            with contextlib.suppress(OSError):
                lag[h.path] = max(0, os.fstat(h.fd).st_size - h.position) if h.fd >= 0 else 0
        extra = {"files_open": float(len(self.harvesters)),
                 "unacknowledged_events": float(self.pipeline.unacknowledged)}  # fmt: skip
        return render_metrics(self.pipeline.stats, lag, extra)


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
