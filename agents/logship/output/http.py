"""HTTP/1.1 to Elasticsearch nodes, on asyncio streams.

What logship asks of HTTP is narrow: three requests (`POST /_bulk`, `PUT
/_index_template/…`, `HEAD /`) to the nodes of `--es`, on keep-alive connections, each
bounded by one timeout. This module does that and nothing more; a sidecar runs in every
pod, and aiohttp with the official client's transport held 19 of logship's 44 MiB idle.

It behaves as the official client's transport (`elastic_transport`, with its
`AiohttpHttpNode`) did for logship, which is the reference:
- one node per URL (`parse_nodes`): credentials in a URL become that node's Basic
  Authorization header, never part of a message; https:// without a port is 443, http://
  80; a path prefix is kept;
- round robin over the live nodes; a node that did not answer rests for
  min(2**(failures-1), 30) s (the transport's `dead_node_backoff_factor` 1.0 and
  `max_dead_node_backoff` 30); when every node rests, the one whose rest ends first is
  asked; any answer makes a node live again;
- TLS from 1.2 up, verifying against the system's CA store plus `--ca-file`, the host
  name checked unless the node is an IP address; `--insecure` verifies nothing.

Any answer is an answer (`Response`, whatever its status: the caller classifies it); no
answer at all (refused, reset, closed, timed out, TLS refused, not HTTP) is `NoAnswer`,
with one line that names the node and never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from agents._urls import split as split_url

MAX_HEAD = 64 * 1024  # status line and headers of one answer
IDLE_PER_NODE = 10  # keep-alive connections kept per node (the transport's default)
BACKOFF_FACTOR = 1.0
MAX_BACKOFF = 30.0


class NoAnswer(Exception):
    """The node gave no HTTP answer; the message is one line for logs."""


class BadUrl(ValueError):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


@dataclass(eq=False)  # one node is one object: its connections and rest are its own
class Node:
    scheme: str
    host: str
    port: int
    prefix: str = ""
    authorization: str | None = None  # from credentials in the URL
    tls: ssl.SSLContext | None = None  # https:// nodes only
    failures: int = 0
    resting_until: float = 0.0
    idle: list[Connection] = field(default_factory=list)

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


def parse_nodes(urls: list[str]) -> list[Node]:
    """One node per URL (`BadUrl` names what is wrong, without the password)."""
    import base64

    nodes = []
    for url in urls:
        try:
            parts, port = split_url(url)
        except ValueError as exc:
            raise BadUrl(f"{exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadUrl("needs http(s)://HOST[:PORT]")
        authorization = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        nodes.append(Node(
            scheme=parts.scheme, host=parts.hostname,
            port=port or (443 if parts.scheme == "https" else 80),
            prefix=parts.path.rstrip("/"), authorization=authorization,
        ))  # fmt: skip
    return nodes


def tls_context(
    *,
    verify: bool,
    check_hostname: bool = True,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> ssl.SSLContext:
    """A context for https:// nodes (raises ssl.SSLError, OSError or ValueError for files
    it cannot use)."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = verify and check_hostname
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.reused = False

    def usable(self) -> bool:
        """Still open at our end and not closed by the peer while it sat idle."""
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, method: str, head: bytes, body: bytes | None) -> tuple[Response, bool]:
        """Send one request, read its answer: (response, whether to keep the connection)."""
        self.writer.write(head)
        if body:
            self.writer.write(body)
        await self.writer.drain()
        while True:  # 1xx answers are interim: the real one follows
            status, headers, version = await self._read_head()
            if not 100 <= status < 200 or status == 101:
                break
        keep = _keeps_alive(version, headers)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = await self._read_chunked()
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise ValueError(f"Content-Length {headers['content-length']!r}") from None
            data = await self.reader.readexactly(length)
        else:  # the answer ends where the connection does
            data, keep = await self.reader.read(), False
        if headers.get("content-encoding", "").lower() == "gzip" and data:
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
        return Response(status, headers, data), keep

    async def _read_head(self) -> tuple[int, dict[str, str], str]:
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise ValueError(f"status line and headers over {MAX_HEAD} bytes") from None
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"status line {lines[0][:60]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    raise ValueError(f"header line {line[:60]!r}")
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers, parts[0]

    async def _read_chunked(self) -> bytes:
        pieces = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError(f"chunk size {size_line[:20]!r}") from None
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers: not used
                return b"".join(pieces)
            pieces.append(await self.reader.readexactly(size))
            if await self.reader.readexactly(2) != b"\r\n":
                raise ValueError("chunk not ended by CRLF")


def _keeps_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


