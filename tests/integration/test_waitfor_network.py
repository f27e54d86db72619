"""waitfor on a network that fails: waitfor on one test host, its targets on another
(tests/netns.py), the link between them partitioned or lossy. waitfor ends by its
deadline with the reason for each target, and is ready as soon as a partition heals."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import WAITFOR, json_events, stderr_at_exit, waitfor_env
from tests.netns import TestNet, test_net

pytestmark = pytest.mark.integration

PEERS = Path(__file__).parents[1] / "faults" / "netpeers.py"
SLACK = 1.5  # s past the deadline: start-up, the final report, a loaded machine


@pytest.fixture
def net() -> Iterator[TestNet]:
    with test_net() as made:
        yield made


def serve(net: TestNet, status: int, port: int = 8080) -> str:
    """An HTTP server on the es host answering `status` → its URL from the ship host."""
    net.spawn_ready(net.es, sys.executable, str(PEERS), "answer", net.es.data, str(port),
                    str(status))  # fmt: skip
    return f"http://{net.es.data}:{port}/healthz"


def waitfor(net: TestNet, *args: str) -> tuple[subprocess.Popen[str], float]:
    """waitfor on the ship host, JSON lines on stderr."""
    proc = subprocess.Popen([*net.ship.prefix, *WAITFOR, "--json", *args],
                            env=waitfor_env(), stderr=subprocess.PIPE, text=True)  # fmt: skip
    return proc, time.monotonic()


def finish(proc: subprocess.Popen[str], limit: float = 60) -> tuple[int, str, list[dict]]:  # type: ignore[type-arg]
    stderr = stderr_at_exit(proc, limit)
    return proc.returncode, stderr, json_events(stderr)


def last_errors(events: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    return {e["target"]: e["last_error"] for e in events if e["message"] == "summary"}


def test_targets_behind_a_partition_end_at_the_deadline_each_with_its_reason(
    net: TestNet,
) -> None:
    http = serve(net, 200)
    net.spawn_ready(net.es, sys.executable, str(PEERS), "dns", net.es.data, "5353",
                    "db.example", "10.0.0.5")  # fmt: skip
    dns = f"dns://db.example#server={net.es.data}:5353"
    tcp = f"tcp://{net.es.data}:5432"
    proc, _ = waitfor(net, "--timeout", "5s", http, dns)  # the link as made: both answer
    code, stderr, _ = finish(proc)
    assert code == 0, stderr
    net.partition()
    proc, started = waitfor(net, "--timeout", "4s", "--attempt-timeout", "1s", http, dns, tcp)
    code, stderr, events = finish(proc)
    elapsed = time.monotonic() - started
    assert code == 124, stderr
    assert 4.0 <= elapsed <= 4.0 + SLACK, f"{elapsed:.2f} s for a 4 s deadline"
    assert last_errors(events) == {
        http: "no answer within 1s",
        dns: f"db.example: no answer within 1s (asked {net.es.data}:5353)",
        tcp: "no answer within 1s",
    }, stderr
    assert net.dropped("partition") > 0


def test_ready_as_soon_as_the_partition_heals(net: TestNet) -> None:
    http = serve(net, 200)
    net.partition()
    proc, started = waitfor(net, "--timeout", "30s", "--attempt-timeout", "1s",
                            "--interval", "500ms", http)  # fmt: skip
    time.sleep(3.0)
    assert proc.poll() is None, "ready through a partition"
    healed = time.monotonic()
    net.heal()
    code, stderr, events = finish(proc)
    assert code == 0, stderr
    # the attempt under way at the heal may still wait out its second (the SYN it sent
    # was dropped), then one pause and one attempt
    took = time.monotonic() - healed
    assert took <= 1.0 + 0.5 + SLACK, f"ready {took:.2f} s after the heal"
    not_ready = [e for e in events if e["message"] == "not ready"]
    assert not_ready and not_ready[0]["error"] == "no answer within 1s", stderr
    assert time.monotonic() - started < 30


def test_a_lossy_slow_link_still_gets_the_verdicts_right(net: TestNet) -> None:
    """20% of packets lost and 200 ms +- 50 ms each way: TCP retransmits, attempts take
    longer, and each target still gets its true verdict: ready, or not ready for its own
    reason by the deadline."""
    up = serve(net, 200, port=8080)
    down = serve(net, 503, port=8081)
    net.netem(loss=0.2, delay=0.2, jitter=0.05)
    proc, started = waitfor(net, "--timeout", "15s", up)
    code, stderr, _ = finish(proc)
    assert code == 0, stderr
    proc, started = waitfor(net, "--timeout", "8s", down)
    code, stderr, events = finish(proc)
    elapsed = time.monotonic() - started
    assert code == 124, stderr
    assert 8.0 <= elapsed <= 8.0 + SLACK, f"{elapsed:.2f} s for an 8 s deadline"
    assert last_errors(events)[down].startswith("HTTP 503"), stderr
    assert net.dropped("loss") > 0
