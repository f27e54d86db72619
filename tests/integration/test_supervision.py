"""Every long-lived task of logship is supervised: one that fails is said once as an
internal error with its cause, /healthz and /readyz fail at once, what was acknowledged
is committed, and logship exits 1 (so the kubelet restarts it and the next run resumes).

Each case breaks one kind of task in a running logship (in this process, on the real
stand-in, real files and a real status port) the way a bug would, by raising where the
code does not expect it.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from agents._log import Logger
from agents.logship import app as app_module
from agents.logship.config import load_config
from agents.logship.harvester import Harvester, Look
from agents.logship.registry import FILENAME
from agents.logship.server import StatusServer
from agents.testing.aio import until
from agents.testing.elasticsearch import StandIn
from tests.helpers import free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.integration]


class Bug(Exception):
    """What a bug of ours raises."""


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=11) as standin:
        yield standin


class Running:
    def __init__(self, es: StandIn, tmp: Path) -> None:
        self.tmp, self.log_file = tmp, tmp / "app.log"
        self.log_file.write_text("".join(f"line {i}\n" for i in range(20)))
        self.stream = io.StringIO()
        argv = ["--path", str(self.log_file), "--es", es.url, "--data-dir", str(tmp / "data"),
                "--http-host", "127.0.0.1", "--http-port", str(free_port()),
                "--flush-interval", "20ms",
                "--drain-quiet", "100ms", "--watch", "inotify"]  # fmt: skip
        self.app = app_module.App(load_config(argv, {}), Logger("logship", json_lines=True,
                                                                stream=self.stream))  # fmt: skip
        self.task: asyncio.Task[int] | None = None

    def start(self) -> Running:
        self.task = asyncio.create_task(self.app.run())
        return self

    async def exit_code(self) -> int:
        assert self.task is not None
        return await asyncio.wait_for(self.task, 30)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def internal_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["message"].startswith("internal error")]

    def committed(self) -> int:
        document = json.loads((self.tmp / "data" / FILENAME).read_bytes())
        (entry,) = document["entries"]
        return int(entry["offset"])


@pytest.fixture
def running(es: StandIn, tmp_path: Path) -> Callable[[], Running]:
    return lambda: Running(es, tmp_path)


async def shipped_then(r: Running, es: StandIn, breaking: Callable[[], None]) -> int:
    """Start, wait until the 20 lines are stored, break something, → the exit code."""
    r.start()
    await until(lambda: es.count() == 20, "the first 20 lines stored")
    breaking()
    return await r.exit_code()


def assert_failed_once(r: Running, task: str, cause: str) -> None:
    errors = r.internal_errors()
    assert len(errors) == 1, errors
    assert errors[0]["task"].startswith(task) and cause in errors[0]["error"]
    assert errors[0]["log.level"] == "error" and "stack" in errors[0]
    assert not r.app.alive
    assert not [e for e in r.events() if e["message"] in ("drained", "started") and
                e["@timestamp"] > errors[0]["@timestamp"]]  # fmt: skip


async def test_a_failing_pipeline_fails_logship(
    es: StandIn, running: Callable[[], Running]
) -> None:
    r = running()

    def break_the_sender() -> None:
        async def send(body: Any) -> Any:
            raise Bug("send exploded")

        r.app.pipeline.sender = type("Broken", (), {"send": staticmethod(send)})()
        with r.log_file.open("a") as f:
            f.write("line 20\n")

    assert await shipped_then(r, es, break_the_sender) == 1
    assert_failed_once(r, "pipeline", "Bug: send exploded")
    assert r.committed() == len("".join(f"line {i}\n" for i in range(20)))  # the acked ones


async def test_a_failing_registry_saver_fails_logship(
    es: StandIn, running: Callable[[], Running]
) -> None:
    r = running()

    async def prune() -> None:
        raise Bug("prune exploded")

    def break_the_saver() -> None:
        r.app.files.tidy = prune  # type: ignore[method-assign]

    assert await shipped_then(r, es, break_the_saver) == 1
    assert_failed_once(r, "registry-saver", "Bug: prune exploded")
    assert r.committed() == r.log_file.stat().st_size  # committed at shutdown all the same


async def test_a_failing_harvester_fails_logship(
    es: StandIn, running: Callable[[], Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = running()
    real_look = Harvester.look

    def look(self: Harvester) -> Look:
        if self.position > r.log_file.stat().st_size - 10:
            raise Bug("look exploded")
        return real_look(self)

    def break_the_harvester() -> None:
        monkeypatch.setattr(Harvester, "look", look)
        with r.log_file.open("a") as f:
            f.write("line 20\n")

    assert await shipped_then(r, es, break_the_harvester) == 1
    assert_failed_once(r, "harvester " + str(r.log_file), "Bug: look exploded")
    assert r.committed() >= len("".join(f"line {i}\n" for i in range(20)))


async def test_a_failing_watcher_callback_fails_logship(
    es: StandIn, running: Callable[[], Running]
) -> None:
    r = running()

    def on_change(path: str) -> None:
        raise Bug(f"on_change exploded for {path}")

    r.app.files.on_change = on_change  # type: ignore[method-assign]  # before startup binds it

    def write() -> None:
        with r.log_file.open("a") as f:
            f.write("line 20\n")

    assert await shipped_then(r, es, write) == 1
    assert_failed_once(r, "watcher", "on_change exploded")


async def test_a_failing_status_server_fails_logship_and_probes_fail_at_once(
    es: StandIn, running: Callable[[], Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def setup(self: StatusServer) -> None:
        raise Bug("setup exploded")

    monkeypatch.setattr(StatusServer, "setup", setup)
    r = running().start()
    assert await r.exit_code() == 1
    assert_failed_once(r, "status-server", "Bug: setup exploded")


async def test_probes_answer_503_as_soon_as_a_task_failed(
    es: StandIn, running: Callable[[], Running]
) -> None:
    r = running().start()
    await until(lambda: r.app.ready and es.count() == 20, "ready and shipped")
    assert r.app.server is not None
    url = f"http://127.0.0.1:{r.app.server.port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(url + path) as response:
                assert response.status == 200
        gate = asyncio.Event()
        seen: dict[str, int] = {}

        async def hold_shutdown() -> None:
            # The probes are asked between the failure and the end of the shutdown.
            for path in ("/healthz", "/readyz"):
                async with session.get(url + path) as response:
                    seen[path] = response.status
            gate.set()

        real_shutdown = r.app.shutdown

        async def shutdown() -> None:
            await hold_shutdown()
            await real_shutdown()

        r.app.shutdown = shutdown  # type: ignore[method-assign]
        r.app.supervisor.fail("pipeline", Bug("injected"))
        assert await r.exit_code() == 1
    assert gate.is_set() and seen == {"/healthz": 503, "/readyz": 503}


async def test_a_clean_run_still_exits_0_after_drain(
    es: StandIn, running: Callable[[], Running]
) -> None:
    r = running().start()
    await until(lambda: r.app.ready and es.count() == 20, "ready and shipped")
    r.app.handle_signal(15)
    assert await r.exit_code() == 0
    assert not r.internal_errors()
    assert [e for e in r.events() if e["message"] == "drained"]
