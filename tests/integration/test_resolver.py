"""waitfor's stub resolver against real sockets: several nameservers, one of them silent,
refusing or failing, and the tests' DNS server (dnspython's wire format) answering."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from agents.waitfor.resolver import NameserversFailed, NoSuchName, ResolvConf, Resolver
from tests.integration.dns_server import DnsServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

TRY = 0.3  # seconds each nameserver gets


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        server.add("db.example", "A", "10.0.0.1")
        server.add("db.example", "TXT", "ready")
        yield server


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A bound UDP socket that never reads: questions sent to it get no reply at all."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def closed_udp() -> int:
    """A UDP port where nothing listens: the kernel answers with ICMP port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolver(*ports: int, attempts: int = 2, search: list[str] | None = None) -> Resolver:
    conf = ResolvConf(
        nameservers=[("127.0.0.1", port) for port in ports],
        search=search or [],
        timeout=TRY,
        attempts=attempts,
    )
    return Resolver(conf)


async def test_a_silent_first_nameserver_hands_over_to_the_next(
    dns_server: DnsServer, silent_udp: int
) -> None:
    started = time.monotonic()
    found = await resolver(silent_udp, dns_server.port).resolve("db.example", "A")
    assert found == ["10.0.0.1"]
    assert TRY <= time.monotonic() - started < TRY + 1.0  # one try's wait, then the next


async def test_a_refusing_first_nameserver_hands_over_at_once(
    dns_server: DnsServer, closed_udp: int
) -> None:
    started = time.monotonic()
    found = await resolver(closed_udp, dns_server.port).resolve("db.example", "TXT")
    assert found == ["ready"]
    assert time.monotonic() - started < TRY  # ICMP said no: no waiting for it


async def test_a_failing_nameserver_hands_over_and_every_failure_is_named(
    dns_server: DnsServer, closed_udp: int
) -> None:
    dns_server.servfail("db.example")
    with pytest.raises(NameserversFailed) as caught:
        await resolver(dns_server.port, closed_udp).resolve("db.example", "A")
    assert caught.value.failures == [
        f"127.0.0.1:{dns_server.port} answered SERVFAIL",
        f"127.0.0.1:{closed_udp} refused the question (nothing listens)",
    ]
    assert not caught.value.silent
    assert len(dns_server.asked("db.example")) == 2  # attempts=2 rounds


async def test_every_nameserver_silent_gives_up_after_its_rounds(silent_udp: int) -> None:
    started = time.monotonic()
    with pytest.raises(NameserversFailed) as caught:
        await resolver(silent_udp, attempts=3).resolve("db.example", "A")
    assert caught.value.silent
    assert 3 * TRY <= time.monotonic() - started < 3 * TRY + 1.0


async def test_replies_to_another_question_are_dropped(dns_server: DnsServer) -> None:
    dns_server.mangle("db.example", "wrong-id")
    with pytest.raises(NameserversFailed) as caught:
        await resolver(dns_server.port, attempts=1).resolve("db.example", "A")
    assert caught.value.silent  # the reply came, and was not taken for ours
    assert dns_server.asked("db.example")


async def test_nxdomain_is_final_for_a_name_and_the_search_goes_on(
    dns_server: DnsServer, closed_udp: int
) -> None:
    dns_server.add("db.ns.svc.cluster.local", "A", "10.96.0.7")
    ask = resolver(dns_server.port, closed_udp, search=["other.example", "ns.svc.cluster.local"])
    assert await ask.resolve("db", "A") == ["10.96.0.7"]
    assert dns_server.asked_names() == ["db.other.example", "db.ns.svc.cluster.local"]
    with pytest.raises(NoSuchName) as caught:
        await ask.resolve("nothing", "A")
    assert caught.value.tried == [
        "nothing.other.example",
        "nothing.ns.svc.cluster.local",
        "nothing",
    ]


async def test_a_name_without_the_type_ends_the_search(dns_server: DnsServer) -> None:
    dns_server.add("db.first.example", "A", "10.0.0.9")
    dns_server.add("db.second.example", "AAAA", "fd00::9")
    ask = resolver(dns_server.port, search=["first.example", "second.example"])
    assert await ask.resolve("db", "AAAA") == []
    assert "db.second.example" not in dns_server.asked_names()
