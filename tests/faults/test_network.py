"""The network between logship and Elasticsearch failing, on two test hosts of their own
(tests/netns.py: logship on one, the stand-in on the other, talking over the veth between
them only): a partition in the middle of a bulk request that heals, 20% packet loss,
500 ms ± 200 ms latency, 1 Mbit/s, a peer that accepts and never answers, answers cut by a
reset, the Elasticsearch name not resolving.

For each: every line in the index exactly once; logship's peak RSS (VmHWM) within
--queue-bytes plus `OVERHEAD`; no request outliving --request-timeout (its
`oldest_request_seconds` gauge watched all along, and seen from outside where the test
can: the silent peer times each connection; the request under way at a fault gives up by
its timeout); and the time from the heal to the first acknowledged request and to caught
up measured, printed and bounded by what the retry schedule allows.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agents.logship.output.answers import RETRY_BASE, RETRY_CAP
from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import (
    App,
    caught_up,
    count,
    messages,
    sent_items,
    sized,
    stop_cleanly,
    wait_quietly,
)
from tests.helpers import exactly_once, free_port, wait_for
from tests.netns import TestNet, missing, peak_rss, test_net

Shippers = Callable[..., LogshipProcess]
PEERS = Path(__file__).with_name("netpeers.py")
QUEUE_BYTES = 1024 * 1024  # a partition fills it: the files wait
# What logship's RSS holds beside its queue: the interpreter and its modules (~25 MiB
# here), and per request in flight its body, its gzip copy and its answer.
OVERHEAD = 40 * 1024 * 1024
SLACK = 2.0  # s: a process noticing, a poll interval, a loaded machine


@pytest.fixture
def net() -> Iterator[TestNet]:
    with test_net() as made:
        yield made


@pytest.fixture
def es(net: TestNet) -> Iterator[StandInProcess]:
    """The stand-in on the es host: logship reaches it at `net.es.data`, the test at
    `net.es.control` (its `.url`)."""
    with standin(net) as server:
        yield server


def standin(net: TestNet, port: int | None = None) -> StandInProcess:
    return StandInProcess("--host", "0.0.0.0", seed=1, port=port, prefix=net.es.prefix,
                          host=net.es.control)  # fmt: skip


def ship(net: TestNet, shippers: Shippers, url: str, tmp: Path, timeout: float,
         *extra: str) -> LogshipProcess:  # fmt: skip
    """logship on the ship host, shipping to `url`, with this --request-timeout; its
    oldest request watched until `finish`."""
    shipper = shippers(
        url, tmp, "--request-timeout", f"{timeout:g}s", "--queue-bytes", str(QUEUE_BYTES),
        "--batch-bytes", "256KiB", "--log-level", "debug", *extra,
        prefix=net.ship.prefix, http_host=net.ship.control,
    ).start()  # fmt: skip
    WATCHED[id(shipper)] = Oldest(shipper, timeout)
    return shipper


class Oldest(threading.Thread):
    """The age of logship's oldest request awaiting an answer (its
    oldest_request_seconds gauge, over the unshaped control link), at its highest."""

    EVERY = 0.2  # s

    def __init__(self, shipper: LogshipProcess, timeout: float) -> None:
        super().__init__(name="oldest request", daemon=True)
        self.shipper, self.timeout = shipper, timeout
        self.highest, self.scrapes = 0.0, 0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(self.EVERY):
            try:
                age = self.shipper.metric("oldest_request_seconds")
            except (OSError, ValueError):
                continue  # stopping: finish() has what it needs
            self.highest, self.scrapes = max(self.highest, age), self.scrapes + 1

    def stop(self) -> float:
        self.done.set()
        self.join(timeout=10)
        return self.highest

    def check(self) -> None:
        assert self.scrapes > 0, "logship's oldest request was never read"
        assert self.highest <= self.timeout + SLACK, (
            f"a request waited {self.highest:.1f} s for its answer: --request-timeout is "
            f"{self.timeout:g} s"
        )


WATCHED: dict[int, Oldest] = {}


@pytest.fixture(autouse=True)
def _stop_watching() -> Iterator[None]:
    yield
    while WATCHED:
        WATCHED.popitem()[1].stop()


def data_url(net: TestNet, es: StandInProcess) -> str:
    return f"http://{net.es.data}:{es.port}"


def acked(shipper: LogshipProcess) -> float:
    return shipper.metric("events_acked_total")


def first_ack_bound(fault: float, timeout: float) -> float:
    """How long after a heal the first request may take to be acknowledged: the attempt
    under way may run out its --request-timeout, then its batch waits out a backoff whose
    ceiling doubled at most once per failed attempt (each lasting about a timeout, or
    longer), up to RETRY_CAP; then one request."""
    attempts = math.ceil(fault / timeout) + 1
    return timeout + min(RETRY_CAP, RETRY_BASE * 2**attempts) + timeout + SLACK


def catch_up(shipper: LogshipProcess, es: StandInProcess, app: App, healed: float,
             bound: float) -> float:  # fmt: skip
    """Wait for every line written to be acknowledged (within `bound` s of `healed`, a
    monotonic time) → seconds from `healed` to caught up."""
    expected = len(app.expected())
    path = app_path(shipper)
    wait_for(lambda: count(es) >= expected and caught_up(shipper, path),
             timeout=max(1.0, healed + bound - time.monotonic()),
             what=f"{expected} lines shipped within {bound:.1f} s of the heal")  # fmt: skip
    return time.monotonic() - healed


def app_path(shipper: LogshipProcess) -> Path:
    return shipper.workdir / "logs" / "app.log"


def heal_and_time(heal: Callable[[], object], shipper: LogshipProcess, bound: float) -> float:
    """Heal, then wait for the next acknowledged request (within `bound` s) → seconds
    from the heal to it. Nothing can be acknowledged before the heal."""
    before = acked(shipper)
    healed = time.monotonic()
    heal()
    wait_for(lambda: acked(shipper) > before, timeout=bound,
             what=f"a request acknowledged within {bound:.1f} s of the heal")  # fmt: skip
    return time.monotonic() - healed


def finish(shipper: LogshipProcess, es: StandInProcess, app: App, what: str,
           figures: dict[str, Any]) -> None:  # fmt: skip
    """Peak RSS within budget, a clean stop, every line exactly once; the figures said."""
    peak = peak_rss(_pid(shipper))
    figures["peak RSS MiB"] = round(peak / 2**20, 1)
    oldest = WATCHED.pop(id(shipper))
    figures["oldest request s"] = round(oldest.stop(), 2)
    print(f"\n{what}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    oldest.check()
    assert peak <= QUEUE_BYTES + OVERHEAD, (
        f"logship's peak RSS {peak / 2**20:.1f} MiB is over --queue-bytes "
        f"{QUEUE_BYTES / 2**20:g} MiB + {OVERHEAD / 2**20:g} MiB"
    )
    stop_cleanly(shipper)
    exactly_once(messages(es), app.expected())


def _pid(shipper: LogshipProcess) -> int:
    """logship's own pid: `ip netns exec` execs it in place, so the pid is the same."""
    assert shipper.proc is not None
    pid = shipper.proc.pid
    assert "agents.logship" in Path(f"/proc/{pid}/cmdline").read_text(), "not logship's pid"
    return pid


