"""A stub DNS resolver for dns:// targets: resolv.conf, the search list, UDP then TCP.

Only what a readiness check needs, on the standard library alone (dnspython cost waitfor
6.3 MiB and OpenSSL's libraries with it: a dns:// target ran at 27 MiB against a 25 MiB
goal). It asks a question and reads records of the kinds dns:// compares: A, AAAA,
CNAME, NS, MX, SRV, TXT.

- `ResolvConf.read(path)` takes glibc's resolv.conf: `nameserver` (up to 3), `search` or
  `domain` (the last one wins), `options ndots: timeout: attempts:`; other lines and
  options are ignored, as glibc ignores what it does not know.
- `names_to_try()` applies the search list as glibc's res_search does: a name with a
  trailing dot is asked as is; one with at least `ndots` dots is asked as is first, then
  with each search domain; one with fewer, with each search domain first, then as is.
- `Resolver.resolve()` asks each name in turn. NXDOMAIN goes on to the next name; an
  answer (records, or none of the asked type) ends the search, as dnspython and musl do.
  Each name is asked of the nameservers in order, `attempts` rounds, each given `timeout`
  seconds; a failure (SERVFAIL, REFUSED, an ICMP refusal, a reset) moves on to the next.
  A truncated UDP answer (TC) is asked again over TCP.
- Replies that do not match the question (wrong id, wrong question, not a reply) or do
  not parse are dropped, as every resolver does: they may be spoofed, so a nameserver
  that sends only those looks silent.

Errors: `NoSuchName` (NXDOMAIN for every name tried), `NameserversFailed` (every
nameserver failed or was silent; `silent` tells which), both `ResolveError`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field

from agents.waitfor.checks._net import host_port

TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33}
CLASS_IN = 1
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
NXDOMAIN = 3
MAX_UDP = 512  # no EDNS: an answer that does not fit comes back truncated, then over TCP
MAX_CNAMES = 16  # a chain in one answer longer than this is a loop

# glibc's defaults and limits (resolv.h): RES_TIMEOUT, RES_DFLRETRY, RES_MAXNDOTS ...
DEFAULT_NDOTS, MAX_NDOTS = 1, 15
DEFAULT_ATTEMPTS, MAX_ATTEMPTS = 2, 5
MAX_TIMEOUT = 30
MAX_NAMESERVERS = 3
# glibc waits 5 s per try; dnspython 2 s. 2 s lets a second nameserver be asked within
# waitfor's default 5 s attempt when the first is silent.
DEFAULT_TIMEOUT = 2.0


class ResolveError(Exception):
    pass


class NoSuchName(ResolveError):
    def __init__(self, tried: list[str]) -> None:
        super().__init__(f"no such name (NXDOMAIN; tried {', '.join(tried)})")
        self.tried = tried


class NameserversFailed(ResolveError):
    def __init__(self, failures: list[str], silent: bool) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.silent = silent  # no nameserver answered at all


class BadName(ValueError):
    pass


@dataclass
class ResolvConf:
    nameservers: list[tuple[str, int]] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    ndots: int = DEFAULT_NDOTS
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS

    @classmethod
    def read(cls, path: str) -> ResolvConf:
        """OSError if the file cannot be read; lines that make no sense are skipped."""
        with open(path, encoding="utf-8", errors="replace") as f:
            return cls.parse(f.read())

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        conf = cls()
        search: list[str] | None = None
        for line in text.splitlines():
            words = line.split("#", 1)[0].split(";", 1)[0].split()
            if len(words) < 2:
                continue
            key, args = words[0], words[1:]
            if key == "nameserver" and len(conf.nameservers) < MAX_NAMESERVERS:
                try:  # fe80::1%eth0 keeps its zone: the link to ask on
                    conf.nameservers.append((str(ipaddress.ip_address(args[0])), 53))
                except ValueError:
                    continue
            elif key == "search":
                search = args
            elif key == "domain":
                search = args[:1]
            elif key == "options":
                for option in args:
                    name, _, value = option.partition(":")
                    if not value.isdigit():
                        continue
                    if name == "ndots":
                        conf.ndots = min(int(value), MAX_NDOTS)
                    elif name == "timeout":
                        conf.timeout = float(max(1, min(int(value), MAX_TIMEOUT)))
                    elif name == "attempts":
                        conf.attempts = max(1, min(int(value), MAX_ATTEMPTS))
        if search is None:
            # glibc: without search or domain, the domain of the host's own name.
            host = socket.gethostname()
            search = [host.partition(".")[2]] if "." in host else []
        conf.search = [d.rstrip(".").lower() for d in search if d.rstrip(".")]
        return conf


def check_name(name: str) -> str:
    """The name as DNS carries it: lower-case ASCII (an international name in its xn--
    form), its trailing dot kept; BadName if DNS cannot carry it."""
    absolute = name.endswith(".")
    bare = name[:-1] if absolute else name
    if not bare:
        raise BadName("the name is empty")
    try:
        wire = encode_name(bare)
    except UnicodeError as exc:
        raise BadName(f"not a valid international name ({exc})") from None
    if len(wire) > 255:
        raise BadName("longer than 255 bytes")
    ascii_name = ".".join(_label(label).decode("ascii") for label in bare.split("."))
    return ascii_name.lower() + ("." if absolute else "")


def names_to_try(name: str, conf: ResolvConf, *, search: bool = True) -> list[str]:
    absolute = name.endswith(".")
    bare = name.rstrip(".").lower()
    if absolute or not search:
        return [bare]
    listed = [f"{bare}.{domain}" for domain in conf.search]
    if bare.count(".") >= conf.ndots:
        return list(dict.fromkeys([bare, *listed]))
    return list(dict.fromkeys([*listed, bare]))


# --- the wire format (RFC 1035) ------------------------------------------------------


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.split("."):
        raw = _label(label)
        if not raw:
            raise BadName(f"an empty label in {name!r}")
        if len(raw) > 63:
            raise BadName(f"the label {label[:20]!r}... is longer than 63 bytes")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\0")


def _label(label: str) -> bytes:
    return label.encode("ascii") if label.isascii() else label.encode("idna")


def make_query(name: str, rdtype: str) -> tuple[int, bytes]:
    qid = int.from_bytes(os.urandom(2), "big")
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD: recursion desired
    return qid, header + encode_name(name) + struct.pack("!HH", TYPE_CODES[rdtype], CLASS_IN)


class Malformed(Exception):
    pass


def _read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """A possibly compressed name at `pos` → (name, position after it)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if pos >= len(msg):
            raise Malformed("a name runs past the end")
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise Malformed("a cut pointer")
            if end < 0:
                end = pos + 2
            jumps += 1
            if jumps > 64:
                raise Malformed("a pointer loop")
            pos = ((length & 0x3F) << 8) | msg[pos + 1]
            continue
        if length & 0xC0:
            raise Malformed("an unknown label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(msg):
            raise Malformed("a label runs past the end")
        labels.append(msg[pos : pos + length].decode("ascii", "replace"))
        pos += length
    return ".".join(labels).lower(), (end if end >= 0 else pos)


@dataclass(frozen=True)
class Record:
    name: str
    rdtype: str  # one of TYPE_CODES, or "" for a type we do not read
    text: str  # comparable form: see record_text


def _record_text(msg: bytes, rdtype: str, start: int, end: int) -> str:
    data = msg[start:end]
    if rdtype == "A" and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if rdtype == "AAAA" and len(data) == 16:
        return str(ipaddress.IPv6Address(data))
    if rdtype in ("CNAME", "NS"):
        return _read_name(msg, start)[0]
    if rdtype == "MX" and len(data) >= 3:
        return _read_name(msg, start + 2)[0]
    if rdtype == "SRV" and len(data) >= 7:
        (port,) = struct.unpack_from("!H", msg, start + 4)
        return f"{_read_name(msg, start + 6)[0]}:{port}"
    if rdtype == "TXT":
        parts, pos = [], 0
        while pos < len(data):
            n = data[pos]
            parts.append(data[pos + 1 : pos + 1 + n])
            pos += 1 + n
        return b"".join(parts).decode("utf-8", "replace")
    raise Malformed(f"a {rdtype} record of {len(data)} bytes")


@dataclass
class Reply:
    qid: int
    truncated: bool
    rcode: int
    question: tuple[str, int, int] | None
    answers: list[Record]


def parse_reply(msg: bytes) -> Reply:
    if len(msg) < 12:
        raise Malformed("shorter than a header")
    qid, flags, qdcount, ancount, _, _ = struct.unpack_from("!HHHHHH", msg)
    if not flags & 0x8000:
        raise Malformed("not a reply")
    pos, question = 12, None
    for _ in range(qdcount):
        qname, pos = _read_name(msg, pos)
        if pos + 4 > len(msg):
            raise Malformed("a cut question")
        qtype, qclass = struct.unpack_from("!HH", msg, pos)
        pos += 4
        question = question or (qname, qtype, qclass)
    answers = []
    codes = {code: name for name, code in TYPE_CODES.items()}
    truncated = bool(flags & 0x0200)
    for _ in range(ancount):
        try:
            owner, pos = _read_name(msg, pos)
        except Malformed:
            if truncated:
                break  # a truncated reply may end in the middle of a record
            raise
        if pos + 10 > len(msg):
            if truncated:
                break
            raise Malformed("a cut record")
        rtype, rclass, _, rdlength = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        if pos + rdlength > len(msg):
            if truncated:
                break
            raise Malformed("a record runs past the end")
        rdtype = codes.get(rtype, "") if rclass == CLASS_IN else ""
        text = _record_text(msg, rdtype, pos, pos + rdlength) if rdtype else ""
        answers.append(Record(owner, rdtype, text))
        pos += rdlength
    return Reply(qid, truncated, flags & 0x000F, question, answers)


def records_for(name: str, rdtype: str, answers: list[Record]) -> list[str] | None:
    """The records of `rdtype` for `name`, following CNAMEs inside the answer (a resolver
    sends the chain and its end together); None: the answer holds none for the name."""
    owner = name
    for _ in range(MAX_CNAMES):
        found = [r.text for r in answers if r.name == owner and r.rdtype == rdtype]
        if found or rdtype == "CNAME":
            return found or None
        target = next((r.text for r in answers if r.name == owner and r.rdtype == "CNAME"), "")
        if not target:
            return None
        owner = target
    return None


def _matches(reply: Reply, qid: int, name: str, rdtype: str) -> bool:
    return reply.qid == qid and reply.question == (name, TYPE_CODES[rdtype], CLASS_IN)


def where(server: tuple[str, int]) -> str:
    return host_port(*server)


# --- asking --------------------------------------------------------------------------


class _NoAnswer(Exception):
    """This nameserver said nothing we could use (the try's time ran out)."""


class _ServerFailed(Exception):
    pass


class Resolver:
    def __init__(self, conf: ResolvConf) -> None:
        self.conf = conf

    async def resolve(self, name: str, rdtype: str, *, search: bool = True) -> list[str]:
        """The records (as record_text strings); [] when the name exists without any."""
        tried: list[str] = []
        for candidate in names_to_try(name, self.conf, search=search):
            tried.append(candidate)
            rcode, records = await self._ask(candidate, rdtype)
            if rcode == NXDOMAIN:
                continue
            return records
        raise NoSuchName(tried)

    async def _ask(self, name: str, rdtype: str) -> tuple[int, list[str]]:
        failures: dict[tuple[str, int], str] = {}
        for _ in range(self.conf.attempts):
            for server in self.conf.nameservers:
                try:
                    reply = await self._exchange(server, name, rdtype)
                except _NoAnswer:
                    failures.setdefault(server, f"{where(server)} did not answer")
                    continue
                except _ServerFailed as exc:
                    failures[server] = f"{where(server)} {exc}"
                    continue
                if reply.rcode == NXDOMAIN:
                    return NXDOMAIN, []
                if reply.rcode != 0:
                    code = RCODES.get(reply.rcode, f"rcode {reply.rcode}")
                    failures[server] = f"{where(server)} answered {code}"
                    continue
                return 0, records_for(name, rdtype, reply.answers) or []
        silent = all(text.endswith("did not answer") for text in failures.values())
        raise NameserversFailed(list(failures.values()), silent)

    async def _exchange(self, server: tuple[str, int], name: str, rdtype: str) -> Reply:
        qid, query = make_query(name, rdtype)
        try:
            async with asyncio.timeout(self.conf.timeout):
                reply = await self._udp(server, qid, query, name, rdtype)
                if reply.truncated:
                    reply = await self._tcp(server, qid, query, name, rdtype)
                return reply
        except TimeoutError:
            raise _NoAnswer from None

    async def _udp(
        self, server: tuple[str, int], qid: int, query: bytes, name: str, rdtype: str
    ) -> Reply:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                sock.connect(server)  # only this address's replies reach us
                await loop.sock_sendall(sock, query)
                while True:
                    data = await loop.sock_recv(sock, 65535)
                    try:
                        reply = parse_reply(data)
                    except Malformed:
                        continue
                    if _matches(reply, qid, name, rdtype):
                        return reply
            except ConnectionRefusedError:
                raise _ServerFailed("refused the question (nothing listens)") from None
            except OSError as exc:
                raise _ServerFailed(f"cannot be asked: {exc.strerror or exc}") from None

    async def _tcp(
        self, server: tuple[str, int], qid: int, query: bytes, name: str, rdtype: str
    ) -> Reply:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(*server)
            writer.write(struct.pack("!H", len(query)) + query)
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise _ServerFailed("closed the TCP connection before answering") from None
        except ConnectionResetError:
            raise _ServerFailed("reset the TCP connection") from None
        except OSError as exc:
            raise _ServerFailed(f"cannot be asked over TCP: {exc.strerror or exc}") from None
        finally:
            if writer is not None:
                writer.transport.abort()
        try:
            reply = parse_reply(data)
        except Malformed as exc:
            raise _ServerFailed(f"sent a broken answer over TCP ({exc})") from None
        if not _matches(reply, qid, name, rdtype):
            raise _ServerFailed("answered another question over TCP")
        return reply
