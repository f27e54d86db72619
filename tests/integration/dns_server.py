"""A small authoritative DNS server for the tests: UDP and TCP on 127.0.0.1, one thread.

Built on dnspython's message and rdata classes. Tests change what it serves while it
runs: records can be added or removed at once or after a delay (`later`), names can be
made to answer SERVFAIL (or any rcode: REFUSED, NXDOMAIN...), to get no answer at all, to
come back truncated over UDP (TC bit) so the client has to ask again over TCP -- where the
server can then stay silent or reset the connection -- or to be answered with a reply
whose id does not match the question's, or with garbage. Answers over UDP that do not fit the
client's buffer (512 bytes without EDNS) are truncated as a real server would.
Unknown names get NXDOMAIN; known names without the asked type get NOERROR and no data.
Every question is logged in `queries` with the transport it came over.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TYPES = ("A", "AAAA", "CNAME", "SRV", "TXT", "MX", "NS")
RESET = "reset"  # _reply's way of saying: reset this TCP connection
GARBAGE = bytes(range(7, 250, 3))  # noise: its counts promise records that never come


@dataclass(frozen=True)
class Query:
    name: str  # lowercased, no trailing dot
    rdtype: str
    transport: str  # "udp" or "tcp"


def _name(text: str | dns.name.Name) -> dns.name.Name:
    return text if isinstance(text, dns.name.Name) else dns.name.from_text(text)


def _rdata(rdtype: str, value: str) -> dns.rdata.Rdata:
    if rdtype == "TXT" and not value.startswith('"'):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return dns.rdata.from_text(
        dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False
    )


class DnsServer:
    """Serves `records` on host:port (UDP and TCP) from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port  # 0: any free one
        self.queries: list[Query] = []
        self._records: dict[dns.name.Name, dict[str, list[dns.rdata.Rdata]]] = {}
        self._servfail: set[dns.name.Name] = set()
        self._drop: set[dns.name.Name] = set()
        self._truncate: set[dns.name.Name] = set()
        self._rcodes: dict[dns.name.Name, dns.rcode.Rcode] = {}
        self._mangle: dict[dns.name.Name, str] = {}
        self._tcp_fail: dict[dns.name.Name, str] = {}
        self._scheduled: list[tuple[float, Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._selector = selectors.DefaultSelector()
        self._buffers: dict[socket.socket, bytes] = {}
        self.errors: list[BaseException] = []

    # --- what is served -------------------------------------------------------------

    def add(self, name: str, rdtype: str, *values: str) -> None:
        """Add records, e.g. add("db.example", "SRV", "0 0 5432 db-0.example.")."""
        rdtype = rdtype.upper()
        assert rdtype in TYPES, rdtype
        rdatas = [_rdata(rdtype, v) for v in values]
        with self._lock:
            have = self._records.setdefault(_name(name), {}).setdefault(rdtype, [])
            have.extend(r for r in rdatas if r not in have)

    def remove(self, name: str, rdtype: str | None = None, *values: str) -> None:
        """Remove a name's records: all of them, those of one type, or the given values."""
        key = _name(name)
        with self._lock:
            types = self._records.get(key, {})
            if rdtype is None:
                types.clear()
            elif not values:
                types.pop(rdtype.upper(), None)
            else:
                drop = [_rdata(rdtype.upper(), v) for v in values]
                kept = [r for r in types.get(rdtype.upper(), []) if r not in drop]
                types[rdtype.upper()] = kept
            for t in [t for t, rdatas in types.items() if not rdatas]:
                del types[t]
            if not types:
                self._records.pop(key, None)

    def servfail(self, name: str, on: bool = True) -> None:
        with self._lock:
            (self._servfail.add if on else self._servfail.discard)(_name(name))

    def drop(self, name: str, on: bool = True) -> None:
        """Never answer questions about `name` (over UDP or TCP)."""
        with self._lock:
            (self._drop.add if on else self._drop.discard)(_name(name))

    def truncate(self, name: str, on: bool = True) -> None:
        """Answer questions about `name` over UDP with an empty, truncated (TC) answer."""
        with self._lock:
            (self._truncate.add if on else self._truncate.discard)(_name(name))

    def rcode(self, name: str, rcode: str | None) -> None:
        """Answer questions about `name` with this rcode ("REFUSED", ...); None: stop."""
        with self._lock:
            if rcode is None:
                self._rcodes.pop(_name(name), None)
            else:
                self._rcodes[_name(name)] = dns.rcode.from_text(rcode)

    def mangle(self, name: str, how: str | None) -> None:
        """Answer `name` with a reply whose id is wrong ("wrong-id") or with "garbage"."""
        assert how in (None, "wrong-id", "garbage"), how
        with self._lock:
            if how is None:
                self._mangle.pop(_name(name), None)
            else:
                self._mangle[_name(name)] = how

    def tcp_fail(self, name: str, how: str | None) -> None:
        """Over TCP, never answer `name` ("silent") or reset the connection ("reset")."""
        assert how in (None, "silent", "reset"), how
        with self._lock:
            if how is None:
                self._tcp_fail.pop(_name(name), None)
            else:
                self._tcp_fail[_name(name)] = how

    def later(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        """Run `action(*args)` in the server thread `delay` seconds from now."""
        with self._lock:
            self._scheduled.append((time.monotonic() + delay, lambda: action(*args)))

    def asked(self, name: str, transport: str | None = None) -> list[Query]:
        want = name.lower().rstrip(".")
        with self._lock:
            return [
                q
                for q in self.queries
                if q.name == want and (transport is None or q.transport == transport)
            ]

    def asked_names(self) -> list[str]:
        """Names asked, in order, without repeats."""
        with self._lock:
            return list(dict.fromkeys(q.name for q in self.queries))

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> DnsServer:
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((self.host, self.port))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.host, udp.getsockname()[1]))
            except OSError as exc:
                udp.close()
                tcp.close()
                if exc.errno != errno.EADDRINUSE or self.port:
                    raise
                continue
            break
        else:  # pragma: no cover
            raise RuntimeError("no port free for both UDP and TCP")
        tcp.listen(16)
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp = udp, tcp
        self.port = udp.getsockname()[1]
        self._selector.register(udp, selectors.EVENT_READ)
        self._selector.register(tcp, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            assert not self._thread.is_alive(), "DNS server thread did not stop"
        for sock in list(self._buffers):
            sock.close()
        self._buffers.clear()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        self._selector.close()
        if self.errors:
            raise AssertionError(f"DNS server failed: {self.errors!r}") from self.errors[0]

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the serving thread ---------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._run_due()
            for key, _ in self._selector.select(timeout=0.02):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    if sock is self._udp:
                        self._on_udp(sock)
                    elif sock is self._tcp:
                        self._on_accept(sock)
                    else:
                        self._on_tcp(sock)
                except Exception as exc:  # a bug here must fail the test, not hang it
                    self.errors.append(exc)

    def _run_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [action for when, action in self._scheduled if when <= now]
            self._scheduled = [(w, a) for w, a in self._scheduled if w > now]
        for action in due:
            action()

    def _on_udp(self, sock: socket.socket) -> None:
        try:
            wire, peer = sock.recvfrom(65535)
        except BlockingIOError:
            return
        reply = self._reply(wire, "udp")
        if isinstance(reply, bytes):
            sock.sendto(reply, peer)

    def _on_accept(self, sock: socket.socket) -> None:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return
        conn.settimeout(2.0)  # replies are written blocking; reads wait for the selector
        self._buffers[conn] = b""
        self._selector.register(conn, selectors.EVENT_READ)

    def _on_tcp(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65535)
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(conn)
            del self._buffers[conn]
            conn.close()
            return
        buf = self._buffers[conn] + data
        while len(buf) >= 2:
            (size,) = struct.unpack("!H", buf[:2])
            if len(buf) < 2 + size:
                break
            wire, buf = buf[2 : 2 + size], buf[2 + size :]
            reply = self._reply(wire, "tcp")
            if reply == RESET:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self._selector.unregister(conn)
                del self._buffers[conn]
                conn.close()
                return
            if isinstance(reply, bytes):
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        self._buffers[conn] = buf

    def _reply(self, wire: bytes, transport: str) -> bytes | str | None:
        """The answer's wire form, None for no answer, or RESET (TCP only)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        qtype_text = dns.rdatatype.to_text(qtype)
        with self._lock:
            self.queries.append(
                Query(qname.to_text(omit_final_dot=True).lower(), qtype_text, transport)
            )
            if qname in self._drop:
                return None
            tcp_fail = self._tcp_fail.get(qname) if transport == "tcp" else None
            if tcp_fail is not None:
                return RESET if tcp_fail == "reset" else None
            mangle = self._mangle.get(qname)
            rcode = self._rcodes.get(qname)
            records = {name: dict(types) for name, types in self._records.items()}
            servfail = qname in self._servfail
            truncate = transport == "udp" and qname in self._truncate
        if mangle == "garbage":
            return GARBAGE
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if mangle == "wrong-id":
            response.id = (query.id + 1) % 65536
        if rcode is not None:
            response.set_rcode(rcode)
            return response.to_wire()
        if servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if truncate:
            response.flags |= dns.flags.TC
            return response.to_wire()
        if qname not in records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        name, seen = qname, set()
        while name in records and name not in seen:
            seen.add(name)
            types = records[name]
            if qtype_text != "CNAME" and "CNAME" in types:
                cname = types["CNAME"]
                response.answer.append(dns.rrset.from_rdata_list(name, 0, cname))
                name = cname[0].target  # type: ignore[attr-defined]
                continue
            if qtype_text in types:
                response.answer.append(dns.rrset.from_rdata_list(name, 0, types[qtype_text]))
            break
        limit = 65535
        if transport == "udp":
            limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()
