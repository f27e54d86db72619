"""dns:// targets against a real DNS server on 127.0.0.1, with waitfor as a real process.

The server (tests/integration/dns_server.py) is changed while waitfor runs: records
appear or vanish after a delay, names answer SERVFAIL, never answer, or come back
truncated over UDP. Every test asserts the exit code and what waitfor said.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import json_events, start_waitfor, stderr_at_exit
from tests.integration.dns_server import DnsServer

DELAY = 1.0  # how long records take to appear or vanish
FAST = ("--json", "--interval", "200ms")


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@dataclass
class Run:
    code: int
    elapsed: float  # wall time of the whole process, start-up included
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return json_events(self.stderr)

    @property
    def final(self) -> str:
        return self.events[-1]["message"]

    def details(self, message: str, key: str) -> list[str]:
        return [e[key] for e in self.events if e["message"] == message and key in e]


class Waitfor:
    """Starts waitfor processes and makes sure none outlives the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, timeout: str = "10s") -> tuple[subprocess.Popen[str], float]:
        proc = start_waitfor(*FAST, "--timeout", timeout, *args)
        self.procs.append(proc)
        return proc, time.monotonic()

    def finish(self, proc: subprocess.Popen[str], started: float, limit: float = 20) -> Run:
        stderr = stderr_at_exit(proc, limit)
        return Run(proc.returncode, time.monotonic() - started, stderr)

    def run(self, *args: str, timeout: str = "10s") -> Run:
        return self.finish(*self.start(*args, timeout=timeout))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def waitfor() -> Iterator[Waitfor]:
    runner = Waitfor()
    try:
        yield runner
    finally:
        runner.close()


def dns(server: DnsServer, name: str, options: str = "") -> str:
    extra = f"&{options}" if options else ""
    return f"dns://{name}#server=127.0.0.1:{server.port}{extra}"


def assert_ready(run: Run, detail: str) -> None:
    assert run.code == 0, run.stderr
    assert run.final == "all targets ready", run.stderr
    (ready,) = run.details("ready", "detail")
    assert detail in ready, run.stderr


def assert_timed_out(run: Run, *reasons: str) -> None:
    assert run.code == 124, run.stderr
    assert run.final.startswith("timed out after"), run.stderr
    for reason in reasons:
        assert reason in run.final, run.stderr


# --- records that appear later ------------------------------------------------------


def test_waits_for_records_that_appear_later(dns_server: DnsServer, waitfor: Waitfor) -> None:
    proc, started = waitfor.start(dns(dns_server, "late.example"))
    dns_server.later(DELAY, dns_server.add, "late.example", "A", "10.0.0.7")
    run = waitfor.finish(proc, started)

    assert_ready(run, "1 address record(s): 10.0.0.7")
    assert run.elapsed >= DELAY
    not_ready = run.details("not ready", "error")
    assert not_ready, "waitfor should have seen the name missing first"
    assert "NXDOMAIN" in not_ready[0]
    assert len(dns_server.asked("late.example")) >= 4  # A and AAAA, before and after


