"""logship's lifecycle: start, watch and ship, drain on SIGTERM, commit, exit.

`App` is the lifecycle owner: it builds the parts (before the loop), and its supervisor
owns every task: the pipeline, the checkpointer's writer, one harvester per file, the
scanner, the status server; a task that fails makes logship commit what was acknowledged
and exit 1. Signal handlers only set flags. On the first SIGTERM
logship keeps reading — in a co-located sidecar the app is still writing its shutdown
lines — until the processes writing its files are gone (when it can see them:
`writers.py`), every file is at its end and none grew for `drain_quiet` since the signal
(or until `drain_timeout`), ships it all, commits the registry and exits 0. Writers that
outlive the drain (a sidecar restarted alone) are waited for until WRITERS_RESERVE (at most
a fifth of the timeout) is left; then what they wrote ships, and a partial last line waits
for the next start. A second signal commits what was acknowledged and exits at once.

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
import os
import signal
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from agents._aio import wait_event
from agents._log import Logger
from agents._options import OptionError
from agents._stray import asyncio_handler
from agents._supervise import Failure, Supervisor
from agents.logship.bulk import Event, ItemResult
from agents.logship.checkpoint import Checkpointer
from agents.logship.decide import drain_may_end
from agents.logship.discovery import Watcher, path_problems
from agents.logship.events import EventBuilder, parse_labels_file
from agents.logship.files import FileTable, Phase
from agents.logship.memory import give_back_when_quiet
from agents.logship.multiline import Joiner, MultilineError
from agents.logship.output.credentials import Credentials
from agents.logship.output.deadletter import DeadLetterFile, DeadLetterIndex
from agents.logship.output.elasticsearch import ElasticsearchSender, client_options
from agents.logship.output.template import (
    TemplateRefused,
    ensure_data_stream_template,
    install_template,
    load_template,
)
from agents.logship.pipeline import Pipeline
from agents.logship.registry import Registry
from agents.logship.server import StatusServer, render_metrics
from agents.logship.writers import look_around, writers

CREDENTIALS_POLL = 30.0  # seconds: credential files are read again at least this often
WRITERS_RESERVE = 5.0  # seconds of --drain-timeout kept for shipping after the writers


class App:
    """logship's lifecycle owner. Made (the build step, before the event loop: secrets,
    TLS files, labels, the template file, the data dir probe and the registry are read
    here, so no blocking I/O runs in the loop at start), then `run()`: `startup()` →
    `serve()` until a signal or a failure → `drain()` → `shutdown()`."""

    def __init__(
        self,
        config: Any,
        log: Logger,
        env: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        watcher: type[Watcher] = Watcher,
    ) -> None:
        """`clock` (for quiet windows and the drain's deadline) and `watcher` (the file
        watcher's class) are seams for tests; the defaults are what logship runs with."""
        self.config, self.log, self.clock, self._watcher = config, log, clock, watcher
        self.env = os.environ if env is None else env
        self.registry = Registry(config.data_dir)
        self.checkpoints = Checkpointer(self.registry, log)
        self.phase = Phase()
        self.ready = False
        self._signals = 0
        self.drain_started = 0.0
        self.cluster: Any = None  # output.cluster.Cluster, once GET / was answered
        self._stopping = asyncio.Event()  # set with phase.stop_now
        self._leave = asyncio.Event()  # serve() returns: a signal, or a failure
        self._opened = asyncio.Event()  # the first scan's files are open: imports may run
        self.supervisor = Supervisor(log, quiet=(OptionError,), on_failure=self._failed)
        self._undo = contextlib.ExitStack()  # global state set by startup(), undone in shutdown()
        self.server: StatusServer | None = None
        self.watcher: Watcher | None = None
        self._build()
        self.files = FileTable(
            config, log=log, checkpoints=self.checkpoints, pipeline=self.pipeline,
            builder=self.builder, index_for=self._index_for, new_joiner=self._new_joiner,
            start=self.supervisor.start, phase=self.phase, clock=clock,
        )  # fmt: skip
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
        credentials = Credentials(cfg)  # raises OptionError
        self.sender = ElasticsearchSender(client_options(cfg, credentials), credentials)
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
            ledger=self.checkpoints.ledger,
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
            if self.phase.draining and not self.phase.stop_now:
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
        self._stop_now()

    def _stop_now(self) -> None:
        self.phase.stop_now = True
        self._stopping.set()
        self._leave.set()
        self.files.wake_scanner.set()

    async def startup(self) -> None:
        """Handlers, the status server, the watcher and the first scan; ready after it."""
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        loop.set_exception_handler(asyncio_handler(self.log))
        self._undo.callback(loop.set_exception_handler, previous)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.handle_signal, signum)
            self._undo.callback(loop.remove_signal_handler, signum)
        listening: asyncio.Task[None] | None = None
        if self.config.http_port:
            # /healthz answers during a long first scan; /readyz once it is done.
            self.server = StatusServer(self.config.http_host, self.config.http_port,
                                       ready=lambda: self.ready and self.alive,
                                       alive=lambda: self.alive, metrics=self._metrics)  # fmt: skip
            listening = self.supervisor.start("status-server", self._listen(self.server))
        guard = self.supervisor.guard
        self.watcher = self._watcher(
            self.config.paths, guard("watcher", self.files.on_change), loop,
            overflow=guard("watcher", self._look_everywhere), backend=self.config.watch,
            on_error=partial(self.supervisor.fail, "watcher"),
        )  # fmt: skip
        self.supervisor.start("pipeline", self._ship())
        stats = self.pipeline.stats
        self.supervisor.start("memory", give_back_when_quiet(
            lambda: (stats.events_in, stats.events_acked, stats.bulk_requests),
            lambda: bool(self.pipeline.unacknowledged),
        ))  # fmt: skip
        self.supervisor.start("cluster", self._meet_cluster())
        if self.config.stats_interval > 0:
            self.supervisor.start("progress", self._say_progress(self.config.stats_interval))
        if self.sender.credentials is not None and self.sender.credentials.from_files:
            self.supervisor.start("credentials", self._watch_credentials(loop))
        self.supervisor.start(
            "registry-saver", self.checkpoints.run(lambda: self.files.tidy(), self.files.held)
        )
        for problem in self.watcher.start():
            self.log.warning("watch", error=problem)
        await self.files.scan()
        self._opened.set()
        if listening is not None:
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((listening, stopping), return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        if self.phase.stop_now:
            return
        self.ready = True
        port = self.server.port if self.server else None
        self.log.info("started", paths=list(self.config.paths), es=len(self.config.es),
                      files=len(self.files.harvesters), http_port=port)  # fmt: skip
        for glob, problem, hint in await asyncio.to_thread(path_problems, self.config.paths):
            self.log.warning(f"--path {problem}", path=glob, hint=hint)
        sight = await asyncio.to_thread(look_around)
        if not sight.visible:  # said once: the drain looks again (the app may start later)
            self.log.info("the processes writing the files cannot be seen (yet): on SIGTERM "
                          "logship stops once no file grew for --drain-quiet after the "
                          "signal, unless it sees them then", why=sight.why)  # fmt: skip

    async def _meet_cluster(self) -> None:
        """Ask `GET /` until it is answered, and say once what answers: the cluster's
        product, name and version, or that it is not a server logship can ship to. The
        sender settles its dialect from the same answer (the first bulk request may have
        asked first). Shipping does not wait for this; a user allowed to write but not to
        `GET /` (403) is fine."""
        from agents._backoff import Backoff
        from agents.logship.output.elasticsearch import SendFailed

        backoff = Backoff(0.5, 30.0)
        while self.sender.cluster is None:
            try:
                answer = await self.sender.meet()
            except SendFailed:  # the pipeline says so, once
                await asyncio.sleep(backoff.next())
                continue
            if answer is not None and answer.status == 403:
                self.log.info("GET / refused (403): which cluster this is stays unknown; "
                              "shipping does not need it", flavor=self.sender.flavor,
                              sending=self.sender.dialect.json)  # fmt: skip
                return
            if self.sender.cluster is None:  # starting, or the credentials refused
                await asyncio.sleep(backoff.next())
        cluster = self.cluster = self.sender.cluster
        if cluster.problem:
            self.log.error("the server at --es is not one logship can ship to",
                           problem=cluster.problem, product=cluster.product,
                           version=cluster.version or None)  # fmt: skip
            return
        self.log.info(f"{cluster.product} reached", cluster=cluster.name,
                      version=cluster.version, dialect=self.sender.dialect.name)  # fmt: skip
        if self.sender.flavor != "auto" and cluster.dialect is not self.sender.dialect:
            self.log.warning("--flavor does not match the server: requests may be refused",
                             flavor=self.sender.flavor, product=cluster.product,
                             version=cluster.version)  # fmt: skip

    async def _say_progress(self, interval: float) -> None:
        """Every `interval`, when anything was shipped or is left to read: what and how
        far behind (Filebeat's periodic metrics line, in one event)."""
        stats = self.pipeline.stats
        last = (stats.events_acked, stats.bytes_acked)
        while True:
            await asyncio.sleep(interval)
            now = (stats.events_acked, stats.bytes_acked)
            lag = sum(self.files.lag().values())
            if now == last and not lag:
                continue
            self.log.info("shipped", events=now[0] - last[0], bytes=now[1] - last[1],
                          files=len(self.files.harvesters), lag_bytes=lag,
                          unacknowledged=self.pipeline.unacknowledged,
                          events_total=now[0], interval=interval)  # fmt: skip
            last = now

    async def _watch_credentials(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the credential and TLS files again when their directory changes (a
        Secret's `..data` swap is one event), or every CREDENTIALS_POLL seconds where
        inotify cannot watch; requests from then on carry what they hold."""
        from agents.logship.inotify import Inotify, InotifyUnavailable

        assert self.sender.credentials is not None
        changed = asyncio.Event()
        watcher: Inotify | None = None
        try:
            watcher = Inotify(loop, lambda _path: changed.set(), changed.set)
        except InotifyUnavailable as exc:
            self.log.warning("credentials: no inotify; looking at their files every "
                             f"{CREDENTIALS_POLL:g}s", error=str(exc))  # fmt: skip
        try:
            for directory in sorted(self.sender.credentials.directories()):
                for problem in watcher.watch(directory, False) if watcher else []:
                    self.log.warning("credentials: cannot watch; looking every "
                                     f"{CREDENTIALS_POLL:g}s", error=problem)  # fmt: skip
            while True:
                await wait_event(changed, CREDENTIALS_POLL)
                changed.clear()
                await asyncio.sleep(0.05)  # the rest of a swap's events come together
                changed.clear()
                if self.sender.reload_credentials(self.log):
                    self.pipeline.credentials_changed()
        finally:
            if watcher is not None:
                watcher.close()

    async def _listen(self, server: StatusServer) -> None:
        try:
            await server.setup()
        except OSError as exc:
            where = f"{self.config.http_host}:{self.config.http_port}"
            raise OptionError(f"--http-port: cannot listen on {where}: {exc.strerror}") from None

    async def serve(self) -> None:
        """Watch and ship until a signal or a failure; the scanner is a supervised task."""
        if self.phase.stop_now:
            return
        scanner = self.supervisor.start("scanner", self._scan_until_signal())
        await self._leave.wait()
        await self.supervisor.cancel([scanner])

    async def _scan_until_signal(self) -> None:
        assert self.watcher is not None
        wake = self.files.wake_scanner
        while not (self.phase.draining or self.phase.stop_now):
            await wait_event(wake, self.config.scan_interval)
            wake.clear()
            if not (self.phase.draining or self.phase.stop_now):
                await self.files.scan()
                for problem in self.watcher.refresh():  # roots that appeared since
                    self.log.warning("watch", error=problem)

    async def drain(self) -> None:
        """Read until every file is at its end and quiet, ship everything, within the
        deadline (`--drain-timeout`, counted from the signal)."""
        cfg = self.config
        started = self.drain_started
        deadline = started + cfg.drain_timeout
        events_before = self.pipeline.stats.events_in
        sight = await asyncio.to_thread(look_around)
        if sight.visible:
            self.log.info("drain: waiting for the processes writing the files to end",
                          sees=sight.why)  # fmt: skip
        else:
            self.log.info("drain: the processes writing the files cannot be seen; stopping "
                          "once no file grew for --drain-quiet after the signal",
                          why=sight.why, drain_quiet=cfg.drain_quiet)  # fmt: skip
        # Writers are waited for until a share of the deadline is left to ship what they
        # wrote: a sidecar restarted alone (liveness, an update) beside an app that goes on.
        writers_until = deadline - min(WRITERS_RESERVE, cfg.drain_timeout / 5)
        writers_gone_at: float | None = None
        while self.clock() < deadline and not self.phase.stop_now:
            await self.files.scan()  # files created during shutdown count too
            count = None
            if sight.visible:
                count = len(await asyncio.to_thread(writers, self.files.being_read()))
                if count and self.clock() >= writers_until:
                    self.log.warning("drain: the processes writing the files go on; shipping "
                                     "what they wrote so far (a partial last line waits for "
                                     "the next start)", writers=count,
                                     waited=round(self.clock() - started, 3))  # fmt: skip
                    self.phase.keep_partial = True
                    break
                if count:
                    writers_gone_at = None
                elif writers_gone_at is None:
                    writers_gone_at = self.clock()
            if drain_may_end(now=self.clock(), signal_at=started, writers=count,
                             last_growth=self.files.last_growth(), at_end=self.files.at_end(),
                             writers_gone_at=writers_gone_at, quiet=cfg.drain_quiet):  # fmt: skip
                break
            await asyncio.sleep(0.05)
        await self.files.read_to_the_end(deadline - self.clock(), self._stopping)
        self.pipeline.flush()
        while self.pipeline.unacknowledged and self.clock() < deadline and not self.phase.stop_now:
            self.pipeline.flush()
            await asyncio.sleep(0.02)
        if not self.alive:
            return  # a failure ended the drain: said already; shutdown() commits
        left = self.pipeline.unacknowledged
        fields = {
            "events_during_drain": self.pipeline.stats.events_in - events_before,
            "duration": round(self.clock() - started, 3),
            "unacknowledged": left,
        }
        if left:
            self.log.error("drain deadline passed: unacknowledged events are re-sent at the "
                           "next start, if the volume survives", **fields)  # fmt: skip
        else:
            self.log.info("drained", **fields)

    async def shutdown(self) -> None:
        """Stop every task, commit what was acknowledged, close, and undo what startup()
        set up. Runs after a drain, a second signal and a failure alike."""
        if self.watcher is not None:
            self.watcher.stop()
        await self.supervisor.cancel()
        self.checkpoints.save("shutdown")
        self.files.close()
        await self.sender.close()
        if self.server is not None:
            await self.server.cleanup()
        self._undo.close()

    async def _ship(self) -> None:
        """Install the index template, if any, once the first scan has opened the files;
        then run the pipeline."""
        await self._opened.wait()  # the GIL goes to opening the files first
        try:
            if self.template is not None:
                await install_template(self.sender, self.template, self.log)
            if self.config.data_stream:
                stream = "logs-" + self.config.data_stream.replace(".", "-")
                await ensure_data_stream_template(self.sender, stream, self.log)
        except TemplateRefused as exc:
            raise OptionError(str(exc)) from None
        await self.pipeline.run()

    def handle_signal(self, signum: int) -> None:
        """Only flags (and wake-ups): the lifecycle methods act on them."""
        self._signals += 1
        if self._signals == 1:
            self.phase.draining = True
            self.drain_started = self.clock()
            self.log.info("draining", signal=signal.Signals(signum).name)
            self._leave.set()
        else:
            self.log.warning("second signal: committing what was acknowledged and exiting")
            self._stop_now()
        self.files.wake_all()  # out of an idle poll: look now

    def _look_everywhere(self) -> None:
        """inotify's queue overflowed: changes were lost, so every file and the globs are
        looked at now rather than at their next poll."""
        self.log.warning("watch", error="inotify queue overflowed; looking at every file")
        self.files.wake_all()

    # --- what the pipeline and the status server call ------------------------------------

    def _commit(self, key: str, generation: int, offset: int, tail: str | None) -> None:
        harvester = self.files.harvesters.get(key)
        if harvester is None:
            self.checkpoints.commit(key, generation, offset, tail, path=None)
        else:
            self.checkpoints.commit(key, generation, offset, tail, path=harvester.path,
                                    fd=harvester.fd)  # fmt: skip

    async def _dead(self, event: Event, result: ItemResult) -> None:
        self.log.error(
            "event refused by Elasticsearch: dead-lettered",
            path=event.path, offset=event.offset, status=result.status, error=result.reason[:300],
        )  # fmt: skip
        await self.dead_letter.write(event, result)

    def _metrics(self) -> str:
        # asyncio_tasks: the supervised tasks, bulk requests in flight and probes being
        # answered (this one included); a count that climbs over hours is a leak.
        # oldest_request_seconds: over --request-timeout, a request hangs.
        extra = {"files_open": float(len(self.files.harvesters)),
                 "unacknowledged_events": float(self.pipeline.unacknowledged),
                 "asyncio_tasks": float(len(asyncio.all_tasks())),
                 "oldest_request_seconds": round(self.sender.oldest_request(), 3)}  # fmt: skip
        return render_metrics(self.pipeline.stats, self.files.lag(), extra)
