"""Fixtures the integration and fault suites share: the Elasticsearch stand-in and logship
as real processes (`agents.testing.processes`), and a work directory with a `logs/` to
write in. Modules that drive the stand-in in-process define their own `es`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.testing.processes import LogshipProcess, StandInProcess


@pytest.fixture
def es() -> Iterator[StandInProcess]:
    """The stand-in as a process on a free port, seeded, answering; stopped afterwards."""
    with StandInProcess(seed=1) as server:
        yield server


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """A work directory for logship: `logs/` made, `data/` left to logship."""
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.fixture
def shippers() -> Iterator[Callable[..., LogshipProcess]]:
    """Makes `LogshipProcess`es; any still running at teardown (a test failed before it
    stopped them) is killed."""
    made: list[LogshipProcess] = []

    def make(*args: Any, **kwargs: Any) -> LogshipProcess:
        made.append(LogshipProcess(*args, **kwargs))
        return made[-1]

    yield make
    for shipper in made:
        shipper.kill()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens, held for the test: a bound socket that never
    listens refuses every connection, and the kernel hands its port to nobody else, not
    even as a connection's source port (a port from `free_port()` may be taken again, or
    self-connected to: see agents/waitfor/checks/_net.py)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
