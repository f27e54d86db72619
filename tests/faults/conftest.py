"""The fault suite: logship and the Elasticsearch stand-in as real processes, on real
files, with real signals. Everything here is `integration`; each case's full size is
also `slow` (`make test-slow`), its bounded size runs with `make test`."""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterator

import pytest

from tests.faults.harness import RUNNING

# es, tmp and shippers (the stand-in and logship as processes) are in tests/conftest.py.

SEED_VARIABLE = "LOGSHIP_FAULT_SEED"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/faults/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def reap_apps() -> Iterator[None]:
    yield
    while RUNNING:
        RUNNING.pop().kill()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """The random moments of one case: reproducible with LOGSHIP_FAULT_SEED=<seed>."""
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(1 << 32))
    request.node.fault_seed = seed
    return random.Random(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    seed = getattr(item, "fault_seed", None)
    if seed is not None and report.failed:
        report.sections.append(
            ("fault seed", f"{SEED_VARIABLE}={seed} replays this case's random moments")
        )
    return report