def when(event: dict[str, Any]) -> float:
    """An event's @timestamp, as time.time() reads."""
    return datetime.fromisoformat(event["@timestamp"]).timestamp()


def unreachable(shipper: LogshipProcess, since: float = 0.0) -> list[dict[str, Any]]:
    """Its "Elasticsearch unreachable" events (debug ones included) since a time.time()."""
    return [e for e in shipper.logged("Elasticsearch unreachable") if when(e) >= since]


def gave_up_in_time(shipper: LogshipProcess, since: float, timeout: float) -> dict[str, Any]:
    """The request under way at `since` (a time.time()) timed out within its timeout:
    logship said so by then → that event."""
    limit = timeout + SLACK
    wait_for(lambda: unreachable(shipper, since), timeout=limit + 1,
             what="logship to say a request failed")  # fmt: skip
    first = unreachable(shipper, since)[0]
    assert "timed out" in first["error"], first
    assert when(first) - since <= limit, (
        f"the request under way gave up {when(first) - since:.1f} s after the fault began, "
        f"its timeout is {timeout:g} s"
    )
    return first


def queue_peak(shipper: LogshipProcess, seconds: float) -> int:
    """The most bytes logship queued over the next `seconds` (its queue_bytes gauge)."""
    peak, ends = 0.0, time.monotonic() + seconds
    while time.monotonic() < ends:
        peak = max(peak, shipper.metric("queue_bytes"))
        time.sleep(0.05)
    return int(peak)


