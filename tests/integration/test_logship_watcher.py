"""Changes reach logship with each --watch: inotify on the loop (Linux), watchdog's
threads (elsewhere) and polling alone, including a change reported at once.

The fault suite's full kill -9 case found a bug there: an event before the first scan
raised AttributeError in watchdog's thread (the loop was not known yet), which left the
path marked in flight forever, so later writes were only seen by polling."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agents._log import Logger
from agents._stray import route_stray_errors
from agents.logship import app as app_module
from agents.logship.config import load_config
from agents.testing.elasticsearch import StandIn

pytestmark = [pytest.mark.asyncio, pytest.mark.integration]


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=3) as standin:
        yield standin


def eager(backend: str) -> type[app_module.Watcher]:
    class EagerWatcher(app_module.Watcher):
        """The real watcher on `backend`, plus one change reported from another thread as
        soon as it started (watchdog's thread, when the app writes during start-up)."""

        def __init__(self, patterns: list[str], *args: Any, **kwargs: Any) -> None:
            super().__init__(patterns, *args, **kwargs)  # backend: from --watch
            self.patterns = patterns

        def start(self) -> list[str]:
            problems = super().start()
            if backend == "watchdog":
                early = threading.Thread(target=self._from_thread, args=(self.patterns[0],))
                early.start()
                early.join()
            return problems

    return EagerWatcher


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", ["inotify", "watchdog", "poll"])
async def test_writes_are_noticed_from_the_start_on_either_watcher(
    es: StandIn, tmp_path: Path, backend: str
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("first\n")
    stream = io.StringIO()
    log = Logger("logship", json_lines=True, stream=stream)
    undo = route_stray_errors(log)  # as the command does: a thread's exception becomes an event
    try:
        argv = ["--path", str(log_file), "--es", es.url, "--data-dir", str(tmp_path / "data")]
        argv += ["--http-port", "0", "--flush-interval", "50ms", "--drain-quiet", "200ms"]
        argv += ["--watch", backend]
        config = load_config(argv, {})
        app = app_module.App(config, log, watcher=eager(backend))
        running = asyncio.create_task(app.run())
        await until(lambda: es.count() == 1, "the first line")
        assert (app.watcher.inotify is not None) == (backend == "inotify")
        await until(lambda: not app.watcher._pending, "the early notification to reach the loop")
        # Live: the next write is noticed through inotify (the harvester is idle, so
        # polling alone would take up to IDLE_POLL) and ships.
        with log_file.open("a") as f:
            f.write("second\n")
        await until(lambda: es.count() == 2, "the second line")
        app.handle_signal(15)
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        undo()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [e for e in events if e["log.level"] == "error"]
    assert not errors, errors
    assert sorted(d["message"] for d in es.docs()) == ["first", "second"]
