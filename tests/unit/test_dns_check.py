"""The dns:// check's pure helpers and its option handling: no sockets."""

from __future__ import annotations

import io
import re
from pathlib import Path

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from agents._log import Logger
from agents.waitfor.checks import BuildContext, build_check
from agents.waitfor.checks.dns import (
    DnsCheck,
    matches,
    normalise_expected,
    parse_server,
    record_texts,
)
from agents.waitfor.targets import TargetError, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", 53)),
        ("10.0.0.1:5353", ("10.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("fd00::10", ("fd00::10", 53)),
        ("[::1]", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text, "dns://x") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kube-dns", "is not an IP[:port]"),
        ("kube-dns:53", "is not an IP[:port]"),
        ("10.0.0.1:0", "bad port"),
        ("10.0.0.1:65536", "bad port"),
        ("10.0.0.1:", "bad port"),
        ("10.0.0.1:dns", "bad port"),
        ("[::1]:x", "bad port"),
        ("[nope]:53", "is not an IP[:port]"),
    ],
)
def test_parse_server_rejects(text: str, problem: str) -> None:
    with pytest.raises(TargetError, match=re.escape(problem)) as info:
        parse_server(text, "dns://x")
    assert info.value.target == "dns://x"


@pytest.mark.parametrize(
    ("rdtype", "value", "expected"),
    [
        ("A", "10.0.0.1", "10.0.0.1"),
        ("AAAA", "2001:0DB8:0:0::1", "2001:db8::1"),
        ("ADDRESS", "2001:db8:0::1", "2001:db8::1"),
        ("A", "not-an-ip", "not-an-ip"),  # kept: it simply never matches
        ("CNAME", "Backend.Example.", "backend.example"),
        ("NS", "NS1.example.org.", "ns1.example.org"),
        ("MX", "Mail.Example.", "mail.example"),
        ("SRV", "DB-0.Example.", "db-0.example"),
        ("SRV", "db-0.example:5432", "db-0.example:5432"),
        ("SRV", "DB-0.Example.:5432", "db-0.example:5432"),
        ("SRV", "db-0.example:05432", "db-0.example:5432"),
        ("TXT", "Status=Ready.", "Status=Ready."),  # TXT is compared as given
    ],
)
def test_normalise_expected(rdtype: str, value: str, expected: str) -> None:
    assert normalise_expected(rdtype, value) == expected


@pytest.mark.parametrize(
    ("rdtype", "expected", "found", "result"),
    [
        ("SRV", "db-0.example", ["db-0.example:5432"], True),
        ("SRV", "db-0.example:5432", ["db-0.example:5432"], True),
        ("SRV", "db-0.example:5433", ["db-0.example:5432"], False),
        ("SRV", "db-0", ["db-0.example:5432"], False),  # no suffix matching
        ("SRV", "db-0.example", [], False),
        ("A", "10.0.0.1", ["10.0.0.2", "10.0.0.1"], True),
        ("A", "10.0.0.1", ["10.0.0.10"], False),
        ("TXT", "a", ["A"], False),
        ("CNAME", "backend.example", ["backend.example"], True),
    ],
)
def test_matches(rdtype: str, expected: str, found: list[str], result: bool) -> None:
    assert matches(rdtype, expected, found) is result


def answer(name: str, rdtype: str, *rdatas: str) -> dns.resolver.Answer:
    """A real resolver Answer, built from a response message without any network."""
    qname = dns.name.from_text(name)
    query = dns.message.make_query(qname, rdtype)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(qname, 60, "IN", rdtype, *rdatas))
    response = dns.message.from_wire(response.to_wire())  # as it comes off the wire
    return dns.resolver.Answer(qname, dns.rdatatype.from_text(rdtype), dns.rdataclass.IN, response)


