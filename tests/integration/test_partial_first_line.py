"""A file whose first line is still partial when logship must take it (the app killed
mid-line, then restarted and finishing it) keeps one identity: every byte ships once."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from agents._log import Logger
from agents.logship import app as app_module
from agents.logship.config import load_config
from agents.logship.registry import FILENAME
from agents.testing.aio import until
from agents.testing.elasticsearch import StandIn

pytestmark = [pytest.mark.asyncio, pytest.mark.integration]


@pytest_asyncio.fixture
async def es() -> AsyncIterator[StandIn]:
    async with StandIn(seed=5) as standin:
        yield standin


async def one_run(es: StandIn, tmp: Path, then: int) -> list[dict[str, object]]:
    """Start logship, wait until `then` documents are stored, SIGTERM it (in-process)."""
    argv = ["--path", str(tmp / "app.log"), "--es", es.url, "--data-dir", str(tmp / "data"),
            "--flush-interval", "20ms", "--drain-quiet", "100ms"]  # fmt: skip
    stream = io.StringIO()
    app = app_module.App(load_config(argv, {}), Logger("logship", json_lines=True, stream=stream))
    running = asyncio.create_task(app.run())
    await until(lambda: app.ready, "ready")
    await until(lambda: es.count() >= then, f"{then} documents")
    app.handle_signal(15)
    assert await asyncio.wait_for(running, 30) == 0
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_partial_first_line_shipped_at_drain_keeps_its_identity_after_restart(
    es: StandIn, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"starting worker pid=")  # killed mid-line: no newline
    await one_run(es, tmp_path, then=0)  # the drain ships the partial line as it is
    assert sorted(d["message"] for d in es.docs()) == ["starting worker pid="]
    (first,) = json.loads((tmp_path / "data" / FILENAME).read_bytes())["entries"]
    assert first["head_len"] == len(b"starting worker pid=")

    with log.open("ab") as f:  # the app's next run finishes the line and goes on
        f.write(b"4242\nready\n")
    await one_run(es, tmp_path, then=3)
    messages = sorted(str(d["message"]) for d in es.docs())
    assert messages == ["4242", "ready", "starting worker pid="]  # nothing twice
    entries = json.loads((tmp_path / "data" / FILENAME).read_bytes())["entries"]
    assert [e["key"] for e in entries] == [first["key"]]  # one identity, one entry
    assert entries[0]["offset"] == log.stat().st_size
