"""dns://name — ready when the name resolves to enough records (and the expected ones).

Options: type (A, AAAA, CNAME, SRV, TXT, MX, NS; default: any address, A or AAAA),
min (records needed, default 1), values (records that must all be present), server
(IP[:port] of the nameserver to ask; default the system's), search (honour the
resolv.conf search domains and ndots for relative names, default true).

The search rules are glibc's: `myservice` in a pod becomes
`myservice.<ns>.svc.cluster.local`, which busybox ≥ 1.29 nslookup gets wrong.
"""

from __future__ import annotations

import asyncio
import ipaddress

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.resolver import (
    BadName,
    NameserversFailed,
    NoSuchName,
    ResolvConf,
    Resolver,
    check_name,
    where,
)
from agents.waitfor.targets import Target

TYPES = ("A", "AAAA", "CNAME", "SRV", "TXT", "MX", "NS")
ADDRESS = "ADDRESS"  # A and AAAA together


def parse_server(text: str, display: str) -> tuple[str, int]:
    from agents.waitfor.targets import TargetError

    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port_text = rest.removeprefix(":")
            port = int(port_text) if port_text.isdigit() else -1
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = int(port_text) if port_text.isdigit() else -1
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise TargetError(display, f"option server: {text!r} is not an IP[:port]") from None
    if not 0 < port < 65536:
        raise TargetError(display, f"option server: bad port in {text!r}")
    return host, port


def normalise_expected(rdtype: str, value: str) -> str:
    if rdtype in ("A", "AAAA", ADDRESS):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if rdtype == "SRV":
        # target:port, where the target may carry its final dot (db.example.:5432)
        target, colon, port = value.rpartition(":")
        if colon and port.isdigit():
            return f"{target.lower().rstrip('.')}:{int(port)}"
    return value if rdtype == "TXT" else value.lower().rstrip(".")


def matches(rdtype: str, expected: str, found: list[str]) -> bool:
    if rdtype == "SRV" and ":" not in expected:
        return any(f.rpartition(":")[0] == expected for f in found)
    return expected in found


class DnsCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext) -> None:
        opts = target.options
        self.name = target.host
        rdtype = (opts.str("type") or ADDRESS).upper()
        if rdtype != ADDRESS and rdtype not in TYPES:
            raise target.error(f"option type: {rdtype!r} is not one of {', '.join(TYPES)}")
        self.rdtype = rdtype
        self.minimum = opts.int("min", 1, minimum=0)
        self.values = [normalise_expected(rdtype, v) for v in opts.list("values")]
        self.search = opts.bool("search", True)
        server = opts.str("server")
        try:
            conf = ResolvConf.read(ctx.resolv_conf)
        except (OSError, UnicodeError) as exc:
            if server is None:
                raise target.error(
                    f"no nameserver: {ctx.resolv_conf} unusable ({exc.strerror or exc}); "
                    "give one with #server=IP"
                ) from None
            conf = ResolvConf(search=[])  # still a chosen server, without search domains
        if server is not None:
            # The system's search domains, ndots and timeouts still apply.
            conf.nameservers = [parse_server(server, target.display)]
        elif not conf.nameservers:
            raise target.error(
                f"no nameserver: {ctx.resolv_conf} names none; give one with #server=IP"
            )
        self.conf = conf
        self.resolver = Resolver(conf)
        try:
            self.qname = check_name(self.name)
        except BadName as exc:
            raise target.error(f"invalid DNS name {self.name!r}: {exc}") from None
        self.where = f" (asked {where(conf.nameservers[0])})" if server else ""

    async def probe(self) -> str:
        kinds = ["A", "AAAA"] if self.rdtype == ADDRESS else [self.rdtype]
        results = await asyncio.gather(
            *(self.resolver.resolve(self.qname, k, search=self.search) for k in kinds),
            return_exceptions=True,
        )
        found: list[str] = []
        errors: list[BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                found.extend(result)
        label = "address" if self.rdtype == ADDRESS else self.rdtype
        if not found and errors:
            raise NotReady(self._describe(errors[0]))
        if len(found) < self.minimum:
            raise NotReady(
                f"{self.name}: {len(found)} {label} record(s), need {self.minimum}{self.where}"
            )
        missing = [v for v in self.values if not matches(self.rdtype, v, found)]
        if missing:
            shown = ", ".join(found[:5]) or "none"
            raise NotReady(
                f"{self.name}: {label} records lack {', '.join(missing)} (have {shown})"
                + self.where
            )
        return f"{len(found)} {label} record(s): {', '.join(found[:3])}"

    def describe_no_answer(self, reason: str) -> str:
        # Replies with a wrong id or that do not parse are dropped, as they should be
        # (they may be spoofed): to us such a nameserver looks silent.
        return f"{self.name}: {reason}{self.where}"

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, NoSuchName):
            return f"{self.name}: {exc}{self.where}"
        if isinstance(exc, NameserversFailed) and exc.silent:
            return f"{self.name}: nameserver did not answer{self.where}"
        if isinstance(exc, NameserversFailed):
            return f"{self.name}: every nameserver failed: {exc}"
        raise exc


def build(target: Target, ctx: BuildContext) -> DnsCheck:
    return DnsCheck(target, ctx)
