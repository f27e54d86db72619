"""logship gives the heap back once quiet: the rule (when, how often) with a fake, and
glibc's malloc_trim for real in a fresh interpreter."""

from __future__ import annotations

import asyncio

import pytest

from agents.logship.memory import give_back_when_quiet
from tests.helpers import run_python


@pytest.mark.asyncio
async def test_given_back_once_per_quiet_spell_and_never_while_busy() -> None:
    # what activity() says at each look: reading, then quiet, quiet, quiet, then a burst
    # that is still unacknowledged, then quiet again
    script = iter([
        (1, False), (2, False), (2, False), (2, False), (2, False),
        (3, True), (3, True), (3, False), (3, False), (3, False),
    ])  # fmt: skip
    looks: list[int] = []
    given_back: list[int] = []
    done = asyncio.Event()
    state = (0, False)

    def activity() -> int:
        nonlocal state
        try:
            state = next(script)
        except StopIteration:
            done.set()
        looks.append(state[0])
        return state[0]

    task = asyncio.create_task(give_back_when_quiet(
        activity, lambda: state[1], every=0.001, give_back=lambda: given_back.append(len(looks)),
    ))  # fmt: skip
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    # look 3: the same as look 2, nothing held: quiet, given back; looks 4-5: not again;
    # look 7 still busy; look 8: quiet again (3 unchanged, nothing held)
    assert given_back == [3, 8]


def test_trim_hands_freed_heap_back_to_the_system() -> None:
    probe = (
        "from agents.logship.memory import trim\n"
        "def anon():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status')\n"
        "                if l.startswith('RssAnon'))\n"
        "blocks = [bytes(2000) for _ in range(40000)]  # 80 MB from malloc's heap\n"
        "keep = blocks[::50]  # holes: free() alone cannot shrink the heap\n"
        "del blocks\n"
        "before = anon()\n"
        "print(trim(), before - anon())\n"
    )
    out = run_python(probe)
    released, kib = out.split()
    assert released == "True" and int(kib) > 40_000, out