def bulk_in_progress(es: StandInProcess) -> bool:
    """The stand-in has a bulk request it has not answered yet (its latency fault)."""
    return any(r["status"] is None and r["path"].endswith("/_bulk") for r in es.requests())


# --- a partition -------------------------------------------------------------------------------


@sized(
    dict(lines=6000, rate=400, partition=15.0),
    dict(lines=30_000, rate=500, partition=60.0),
    timeout=600,
)
def test_partition_in_the_middle_of_a_bulk_request_then_healed(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    timeout = 3.0
    shipper = ship(net, shippers, data_url(net, es), tmp, timeout, "--batch-docs", "500")
    app = App(app_path(shipper), count=size.lines, rate=size.rate, width=100)
    wait_for(lambda: count(es) > 0, what="the first lines to be shipped")
    es.control("latency", seconds=1.0)  # a bulk request takes a second: one is under way
    wait_for(lambda: bulk_in_progress(es), what="a bulk request under way")
    began = time.time()
    net.partition()
    gave_up_in_time(shipper, began, timeout)
    queue = queue_peak(shipper, size.partition - (time.time() - began))
    assert queue <= QUEUE_BYTES, f"{queue} bytes queued, over --queue-bytes {QUEUE_BYTES}"
    assert net.dropped("partition") > 0, "the partition dropped nothing"
    es.control("reset_faults")
    bound = first_ack_bound(size.partition, timeout)
    first = heal_and_time(net.heal, shipper, bound)
    healed = time.monotonic() - first
    assert app.finish()["written"] == size.lines
    took = catch_up(shipper, es, app, healed, bound + size.lines / 1000)
    # The request cut by the partition had been applied: its re-send met 409s.
    assert sent_items(es) > size.lines, "no bulk request was sent twice"
    finish(shipper, es, app, f"partition {size.partition:g} s",
           {"queue peak KiB": queue // 1024, "heal to first ack s": round(first, 2),
            "heal to caught up s": round(took, 2), "bound s": round(bound, 1)})  # fmt: skip


# --- a bad link --------------------------------------------------------------------------------


def through_shaping(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any,
    *extra: str, **shaping: Any,
) -> tuple[LogshipProcess, App, float]:  # fmt: skip
    """logship ships while the app writes, all through the shaped link → logship, the
    app, seconds from the app's last line to caught up (bounded by `size.catch_up`)."""
    net.netem(**shaping)
    shipper = ship(net, shippers, data_url(net, es), tmp, size.timeout, *extra)
    app = App(app_path(shipper), count=size.lines, rate=size.rate, width=size.width)
    app.finish()
    written = time.monotonic()
    took = catch_up(shipper, es, app, written, size.catch_up)
    return shipper, app, took


@sized(
    dict(lines=3000, rate=500, width=200, timeout=10.0, catch_up=90),
    dict(lines=30_000, rate=500, width=200, timeout=10.0, catch_up=300),
)
def test_20_percent_packet_loss(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """Small uncompressed batches: many packets, so many lost."""
    shipper, app, took = through_shaping(net, es, tmp, shippers, size, "--batch-docs", "100",
                                         "--no-compress", loss=0.2)  # fmt: skip
    lost = net.dropped("loss")
    assert lost > 0, "no packet was lost"
    finish(shipper, es, app, "20% loss",
           {"packets dropped": lost, "last line to caught up s": round(took, 2)})  # fmt: skip


@sized(
    dict(lines=3000, rate=1000, width=100, timeout=10.0, catch_up=60),
    dict(lines=30_000, rate=1000, width=100, timeout=10.0, catch_up=300),
)
def test_500_ms_latency_with_200_ms_jitter(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    rtt = net.rtt()  # before: the link as made
    shipper, app, took = through_shaping(net, es, tmp, shippers, size, "--batch-docs", "500",
                                         delay=0.5, jitter=0.2)  # fmt: skip
    slow = net.rtt()
    assert slow >= 2 * (0.5 - 0.2), f"round trip {slow:.3f} s: the delay is not applied"
    finish(shipper, es, app, "500 ± 200 ms",
           {"round trip ms": f"{rtt * 1000:.1f} -> {slow * 1000:.0f}",
            "last line to caught up s": round(took, 2)})  # fmt: skip


@sized(
    dict(lines=2000, rate=1000, width=300, timeout=10.0, catch_up=60),
    dict(lines=20_000, rate=1000, width=300, timeout=10.0, catch_up=400),
)
def test_1_mbit_per_second(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """Uncompressed bodies, so that the link is what limits (the app's lines gzip to
    almost nothing)."""
    started = time.monotonic()
    shipper, app, took = through_shaping(
        net, es, tmp, shippers, size, "--no-compress", "--batch-docs", "200",
        "--max-in-flight", "2", rate="1mbit",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    body = sum(r["body_bytes"] for r in es.requests() if r["path"].endswith("/_bulk"))
    least = body * 8 / 1_000_000
    assert elapsed >= 0.8 * least, f"{body} bytes in {elapsed:.1f} s: faster than 1 Mbit/s"
    assert net.qdisc_bytes() >= body
    finish(shipper, es, app, "1 Mbit/s",
           {"bulk bytes": body, "at 1 Mbit/s s": round(least, 1), "took s": round(elapsed, 1),
            "last line to caught up s": round(took, 2)})  # fmt: skip


# --- peers that do not answer --------------------------------------------------------------------


@sized(dict(silent=10.0, lines=3000, rate=300), dict(silent=60.0, lines=20_000, rate=300))
def test_a_peer_that_accepts_and_never_answers_then_elasticsearch(
    net: TestNet, tmp: Path, shippers: Shippers, size: Any
) -> None:
    timeout = 2.0
    port = free_port()  # any port is free on the es host
    peer = net.spawn_ready(net.es, sys.executable, str(PEERS), "silent", net.es.data, str(port))
    url = f"http://{net.es.data}:{port}"
    shipper = ship(net, shippers, url, tmp, timeout)
    app = App(app_path(shipper), count=size.lines, rate=size.rate, width=100)
    began = time.time()
    gave_up_in_time(shipper, began, timeout)
    wait_quietly(size.silent - (time.time() - began))
    peer.send_signal(signal.SIGTERM)
    said, _ = peer.communicate(timeout=10)
    # Seen from the peer: every connection was let go within the request timeout.
    held = [float(x.split()[1]) for x in said.decode().split("\n") if x.strip()]
    assert len(held) >= size.silent / (timeout + RETRY_CAP), f"too few requests: {held}"
    assert max(held) <= timeout + SLACK, f"a request stayed {max(held):.1f} s: {held}"
    es = standin(net, port=port)
    try:
        bound = first_ack_bound(size.silent, timeout)
        first = heal_and_time(es.start, shipper, bound)
        healed = time.monotonic() - first
        app.finish()
        took = catch_up(shipper, es, app, healed, bound + size.lines / 1000)
        finish(shipper, es, app, f"silent peer {size.silent:g} s",
               {"requests let go": len(held), "longest held s": max(held),
                "Elasticsearch up to first ack s": round(first, 2),
                "to caught up s": round(took, 2)})  # fmt: skip
    finally:
        es.stop()


@sized(
    dict(lines=6000, rate=1000, window=5.0, catch_up=60),
    dict(lines=60_000, rate=1000, window=45.0, catch_up=300),
)
def test_connection_reset_in_the_middle_of_a_response(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    port = free_port()
    cutter = net.spawn_ready(net.es, sys.executable, str(PEERS), "cutter", net.es.data,
                             str(port), str(es.port), "0.5", "1")  # fmt: skip
    shipper = ship(net, shippers, f"http://{net.es.data}:{port}", tmp, 5.0, "--batch-docs", "300")
    app = App(app_path(shipper), count=size.lines, rate=size.rate, width=100)
    wait_for(lambda: count(es) > 0, what="the first lines to be shipped")
    cutter.send_signal(signal.SIGUSR1)
    wait_quietly(size.window)
    stopped = time.monotonic()
    cutter.send_signal(signal.SIGUSR2)
    app.finish()
    took = catch_up(shipper, es, app, stopped, size.catch_up)
    resets = [e for e in unreachable(shipper) if "reset" in e["error"]]
    assert resets, f"no connection was reset: {unreachable(shipper)[:3]}"
    assert sent_items(es) > size.lines, "no cut answer's request was sent again"
    finish(shipper, es, app, "answers cut by RST",
           {"resets seen": len(resets), "items sent": sent_items(es),
            "cuts over to caught up s": round(took, 2)})  # fmt: skip


# --- a name that does not resolve ----------------------------------------------------------------


@sized(dict(down=10.0, lines=3000, rate=300), dict(down=30.0, lines=10_000, rate=300))
def test_elasticsearch_name_not_resolving_then_resolving(
    net: TestNet, es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """Each lookup waits the resolver's 5 s for a nameserver that never answers, longer
    than the request timeout: the request still ends at its timeout."""
    timeout = 2.0
    name = "elasticsearch.pod-agents.test"
    net.resolve(name, None)
    shipper = ship(net, shippers, f"http://{name}:{es.port}", tmp, timeout)
    app = App(app_path(shipper), count=size.lines, rate=size.rate, width=100)
    began = time.time()
    failed = gave_up_in_time(shipper, began, timeout)
    assert name in failed["error"], failed
    wait_quietly(size.down - (time.time() - began))
    assert count(es) == 0, "shipped while the name did not resolve"
    bound = first_ack_bound(size.down, timeout) + net.resolver_timeout
    first = heal_and_time(lambda: net.resolve(name, net.es.data), shipper, bound)
    healed = time.monotonic() - first
    app.finish()
    took = catch_up(shipper, es, app, healed, bound + size.lines / 1000)
    failures = unreachable(shipper)
    finish(shipper, es, app, f"name unresolved {size.down:g} s",
           {"failed attempts": len(failures), "resolved to first ack s": round(first, 2),
            "to caught up s": round(took, 2)})  # fmt: skip


def test_the_test_hosts_are_gone_afterwards() -> None:
    """What a killed run left (its pid gone) is swept when test hosts are made; what a
    test made is taken down, also when it fails."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = f"pa-{dead.pid}-es"
    subprocess.run(["ip", "netns", "add", left], check=True)  # as a killed run leaves it
    made: list[str] = []

    def failing_test() -> None:
        with test_net() as net:
            made.extend([net.es.name, net.ship.name])
            assert left not in namespaces(), "the leftover was not swept"
            raise RuntimeError("a test failing midway")

    try:
        with pytest.raises(RuntimeError, match="midway"):
            failing_test()
    finally:
        subprocess.run(["ip", "netns", "delete", left], capture_output=True, check=False)
    assert made and not set(made) & set(namespaces())
    assert not (Path("/etc/netns") / made[1]).exists()


def test_a_delay_that_stopped_holding_packets_is_not_missed(net: TestNet) -> None:
    """Were a delaying process to end, its packets would pass undelayed (--queue-bypass):
    a test would measure a link it did not ask for. Unshaping says so."""
    net.netem(delay=0.05)
    assert net.rtt() >= 0.09
    net.delaying[0].kill()
    with pytest.raises(RuntimeError, match="delaying process ended early"):
        net.clear()
    assert net.rtt() < 0.05, "the link is not as made again"
    net.netem(delay=0.05)  # and it can be shaped again
    net.clear()


def namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
