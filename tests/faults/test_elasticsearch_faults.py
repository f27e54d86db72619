"""Elasticsearch misbehaving while the app writes: down, 429 (requests and items), 503,
answers slower than --request-timeout, connections dropped before and after the request
was applied, 413. Every line written is in the index exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import (
    App,
    messages,
    sent_items,
    shipped,
    sized,
    stop_cleanly,
    wait_quietly,
)
from tests.faults.writer import line
from tests.helpers import exactly_once, wait_for, write_lines

Shippers = Callable[..., LogshipProcess]


def start(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any, *extra: str
) -> tuple[LogshipProcess, App]:
    shipper = shippers(es, tmp, *extra).start()
    app = App(tmp / "logs" / "app.log", count=size.lines, rate=size.rate, width=size.width)
    wait_for(lambda: es.count() > 0, what="the first lines to be shipped")  # shipping, then fault
    return shipper, app


def finish(es: StandInProcess, shipper: LogshipProcess, app: App, size: Any) -> None:
    """The faults are over: everything arrives, logship stops cleanly, exactly once."""
    es.control("reset_faults")
    expected = app.expected()
    shipped(es, len(expected), timeout=size.catch_up)
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)


@sized(
    dict(lines=6000, rate=1500, width=200, down=3.0, catch_up=60),
    dict(lines=100_000, rate=1500, width=200, down=60.0, catch_up=300),
)
def test_elasticsearch_down_then_back(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    budget = 2 * 1024 * 1024
    shipper, app = start(
        es, tmp, shippers, size, "--queue-bytes", "2MiB", "--batch-bytes", "512KiB"
    )
    es.control("down", seconds=size.down)
    outage_ends = time.monotonic() + size.down
    wait_for(lambda: shipper.logged("Elasticsearch unreachable"), what="the outage to be seen")
    assert shipper.metric("elasticsearch_reachable") == 0
    # Through the outage the unacknowledged events never use more than --queue-bytes.
    peak = 0.0
    while time.monotonic() < outage_ends - 0.3:
        peak = max(peak, shipper.metric("queue_bytes"))
        time.sleep(0.05)
    assert budget / 2 < peak <= budget, f"queue peaked at {peak} bytes, budget {budget}"
    expected = app.expected()
    shipped(es, len(expected), timeout=size.catch_up)
    assert shipper.metric("elasticsearch_reachable") == 1
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)


@sized(
    dict(lines=12_000, rate=1200, width=100, window=10.0, catch_up=90),
    dict(lines=200_000, rate=1500, width=100, window=120.0, catch_up=600),
    timeout=1200,
)
def test_429_on_30_percent_of_requests_and_10_percent_of_items(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    shipper, app = start(es, tmp, shippers, size, "--batch-docs", "500")
    es.control("fail_requests", status=429, probability=0.3)
    es.control("fail_items", status=429, probability=0.1)
    wait_quietly(size.window)
    finish(es, shipper, app, size)
    assert shipper.logged("bulk request refused", error="429")
    items = shipper.logged("items rejected")
    assert items and items[0]["error"] == "429 es_rejected_execution_exception"


@sized(
    dict(lines=8000, rate=1500, width=100, window=3.0, catch_up=60),
    dict(lines=150_000, rate=1500, width=100, window=45.0, catch_up=300),
)
def test_503_requests_then_503_items(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    shipper, app = start(es, tmp, shippers, size, "--batch-docs", "500")
    es.control("fail_requests", status=503)  # no master: every bulk request refused
    wait_quietly(size.window)
    es.control("reset_faults")
    es.control("fail_items", status=503, probability=0.2)  # primary shards not active
    wait_quietly(size.window)
    finish(es, shipper, app, size)
    assert shipper.logged("bulk request refused", error="503")
    assert shipper.logged("items rejected", error="503 unavailable_shards_exception")


@sized(
    dict(lines=6000, rate=1000, width=100, window=4.0, catch_up=60),
    dict(lines=60_000, rate=1000, width=100, window=45.0, catch_up=300),
)
def test_answers_slower_than_the_request_timeout(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """The stand-in applies a bulk request the client gave up on, as ES does: the re-send
    comes back 409 for those documents, which count as stored."""
    shipper, app = start(es, tmp, shippers, size, "--request-timeout", "1s")
    es.control("latency", seconds=1.5)
    wait_quietly(size.window)
    finish(es, shipper, app, size)
    timeouts = shipper.logged("Elasticsearch unreachable")
    assert timeouts and all("timed out" in e["error"].lower() for e in timeouts), timeouts[:3]
    assert sent_items(es) > len(app.expected()), "nothing was sent twice: no 409 exercised"


@sized(
    dict(lines=8000, rate=1500, width=100, window=4.0, catch_up=60),
    dict(lines=120_000, rate=1500, width=100, window=60.0, catch_up=300),
)
def test_connections_dropped_before_and_after_the_request_was_applied(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    shipper, app = start(es, tmp, shippers, size, "--batch-docs", "300")
    es.control("drop_connections", probability=0.3, after_processing=True)
    es.control("drop_connections", probability=0.1, after_processing=False)
    wait_quietly(size.window)
    finish(es, shipper, app, size)
    dropped = [r for r in es.requests() if r["path"].endswith("/_bulk") and r["status"] is None]
    assert dropped, "no connection was dropped"
    assert sent_items(es) > len(app.expected()), "nothing was sent twice: no 409 exercised"
    assert shipper.logged("Elasticsearch unreachable")


@sized(
    dict(lines=6000, rate=1500, width=200, catch_up=60),
    dict(lines=90_000, rate=1500, width=200, catch_up=300),
)
def test_413_splits_the_batch_and_dead_letters_a_single_event_too_big(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    limit = 64 * 1024  # http.max_content_length, decoded
    es.control("max_body_bytes", bytes=limit)
    log = tmp / "logs" / "app.log"
    huge = "too big alone " + "y" * (limit + 1000)  # under --max-line-bytes, over the limit
    shipper = shippers(es, tmp).start()
    app = App(log, count=size.lines, rate=size.rate, width=size.width)
    wait_for(lambda: es.count() > 0, what="the first lines to be shipped")
    (tmp / "logs" / "big.log").write_text(huge + "\n")
    expected = app.expected()
    shipped(es, len(expected), timeout=size.catch_up)
    wait_for(lambda: shipper.logged("event refused"), what="the huge line to be dead-lettered")
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)
    splits = shipper.logged("bulk request refused: splitting it")
    assert splits and {e["status"] for e in splits} == {413}
    (dead,) = [
        json.loads(x) for x in (tmp / "data" / "dead-letter.ndjson").read_text().splitlines()
    ]
    assert dead["status"] == 413 and json.loads(dead["document"])["message"] == huge
    (refused,) = shipper.logged("event refused by Elasticsearch: dead-lettered")
    assert refused["status"] == 413 and refused["path"] == str(tmp / "logs" / "big.log")
    assert line("line", 0, size.width) in messages(es)


@sized(
    dict(lines=20_000, width=100, window=3.0, catch_up=60),
    dict(lines=200_000, width=100, window=30.0, catch_up=300),
)
def test_memory_stays_within_a_small_queue_budget_while_elasticsearch_refuses(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """ "Elasticsearch down: memory stays within --queue-bytes (the files simply wait)",
    with the smallest budget the options allow beside --batch-bytes."""
    budget = 256 * 1024
    args = ("--queue-bytes", "256KiB", "--batch-bytes", "64KiB")
    shipper = shippers(es, tmp, *args).start()
    es.control("fail_requests", status=503)
    expected = [line("line", s, size.width) for s in range(size.lines)]
    write_lines(tmp / "logs" / "app.log", expected)
    peak, ends = 0.0, time.monotonic() + size.window
    while time.monotonic() < ends:
        peak = max(peak, shipper.metric("queue_bytes"))
        time.sleep(0.05)
    es.control("reset_faults")
    shipped(es, len(expected), timeout=size.catch_up)
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)
    assert budget / 2 < peak <= budget, f"queue peaked at {peak:.0f} bytes, budget {budget}"
