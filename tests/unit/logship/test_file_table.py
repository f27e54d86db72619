"""The file table on real files, with fakes for the rest: a scripted sender behind the
real pipeline, and a clock the test moves. Rotation, truncation, deletion and the drain
rule, in milliseconds."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from agents._log import Logger
from agents._supervise import Supervisor
from agents.logship.checkpoint import Checkpointer
from agents.logship.decide import drain_may_end
from agents.logship.events import EventBuilder
from agents.logship.files import FileTable, Phase
from agents.logship.pipeline import Pipeline
from agents.logship.registry import TAIL_BYTES, Registry, tail_hash
from agents.testing.aio import until
from agents.testing.clock import FakeClock
from agents.testing.sender import ScriptedSender

pytestmark = pytest.mark.asyncio


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.logs, self.clock = tmp / "logs", FakeClock()
        self.logs.mkdir()
        self.stream = io.StringIO()
        log = Logger("logship", json_lines=True, stream=self.stream)
        self.sender = ScriptedSender()
        self.commits: list[tuple[str, int, int]] = []
        self.registry = Registry(tmp / "data")
        self.checkpoints = Checkpointer(self.registry, log)
        self.pipeline = Pipeline(self.sender, commit=self._commit, dead_letter=None,  # type: ignore[arg-type]
                                 log=log, flush_interval=0.001)  # fmt: skip
        self.supervisor = Supervisor(log)
        config = SimpleNamespace(paths=[str(self.logs / "*.log*")], exclude=[],
                                 start_at="beginning", max_line_bytes=1 << 20,
                                 multiline_timeout=5.0, drain_quiet=1.0,
                                 close_inactive=300.0)  # fmt: skip
        self.table = FileTable(
            config, log=log, checkpoints=self.checkpoints, pipeline=self.pipeline,
            builder=EventBuilder(env={"NODE_NAME": "n"}), index_for=lambda now: "logs",
            new_joiner=lambda: None, start=self.supervisor.start, phase=Phase(), clock=self.clock,
        )  # fmt: skip

    def _commit(self, key: str, generation: int, offset: int, tail: str | None) -> None:
        self.commits.append((key, generation, offset))
        harvester = self.table.harvesters.get(key)
        self.checkpoints.commit(key, generation, offset, tail, path=harvester and harvester.path,
                                fd=harvester.fd if harvester else -1)  # fmt: skip

    def messages(self) -> list[str]:
        return [str(source["message"]) for source in self.sender.sources]

    def events(self, message: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [e for e in lines if e["message"] == message]

    async def settle(self, *wanted: str) -> None:
        """Wake every harvester until the sender has seen `wanted`, in any order."""

        def done() -> bool:
            self.table.wake_all()
            return sorted(self.messages()) == sorted(wanted)

        await until(done, f"{wanted} sent")


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    pipeline = asyncio.create_task(r.pipeline.run())
    yield r
    await r.supervisor.cancel()
    pipeline.cancel()
    await asyncio.gather(pipeline, return_exceptions=True)
    r.table.close()
    assert r.supervisor.failure is None


async def test_a_rotated_file_is_read_to_its_end_then_closed_and_let_go(rig: Rig) -> None:
    app_log = rig.logs / "app.log"
    app_log.write_text("one\ntwo\n")
    await rig.table.scan()
    await rig.settle("one", "two")
    app_log.rename(rig.logs / "app.log.1")  # rotation: the app still has it open
    with (rig.logs / "app.log.1").open("a") as f:
        f.write("three\n")  # written after the rename, before the app reopened
    app_log.write_text("four\n")
    await rig.table.scan()
    await rig.settle("one", "two", "three", "four")
    assert len(rig.table.harvesters) == 2
    rig.clock.advance(1.0)  # the rotated file is quiet for drain_quiet
    await until(lambda: rig.table.wake_all() or rig.events("file closed"), "a file closed")
    (closed,) = rig.events("file closed")
    # Said under the name it was read by: the path names the new file by now.
    assert closed["reason"] == "rotated" and closed["path"] == str(app_log)
    await until(lambda: not rig.pipeline.unacknowledged, "everything acknowledged")
    await rig.table.tidy()
    (left,) = rig.table.harvesters.values()
    assert os.fstat(left.fd).st_ino == app_log.stat().st_ino  # the new app.log goes on
    assert len(rig.registry.entries) == 2  # the rotated file's offset is kept
    await rig.table.scan()  # unchanged: not opened again
    assert len(rig.table.harvesters) == 1 and sorted(rig.messages()) == [
        "four", "one", "three", "two"]  # fmt: skip


async def test_a_truncated_file_is_read_again_in_a_new_generation(rig: Rig) -> None:
    app_log = rig.logs / "app.log"
    app_log.write_text("header\nold line\n")
    await rig.table.scan()
    await rig.settle("header", "old line")
    with app_log.open("r+") as f:  # copytruncate: same first line, shorter
        f.truncate(0)
    app_log.write_text("header\n")
    await rig.settle("header", "old line", "header")
    (truncated,) = rig.events("file truncated: reading it again from the start")
    assert truncated["generation"] == 1
    ids = [event["_id"] for request in rig.sender.requests for event in request]
    assert len(set(ids)) == 3  # the new "header" is a new document


async def test_a_deleted_file_is_forgotten_once_all_of_it_is_acknowledged(rig: Rig) -> None:
    app_log = rig.logs / "app.log"
    app_log.write_text("only line\n")
    await rig.table.scan()
    await rig.settle("only line")
    await until(lambda: not rig.pipeline.unacknowledged, "acknowledged")
    os.unlink(app_log)
    rig.clock.advance(1.0)
    await until(lambda: rig.table.wake_all() or rig.events("file closed"), "closed")
    assert rig.events("file closed")[0]["reason"] == "deleted"
    await rig.table.tidy()
    assert not rig.table.harvesters and not rig.registry.entries
    assert rig.events("file forgotten")[0]["reason"] == "deleted"


async def test_the_drain_waits_until_every_file_is_quiet_and_at_its_end(rig: Rig) -> None:
    app_log = rig.logs / "app.log"
    app_log.write_text("a\n")
    await rig.table.scan()
    await rig.settle("a")
    rig.table.phase.draining = True

    def may_end(signal_at: float) -> bool:
        return drain_may_end(now=rig.clock(), signal_at=signal_at, writers=None,
                             writers_gone_at=None, last_growth=rig.table.last_growth(),
                             at_end=rig.table.at_end(), quiet=1.0)  # fmt: skip

    assert rig.table.at_end() and not may_end(0.0)  # read just now: not quiet yet
    rig.clock.advance(1.0)
    assert may_end(0.0)
    signal = rig.clock()
    assert not may_end(signal)  # quiet for long, but the signal just came
    with app_log.open("a") as f:
        f.write("b\n")  # a late shutdown line
    assert not rig.table.at_end()  # not at its end
    await rig.settle("a", "b")
    assert rig.table.at_end() and not may_end(signal)  # at its end, but it just grew
    rig.clock.advance(1.0)
    assert may_end(signal)
    assert len(rig.table.being_read()) == 1


async def test_the_committed_tail_is_of_the_bytes_read_not_of_the_file_now(rig: Rig) -> None:
    # The position and the hash of the bytes before it travel with the events: a file
    # rewritten in place while they were in flight is caught at the next start.
    app_log = rig.logs / "app.log"
    original = b"header\n" + b"".join(b"line %03d\n" % i for i in range(20))
    app_log.write_bytes(original)
    rig.sender.gate = asyncio.Event()  # answers wait
    await rig.table.scan()
    await until(lambda: rig.table.wake_all() or rig.sender.requests, "a request")
    # Its harvester would notice the rewrite at its next look and read the file again in
    # a new generation; here the acknowledgement comes first.
    await rig.supervisor.cancel(list(rig.table.tasks.values()))
    rewritten = original.replace(b"line 019", b"LINE 019")  # same size, same first line
    with app_log.open("r+b") as f:
        f.write(rewritten)
    rig.sender.gate.set()
    await until(lambda: not rig.pipeline.unacknowledged, "acknowledged")
    (entry,) = rig.registry.entries.values()
    assert entry.offset == len(original)
    assert entry.tail == tail_hash(original[-TAIL_BYTES:])
    assert entry.tail != tail_hash(rewritten[-TAIL_BYTES:])
