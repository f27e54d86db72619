"""The inotify watcher's thread may call back the moment it starts, before the first scan:
that notification must reach the loop, and the path must stay watched.

The fault suite's full kill -9 case found this: an event in that window raised
AttributeError in watchdog's thread (the loop was not known yet), which left the path
marked in flight forever, so later writes were only seen by polling."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

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


class EagerWatcher(app_module.Watcher):
    """The real watcher, plus one notification from another thread as soon as it
    started, as inotify gives when the app writes during logship's start-up."""

    def __init__(self, patterns: list[str], notify: Callable[[str], None]) -> None:
        super().__init__(patterns, notify)
        self.patterns = patterns

    def start(self) -> list[str]:
        problems = super().start()
        early = threading.Thread(target=self.notify, args=(self.patterns[0],), name="early")
        early.start()
        early.join()
        return problems


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_notification_before_the_first_scan_is_taken_and_the_path_stays_watched(
    es: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("first\n")
    stream = io.StringIO()
    log = Logger("logship", json_lines=True, stream=stream)
    monkeypatch.setattr(app_module, "Watcher", EagerWatcher)
    saved = threading.excepthook, sys.unraisablehook, logging.getLogger().handlers[:]
    route_stray_errors(log)  # as the command does: a thread's exception becomes an event
    try:
        argv = ["--path", str(log_file), "--es", es.url, "--data-dir", str(tmp_path / "data")]
        argv += ["--http-port", "0", "--flush-interval", "50ms", "--drain-quiet", "200ms"]
        config = load_config(argv, {})
        app = app_module.App(config, log)
        running = asyncio.create_task(app.run())
        await until(lambda: es.count() == 1, "the first line")
        await until(lambda: not app._changed, "the early notification to reach the loop")
        # Live: the next write is noticed through inotify (the harvester is idle, so
        # polling alone would take up to IDLE_POLL) and ships.
        with log_file.open("a") as f:
            f.write("second\n")
        await until(lambda: es.count() == 2, "the second line")
        app.handle_signal(15)
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        threading.excepthook, sys.unraisablehook, logging.getLogger().handlers[:] = saved
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [e for e in events if e["log.level"] == "error"]
    assert not errors, errors
    assert sorted(d["message"] for d in es.docs()) == ["first", "second"]
