"""Small asyncio helpers for tests that watch a running component from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], what: str, within: float = 10.0) -> None:
    """Wait until `condition()` is true, looking every 10 ms; AssertionError naming `what`
    after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)