class Client:
    """Requests to a pool of nodes; see the module's docstring for the rules."""

    def __init__(
        self, nodes: list[Node], *, timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not nodes:
            raise ValueError("no node")
        if any(n.scheme == "https" and n.tls is None for n in nodes):
            raise ValueError("an https:// node without a TLS context")
        self.nodes, self.timeout, self.clock = nodes, timeout, clock
        self._turn = -1  # the first request goes to the first node
        self._busy: set[Connection] = set()
        self._asking: dict[object, float] = {}  # each request awaiting its answer: since

    def oldest_request(self) -> float:
        """Seconds the oldest request has been waiting for its answer, its connection
        included (0: none). Each is let go at `timeout`: more than that is a hung request."""
        if not self._asking:
            return 0.0
        return self.clock() - min(self._asking.values())

    def pick(self) -> Node:
        """Round robin over the nodes not resting; the first to wake when all rest."""
        now = self.clock()
        live = [n for n in self.nodes if n.resting_until <= now]
        if not live:
            return min(self.nodes, key=lambda n: n.resting_until)
        self._turn += 1
        return live[self._turn % len(live)]

    async def request(self, method: str, target: str, headers: dict[str, str],
                      body: bytes | None = None) -> Response:  # fmt: skip
        """One request to the next node: its answer, or NoAnswer (and the node rests)."""
        node = self.pick()
        lines = [f"{method} {node.prefix}{target} HTTP/1.1", f"host: {node.host_header}"]
        if node.authorization and "authorization" not in headers:
            lines.append(f"authorization: {node.authorization}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"content-length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        token = object()
        self._asking[token] = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._exchange(node, method, head, body)
        except TimeoutError:
            self._rest(node)
            waited = f"within {self.timeout:g}s"
            raise NoAnswer(f"timed out: no answer from {node.where} {waited}") from None
        except NoAnswer:
            self._rest(node)
            raise
        finally:
            del self._asking[token]
        node.failures, node.resting_until = 0, 0.0
        return response

    async def _exchange(self, node: Node, method: str, head: bytes, body: bytes | None) -> Response:
        while True:
            conn = await self._connection(node)
            self._busy.add(conn)
            try:
                response, keep = await conn.exchange(method, head, body)
            except asyncio.IncompleteReadError as exc:
                conn.close()
                if conn.reused and not exc.partial:
                    continue  # the peer closed it while idle: once more on a new one
                got = (
                    f"after {len(exc.partial)} bytes of the answer"
                    if exc.partial
                    else "before answering"
                )
                raise NoAnswer(f"connection closed by {node.where} {got}") from None
            except (ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if conn.reused:
                    continue  # as above: requests are idempotent (create with an _id)
                raise NoAnswer(f"connection reset by {node.where}") from exc
            except (ValueError, zlib.error, asyncio.LimitOverrunError) as exc:
                conn.close()
                raise NoAnswer(f"not an HTTP answer from {node.where}: {exc}") from None
            except ssl.SSLError as exc:
                conn.close()
                raise NoAnswer(f"TLS error with {node.where}: {exc.reason or exc}") from None
            except OSError as exc:
                conn.close()
                raise NoAnswer(f"{node.where}: {exc.strerror or exc}") from None
            except BaseException:
                conn.close()  # cancelled or timed out mid-exchange: the stream is unusable
                raise
            finally:
                self._busy.discard(conn)
            if keep and len(node.idle) < IDLE_PER_NODE:
                conn.reused = True
                node.idle.append(conn)
            else:
                conn.close()
            return response

    async def _connection(self, node: Node) -> Connection:
        while node.idle:
            conn = node.idle.pop()
            if conn.usable():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(
                node.host, node.port, ssl=node.tls, limit=MAX_HEAD
            )
        except ssl.SSLCertVerificationError as exc:
            why = exc.verify_message or exc.reason or str(exc)
            raise NoAnswer(f"TLS: the certificate of {node.where} is not trusted: {why}") from None
        except ssl.SSLError as exc:
            raise NoAnswer(f"TLS handshake with {node.where} failed: {exc.reason or exc}") from None
        except ConnectionRefusedError:
            raise NoAnswer(f"connection refused by {node.where}") from None
        except OSError as exc:  # gaierror (name), unreachable, ...
            text = exc.strerror or str(exc) or type(exc).__name__
            raise NoAnswer(f"cannot connect to {node.where}: {text}") from None
        return Connection(reader, writer)

    def drop_idle(self) -> None:
        """Close the idle connections: the next requests connect again (new TLS files)."""
        for node in self.nodes:
            for conn in node.idle:
                conn.close()
            node.idle.clear()

    def _rest(self, node: Node) -> None:
        node.failures += 1
        node.resting_until = self.clock() + min(
            BACKOFF_FACTOR * 2 ** min(node.failures - 1, 16), MAX_BACKOFF
        )

    async def close(self) -> None:
        conns = [c for n in self.nodes for c in n.idle] + list(self._busy)
        for node in self.nodes:
            node.idle.clear()
        for conn in conns:
            conn.close()
        if conns:  # bounded: a TLS peer may never answer the close
            await asyncio.wait([asyncio.ensure_future(_closed(c)) for c in conns], timeout=2.0)


async def _closed(conn: Connection) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        await conn.writer.wait_closed()