def test_waits_for_srv_records_that_appear_later(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("_pg._tcp.db.example", "SRV", "0 0 5432 db-0.example.")
    proc, started = waitfor.start(
        dns(dns_server, "_pg._tcp.db.example", "type=SRV&values=db-0.example:5432,db-1.example")
    )
    dns_server.later(DELAY, dns_server.add, "_pg._tcp.db.example", "SRV", "0 0 5432 db-1.example.")
    run = waitfor.finish(proc, started)

    assert_ready(run, "2 SRV record(s)")
    assert run.elapsed >= DELAY
    assert any("SRV records lack db-1.example" in e for e in run.details("not ready", "error"))


def test_min_count_waits_for_the_third_record(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("pool.example", "A", "10.0.0.1", "10.0.0.2")
    proc, started = waitfor.start(dns(dns_server, "pool.example", "min=3"))
    dns_server.later(DELAY, dns_server.add, "pool.example", "A", "10.0.0.3")
    run = waitfor.finish(proc, started)

    assert_ready(run, "3 address record(s)")
    assert run.elapsed >= DELAY
    assert "pool.example: 2 address record(s), need 3" in run.details("not ready", "error")[0]


# --- record types and expected values -----------------------------------------------


@pytest.mark.parametrize(
    ("values", "count"),
    [
        ("db-0.example:5432", 2),  # target:port
        ("db-1.example", 2),  # bare target, any port
        ("db-0.example:5432,DB-1.Example.:5433", 2),  # case and final dot do not matter
        ("", 2),
    ],
)
def test_srv(dns_server: DnsServer, waitfor: Waitfor, values: str, count: int) -> None:
    dns_server.add(
        "_pg._tcp.db.example", "SRV", "0 0 5432 db-0.example.", "10 5 5433 db-1.example."
    )
    options = "type=SRV" + (f"&values={values}" if values else "")
    run = waitfor.run(dns(dns_server, "_pg._tcp.db.example", options))
    assert_ready(run, f"{count} SRV record(s)")


def test_srv_with_the_wrong_port_times_out_listing_what_was_found(
    dns_server: DnsServer, waitfor: Waitfor
) -> None:
    dns_server.add(
        "_pg._tcp.db.example", "SRV", "0 0 5432 db-0.example.", "10 5 5433 db-1.example."
    )
    target = dns(dns_server, "_pg._tcp.db.example", "type=SRV&values=db-0.example:6543")
    run = waitfor.run(target, timeout="1s")
    assert_timed_out(
        run, "SRV records lack db-0.example:6543", "db-0.example:5432", "db-1.example:5433"
    )
    assert f"(asked 127.0.0.1:{dns_server.port})" in run.final


def test_txt(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("cfg.example", "TXT", "status=ready", "version 2")
    run = waitfor.run(dns(dns_server, "cfg.example", "type=TXT&values=status=ready"))
    assert_ready(run, "2 TXT record(s)")


def test_txt_values_are_case_sensitive(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("cfg.example", "TXT", "status=ready")
    run = waitfor.run(dns(dns_server, "cfg.example", "type=TXT&values=status=READY"), timeout="1s")
    assert_timed_out(run, "TXT records lack status=READY (have status=ready)")


def test_aaaa(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("v6.example", "AAAA", "2001:db8::1")
    dns_server.add("v6.example", "A", "10.0.0.1")  # not what is asked for
    run = waitfor.run(dns(dns_server, "v6.example", "type=AAAA&values=2001:0db8:0:0::0001"))
    assert_ready(run, "1 AAAA record(s): 2001:db8::1")


def test_default_type_takes_an_ipv6_only_name(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("v6.example", "AAAA", "2001:db8::2")
    run = waitfor.run(dns(dns_server, "v6.example"))
    assert_ready(run, "1 address record(s): 2001:db8::2")


def test_cname(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("alias.example", "CNAME", "backend.example.")
    dns_server.add("backend.example", "A", "10.0.0.9")
    run = waitfor.run(dns(dns_server, "alias.example", "type=CNAME&values=Backend.Example."))
    assert_ready(run, "1 CNAME record(s): backend.example")


def test_address_through_a_cname(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("alias.example", "CNAME", "backend.example.")
    dns_server.add("backend.example", "A", "10.0.0.9")
    run = waitfor.run(dns(dns_server, "alias.example", "values=10.0.0.9"))
    assert_ready(run, "1 address record(s): 10.0.0.9")


def test_mx(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("example.org", "MX", "10 mail-1.example.org.", "20 mail-2.example.org.")
    run = waitfor.run(dns(dns_server, "example.org", "type=MX&values=mail-2.example.org"))
    assert_ready(run, "2 MX record(s)")


def test_ns(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("example.org", "NS", "ns1.example.org.")
    run = waitfor.run(dns(dns_server, "example.org", "type=NS&values=ns1.example.org."))
    assert_ready(run, "1 NS record(s): ns1.example.org")


def test_min_count_not_reached_times_out(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("pool.example", "A", "10.0.0.1", "10.0.0.2")
    run = waitfor.run(dns(dns_server, "pool.example", "min=3"), timeout="1s")
    assert_timed_out(run, "pool.example: 2 address record(s), need 3")


def test_expected_values_missing_times_out_listing_what_was_found(
    dns_server: DnsServer, waitfor: Waitfor
) -> None:
    dns_server.add("pool.example", "A", "10.0.0.1")
    run = waitfor.run(dns(dns_server, "pool.example", "values=10.0.0.1,10.0.0.99"), timeout="1s")
    assert_timed_out(run, "address records lack 10.0.0.99 (have 10.0.0.1)")


def test_name_without_the_asked_type_times_out(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("host.example", "A", "10.0.0.1")
    run = waitfor.run(dns(dns_server, "host.example", "type=SRV"), timeout="1s")
    assert_timed_out(run, "host.example: 0 SRV record(s), need 1")


# --- failures -----------------------------------------------------------------------


def test_nxdomain_times_out(dns_server: DnsServer, waitfor: Waitfor) -> None:
    run = waitfor.run(dns(dns_server, "missing.example"), timeout="1s")
    assert_timed_out(run, "missing.example: no such name (NXDOMAIN; tried missing.example)")
    assert "attempts" in run.events[-2] and run.events[-2]["attempts"] >= 2


def test_servfail_times_out_saying_the_nameserver_failed(
    dns_server: DnsServer, waitfor: Waitfor
) -> None:
    dns_server.add("broken.example", "A", "10.0.0.1")
    dns_server.servfail("broken.example")
    run = waitfor.run(dns(dns_server, "broken.example"), timeout="1s")
    assert_timed_out(
        run,
        "broken.example: every nameserver failed",
        f"127.0.0.1:{dns_server.port} answered SERVFAIL",
    )


def test_silent_nameserver_ends_at_the_deadline(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("silent.example", "A", "10.0.0.1")
    dns_server.drop("silent.example")
    run = waitfor.run(dns(dns_server, "silent.example"), timeout="2s")
    assert_timed_out(run, "no answer before the 2s deadline")
    assert 2.0 <= run.elapsed < 6.0
    assert dns_server.asked("silent.example"), "the question should have reached the server"


def test_silent_nameserver_bounded_by_the_attempt_timeout(
    dns_server: DnsServer, waitfor: Waitfor
) -> None:
    dns_server.drop("silent.example")
    run = waitfor.run("--attempt-timeout", "500ms", dns(dns_server, "silent.example"), timeout="2s")
    assert_timed_out(run, "no answer within 0.5s")
    assert run.elapsed < 6.0
    assert run.events[-2]["attempts"] >= 2  # each attempt was cut short, then retried


def test_servfail_that_recovers(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("flaky.example", "A", "10.0.0.1")
    dns_server.servfail("flaky.example")
    proc, started = waitfor.start(dns(dns_server, "flaky.example"))
    dns_server.later(DELAY, dns_server.servfail, "flaky.example", False)
    run = waitfor.finish(proc, started)
    assert_ready(run, "10.0.0.1")
    assert run.elapsed >= DELAY
    assert "SERVFAIL" in run.details("not ready", "error")[0]


# --- search domains and ndots -------------------------------------------------------

CLUSTER = "myservice.default.svc.cluster.local"


def resolv_conf(
    tmp_path: Path, ndots: int = 5, nameserver: bool = True, name: str = "resolv.conf"
) -> str:
    path = tmp_path / name
    lines = [
        *(["nameserver 127.0.0.1"] if nameserver else []),
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        f"options ndots:{ndots}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("nameserver", [True, False], ids=["nameserver-line", "no-nameserver"])
def test_short_name_found_through_the_search_list(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path, nameserver: bool
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path, nameserver=nameserver)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, "myservice"))
    assert_ready(run, "1 address record(s): 10.96.0.10")
    # glibc's order: the search list first (fewer than ndots dots), the first suffix wins
    assert dns_server.asked_names() == [CLUSTER]


def test_search_false_does_not_use_the_search_list(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path)
    run = waitfor.run(
        "--resolv-conf", conf, dns(dns_server, "myservice", "search=false"), timeout="1s"
    )
    assert_timed_out(run, "NXDOMAIN; tried myservice)")
    assert dns_server.asked_names() == ["myservice"]


def test_trailing_dot_does_not_use_the_search_list(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, "myservice."), timeout="1s")
    assert_timed_out(run, "NXDOMAIN; tried myservice)")
    assert dns_server.asked_names() == ["myservice"]


def test_fully_qualified_name_with_a_trailing_dot(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, CLUSTER + "."))
    assert_ready(run, "10.96.0.10")
    assert dns_server.asked_names() == [CLUSTER]


def test_fewer_dots_than_ndots_searches_first(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path, ndots=5)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, "myservice.default"))
    assert_ready(run, "10.96.0.10")
    assert dns_server.asked_names() == ["myservice.default.default.svc.cluster.local", CLUSTER]


def test_at_least_ndots_dots_tries_the_name_as_is_first(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    dns_server.add(CLUSTER, "A", "10.96.0.10")
    conf = resolv_conf(tmp_path, ndots=1)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, "myservice.default"))
    assert_ready(run, "10.96.0.10")
    assert dns_server.asked_names() == [
        "myservice.default",
        "myservice.default.default.svc.cluster.local",
        CLUSTER,
    ]


def test_nxdomain_through_the_search_list_names_every_name_tried(
    dns_server: DnsServer, waitfor: Waitfor, tmp_path: Path
) -> None:
    conf = resolv_conf(tmp_path)
    run = waitfor.run("--resolv-conf", conf, dns(dns_server, "nosuch"), timeout="1s")
    assert_timed_out(
        run,
        "tried nosuch.default.svc.cluster.local, nosuch.svc.cluster.local, "
        "nosuch.cluster.local, nosuch)",
    )


# --- truncation ---------------------------------------------------------------------


def test_truncated_udp_answer_is_asked_again_over_tcp(
    dns_server: DnsServer, waitfor: Waitfor
) -> None:
    dns_server.add("tc.example", "A", "10.0.0.5")
    dns_server.truncate("tc.example")
    run = waitfor.run(dns(dns_server, "tc.example", "type=A"))
    assert_ready(run, "1 A record(s): 10.0.0.5")
    assert dns_server.asked("tc.example", "udp")
    assert dns_server.asked("tc.example", "tcp")


def test_answer_too_big_for_udp_comes_over_tcp(dns_server: DnsServer, waitfor: Waitfor) -> None:
    big = [f"record-{i:02d}-" + "x" * 40 for i in range(30)]  # ~1.5 kB > 512 bytes
    dns_server.add("big.example", "TXT", *big)
    run = waitfor.run(dns(dns_server, "big.example", "type=TXT&min=30&values=" + big[-1]))
    assert_ready(run, "30 TXT record(s)")
    assert dns_server.asked("big.example", "tcp")


# --- --invert -----------------------------------------------------------------------


def test_invert_waits_until_the_name_disappears(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("old.example", "A", "10.0.0.1")
    proc, started = waitfor.start("--invert", dns(dns_server, "old.example"))
    dns_server.later(DELAY, dns_server.remove, "old.example")
    run = waitfor.finish(proc, started)

    assert run.code == 0, run.stderr
    assert run.final == "all targets down", run.stderr
    assert run.elapsed >= DELAY
    assert "still up: 1 address record(s): 10.0.0.1" in run.details("not ready", "error")
    (down,) = run.details("summary", "outcome")
    assert down == "down"


def test_invert_times_out_while_the_name_stays(dns_server: DnsServer, waitfor: Waitfor) -> None:
    dns_server.add("old.example", "A", "10.0.0.1")
    run = waitfor.run("--invert", dns(dns_server, "old.example"), timeout="1s")
    assert run.code == 124, run.stderr
    assert "not down" in run.final
    assert "still up: 1 address record(s): 10.0.0.1" in run.final
