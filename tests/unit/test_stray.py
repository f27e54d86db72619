"""Exceptions nobody catches (threads, `__del__`, asyncio tasks never awaited, libraries
logging with exc_info) come out as one JSON event each, not as a multi-line traceback.

Each case runs in a fresh interpreter: the hooks are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import asyncio, gc, logging, threading
from agents._log import Logger
from agents._stray import asyncio_handler, route_stray_errors
log = Logger("logship", json_lines=True)
route_stray_errors(log)
"""

CASES = {
    "thread": (
        """
def boom():
    raise ValueError("in a worker")
t = threading.Thread(target=boom, name="worker-1")
t.start(); t.join()
""",
        {"message": "internal error: in a thread", "thread": "worker-1",
         "error": "ValueError: in a worker"},
    ),
    "unraisable": (
        """
class Leaky:
    def __del__(self):
        raise KeyError("at collection")
Leaky()
gc.collect()
""",
        {"message": "internal error: exception ignored", "error": "KeyError: 'at collection'"},
    ),
    "library": (
        """
try:
    1 / 0
except ZeroDivisionError as exc:
    logging.getLogger("somelib.transport").warning("retrying %s", "request", exc_info=exc)
logging.getLogger("somelib").info("not said: below warning")
""",
        {"message": "library warning", "logger": "somelib.transport",
         "detail": "retrying request", "error": "ZeroDivisionError: division by zero"},
    ),
    "asyncio": (
        """
async def fails():
    raise RuntimeError("nobody awaited me")
async def main():
    asyncio.get_running_loop().set_exception_handler(asyncio_handler(log))
    task = asyncio.create_task(fails(), name="orphan")
    await asyncio.sleep(0.01)
    del task
    gc.collect()
asyncio.run(main())
""",
        {"message": "internal error: asyncio", "task": "orphan",
         "error": "RuntimeError: nobody awaited me"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stray_exception_is_one_json_event(case: str) -> None:
    body, expected = CASES[case]
    program = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    events = [json.loads(line) for line in lines]  # every line is one JSON event
    assert len(events) == 1, events
    event = events[0]
    for key, value in expected.items():
        assert event[key] == value, (key, event)
    assert event["log.level"] in ("error", "warning")
    # where it happened, on one field: the last frames, not the whole stack
    assert "\n" in event["stack"] and event["stack"].count("File ") <= 2, event["stack"]
