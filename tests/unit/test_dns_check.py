"""The dns:// check's pure helpers, its resolver's wire format and resolv.conf reading,
and its option handling: no sockets. Replies are written by dnspython, an independent
implementation of the wire format."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from agents._log import Logger
from agents.waitfor.checks import BuildContext, build_check
from agents.waitfor.checks.dns import (
    DnsCheck,
    matches,
    normalise_expected,
    parse_server,
)
from agents.waitfor.resolver import (
    BadName,
    Malformed,
    ResolvConf,
    check_name,
    make_query,
    names_to_try,
    parse_reply,
    records_for,
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


def wire_answer(name: str, rdtype: str, *rdatas: str, cname: str = "") -> bytes:
    """A reply as dnspython writes it (names compressed), to our question for `name`."""
    qname = dns.name.from_text(name)
    query = dns.message.make_query(qname, rdtype)
    response = dns.message.make_response(query)
    owner = qname
    if cname:
        response.answer.append(dns.rrset.from_text(qname, 60, "IN", "CNAME", cname))
        owner = dns.name.from_text(cname)
    if rdatas:
        response.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, *rdatas))
    return response.to_wire()


def texts(name: str, rdtype: str, *rdatas: str, cname: str = "") -> list[str] | None:
    reply = parse_reply(wire_answer(name, rdtype, *rdatas, cname=cname))
    return records_for(name.rstrip(".").lower(), rdtype, reply.answers)


@pytest.mark.parametrize(
    ("rdtype", "rdatas", "expected"),
    [
        ("A", ["10.0.0.1"], ["10.0.0.1"]),
        ("AAAA", ["2001:0db8::0001"], ["2001:db8::1"]),
        ("CNAME", ["Backend.Example."], ["backend.example"]),
        ("NS", ["NS1.Example.org."], ["ns1.example.org"]),
        ("MX", ["10 Mail.Example."], ["mail.example"]),
        ("SRV", ["0 0 5432 DB-0.Example."], ["db-0.example:5432"]),
        ("SRV", ["0 0 5432 x.example."], ["x.example:5432"]),  # target compressed onto the qname
        ("TXT", ['"Status=Ready"'], ["Status=Ready"]),
        ("TXT", ['"part one, " "part two"'], ["part one, part two"]),  # strings joined
        ("TXT", ['"caf\\195\\169"'], ["café"]),
    ],
)
def test_records_read_from_the_wire(rdtype: str, rdatas: list[str], expected: list[str]) -> None:
    assert texts("x.example.", rdtype, *rdatas) == expected


def test_every_record_is_kept() -> None:
    assert sorted(texts("x.example.", "A", "10.0.0.1", "10.0.0.2") or []) == [
        "10.0.0.1",
        "10.0.0.2",
    ]


def test_cname_chain_in_the_answer_is_followed() -> None:
    assert texts("X.example.", "A", "10.0.0.7", cname="real.example.") == ["10.0.0.7"]
    # a CNAME whose target's records are not in the answer: none for the name
    assert texts("x.example.", "A", cname="real.example.") is None
    assert texts("x.example.", "CNAME", "real.example.") == ["real.example"]


def test_a_cname_loop_ends() -> None:
    query = dns.message.make_query("a.example.", "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("a.example.", 60, "IN", "CNAME", "b.example."))
    response.answer.append(dns.rrset.from_text("b.example.", 60, "IN", "CNAME", "a.example."))
    assert records_for("a.example", "A", parse_reply(response.to_wire()).answers) is None


def test_reply_header_question_and_rcode() -> None:
    query = dns.message.make_query("x.example.", "SRV")
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    reply = parse_reply(response.to_wire())
    assert (reply.qid, reply.rcode, reply.truncated) == (query.id, 3, False)
    assert reply.question == ("x.example", 33, 1)


def test_our_query_reads_back_as_asked() -> None:
    qid, wire = make_query("xn--caf-dma.example", "AAAA")
    query = dns.message.from_wire(wire)
    assert query.id == qid
    assert query.flags & dns.flags.RD
    assert (query.question[0].name.to_text(), query.question[0].rdtype) == (
        "xn--caf-dma.example.",
        dns.rdatatype.AAAA,
    )


def test_a_truncated_reply_keeps_the_records_that_fit() -> None:
    wire = bytearray(wire_answer("x.example.", "A", "10.0.0.1", "10.0.0.2"))
    wire[2] |= 0x02  # TC
    reply = parse_reply(bytes(wire[:-7]))  # the last record cut in half
    assert reply.truncated
    (kept,) = reply.answers  # dnspython writes a set's records in either order
    assert kept.text in ("10.0.0.1", "10.0.0.2")


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        (b"\x12\x34\x81", "shorter than a header"),
        (struct.pack("!HHHHHH", 1, 0x0100, 0, 0, 0, 0), "not a reply"),
        # a name that points at itself
        (struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\1\0\1", "loop"),
        # a label that runs past the end
        (struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x3fabc", "past the end"),
        # an answer count with no answers (and not truncated)
        (struct.pack("!HHHHHH", 1, 0x8180, 0, 2, 0, 0), "past the end"),
        # an A record of 3 bytes
        (
            struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0)
            + b"\0"
            + struct.pack("!HHIH", 1, 1, 60, 3)
            + b"\1\2\3",
            "A record of 3 bytes",
        ),
    ],
)
def test_replies_that_do_not_parse(wire: bytes, problem: str) -> None:
    with pytest.raises(Malformed, match=problem):
        parse_reply(wire)


# --- resolv.conf and the search list --------------------------------------------------


def test_resolv_conf_as_glibc_reads_it() -> None:
    conf = ResolvConf.parse(
        "\n".join(
            [
                "# comment",
                "nameserver 10.96.0.10",
                "nameserver fd00::10 ; trailing comment",
                "nameserver kube-dns",  # not an address: skipped
                "nameserver 10.0.0.3",
                "nameserver 10.0.0.4",  # a fourth: glibc uses three
                "domain first.example",
                "search Default.svc.cluster.local. svc.cluster.local",  # the last one wins
                "options ndots:5 timeout:3 attempts:9 rotate edns0",
            ]
        )
    )
    assert conf.nameservers == [("10.96.0.10", 53), ("fd00::10", 53), ("10.0.0.3", 53)]
    assert conf.search == ["default.svc.cluster.local", "svc.cluster.local"]
    assert (conf.ndots, conf.timeout, conf.attempts) == (5, 3.0, 5)


def test_resolv_conf_defaults_and_bounds() -> None:
    conf = ResolvConf.parse("nameserver 10.0.0.1\ndomain a.example\noptions ndots:99 timeout:0")
    assert conf.search == ["a.example"]
    assert (conf.ndots, conf.timeout, conf.attempts) == (15, 1.0, 2)
    assert ResolvConf.parse("search x.example").ndots == 1


@pytest.mark.parametrize(
    ("name", "ndots", "search", "expected"),
    [
        ("db", 5, True, ["db.ns.svc.cluster.local", "db.svc.cluster.local", "db"]),
        ("db.ns", 1, True, ["db.ns", "db.ns.ns.svc.cluster.local", "db.ns.svc.cluster.local"]),
        ("db.ns", 2, True, ["db.ns.ns.svc.cluster.local", "db.ns.svc.cluster.local", "db.ns"]),
        ("db.", 5, True, ["db"]),
        ("DB", 5, False, ["db"]),
    ],
)
def test_names_to_try(name: str, ndots: int, search: bool, expected: list[str]) -> None:
    conf = ResolvConf(search=["ns.svc.cluster.local", "svc.cluster.local"], ndots=ndots)
    assert names_to_try(name, conf, search=search) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MyService", "myservice"),
        ("db.example.", "db.example."),
        ("café.example", "xn--caf-dma.example"),
    ],
)
def test_check_name(name: str, expected: str) -> None:
    assert check_name(name) == expected


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a..b", "empty label"),
        ("x" * 64 + ".example", "longer than 63"),
        (("a" * 60 + ".") * 5, "255"),
    ],
)
def test_names_dns_cannot_carry(name: str, problem: str) -> None:
    with pytest.raises(BadName, match=problem):
        check_name(name)


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
    assert check.conf.nameservers == [("127.0.0.1", 5353)]
    assert check.where == " (asked 127.0.0.1:5353)"
    assert build("dns://db.example#server=[::1]:5353").where == " (asked [::1]:5353)"


@pytest.mark.parametrize("nameserver", [True, False], ids=["nameserver-line", "no-nameserver"])
def test_server_option_keeps_search_list_and_ndots(tmp_path: Path, nameserver: bool) -> None:
    conf = write_conf(
        tmp_path,
        *(["nameserver 10.96.0.10"] if nameserver else []),
        "search default.svc.cluster.local svc.cluster.local",
        "options ndots:5",
    )
    check = build("dns://myservice#server=127.0.0.1:5353", conf)
    assert check.conf.search == ["default.svc.cluster.local", "svc.cluster.local"]
    assert check.conf.ndots == 5
    assert check.conf.nameservers == [("127.0.0.1", 5353)]


def test_system_resolver_from_resolv_conf(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "nameserver 10.96.0.10", "search a.example", "options ndots:2")
    check = build("dns://myservice", conf)
    assert check.conf.nameservers == [("10.96.0.10", 53)]
    assert check.conf.ndots == 2
    assert check.where == ""


def test_relative_and_absolute_names() -> None:
    assert build("dns://MyService#server=127.0.0.1").qname == "myservice"
    assert build("dns://myservice.#server=127.0.0.1").qname == "myservice."


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
    with pytest.raises(
        TargetError, match=r"no nameserver: .* names none; give one with #server=IP"
    ):
        build("dns://x", conf)
    with pytest.raises(TargetError, match=r"no nameserver: .*missing.conf unusable \(No such file"):
        build("dns://x", tmp_path / "missing.conf")


def test_bad_names_are_configuration_errors() -> None:
    with pytest.raises(TargetError, match=r"invalid DNS name 'a\.\.b': an empty label"):
        build("dns://a..b#server=127.0.0.1")
