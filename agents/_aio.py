"""asyncio helpers shared by both programs."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when it was set.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as
    its timeout fires, and a cancelled task then runs on forever.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