@pytest.mark.parametrize(
    ("rdtype", "rdatas", "expected"),
    [
        ("A", ["10.0.0.1"], ["10.0.0.1"]),
        ("AAAA", ["2001:0db8::0001"], ["2001:db8::1"]),
        ("CNAME", ["Backend.Example."], ["backend.example"]),
        ("NS", ["NS1.Example.org."], ["ns1.example.org"]),
        ("MX", ["10 Mail.Example."], ["mail.example"]),
        ("SRV", ["0 0 5432 DB-0.Example."], ["db-0.example:5432"]),
        ("TXT", ['"Status=Ready"'], ["Status=Ready"]),
        ("TXT", ['"part one, " "part two"'], ["part one, part two"]),  # strings joined
        ("TXT", ['"caf\\195\\169"'], ["café"]),
    ],
)
def test_record_texts(rdtype: str, rdatas: list[str], expected: list[str]) -> None:
    assert record_texts(rdtype, answer("x.example.", rdtype, *rdatas)) == expected


def test_record_texts_keeps_every_record() -> None:
    found = record_texts("A", answer("x.example.", "A", "10.0.0.1", "10.0.0.2"))
    assert sorted(found) == ["10.0.0.1", "10.0.0.2"]


# --- building the check: options and resolver configuration --------------------------


def build(raw: str, resolv_conf: Path | str = "/nonexistent/resolv.conf") -> DnsCheck:
    ctx = BuildContext(log=Logger("test", stream=io.StringIO()), resolv_conf=str(resolv_conf))
    check = build_check(parse_target(raw), ctx)
    assert isinstance(check, DnsCheck)
    return check


def write_conf(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_options_are_read() -> None:
    check = build(
        "dns://db.example#type=srv&min=2&values=DB.example.:5432,x&search=false&server=::1"
    )
    assert (check.rdtype, check.minimum, check.search) == ("SRV", 2, False)
    assert check.values == ["db.example:5432", "x"]


def test_defaults(tmp_path: Path) -> None:
    check = build("dns://db.example", write_conf(tmp_path, "nameserver 10.96.0.10"))
    assert (check.rdtype, check.minimum, check.search, check.values) == ("ADDRESS", 1, True, [])


def test_server_option_sets_nameserver_and_port() -> None:
    check = build("dns://db.example#server=127.0.0.1:5353")
    assert check.resolver.nameservers == ["127.0.0.1"]
    assert check.resolver.port == 5353
    assert check.where == " (asked 127.0.0.1:5353)"


@pytest.mark.parametrize("nameserver", [True, False], ids=["nameserver-line", "no-nameserver"])
def test_server_option_keeps_search_list_and_ndots(tmp_path: Path, nameserver: bool) -> None:
    conf = write_conf(
        tmp_path,
        *(["nameserver 10.96.0.10"] if nameserver else []),
        "search default.svc.cluster.local svc.cluster.local",
        "options ndots:5",
    )
    check = build("dns://myservice#server=127.0.0.1:5353", conf)
    assert [n.to_text() for n in check.resolver.search] == [
        "default.svc.cluster.local.",
        "svc.cluster.local.",
    ]
    assert check.resolver.ndots == 5
    assert check.resolver.nameservers == ["127.0.0.1"]


def test_system_resolver_from_resolv_conf(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "nameserver 10.96.0.10", "search a.example", "options ndots:2")
    check = build("dns://myservice", conf)
    assert check.resolver.nameservers == ["10.96.0.10"]
    assert check.resolver.ndots == 2
    assert check.where == ""


def test_relative_and_absolute_names() -> None:
    assert not build("dns://myservice#server=127.0.0.1").qname.is_absolute()
    assert build("dns://myservice.#server=127.0.0.1").qname.is_absolute()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("dns://x#type=PTR", "option type: 'PTR' is not one of A, AAAA"),
        ("dns://x#server=kube-dns", "is not an IP"),
        ("dns://x#min=-1", "min"),
        ("dns://x#search=maybe", "search"),
        ("dns://x#server=127.0.0.1&port=53", "unknown option 'port'"),
    ],
)
def test_bad_options(raw: str, problem: str) -> None:
    with pytest.raises(TargetError, match=problem):
        build(raw)


def test_no_nameserver_anywhere_is_a_configuration_error(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "search a.example")
    with pytest.raises(TargetError, match=r"no nameserver: .* give one with #server=IP"):
        build("dns://x", conf)
