"""Sending one pre-serialised bulk body through the official client's transport.

The transport owns connections, TLS and the node pool (spreading load over the URLs,
skipping dead nodes and bringing them back after a backoff). Its own retries are
switched off: the pipeline decides what to retry, when, and how often. Bulk bodies are
gzipped here rather than by the transport: with ISA-L at level 1 (`GZIP_LEVEL`; the
transport uses zlib at 9) and in a thread, where the compressor releases the GIL, so the
event loop reads and serialises the next events meanwhile. A bulk response that says all
was stored is not parsed at all (`stored_summary`).
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents import __version__
from agents._options import OptionError
from agents.logship.bulk import stored_summary

# A bulk body shrinks ~12x at level 1 (ISA-L or zlib), ~16x at zlib's 9, for a fraction of
# the CPU.
GZIP_LEVEL = 1


class SendFailed(Exception):
    """No HTTP answer at all (refused, reset, timed out, TLS failure): retry later."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class Sender(Protocol):
    """The one seam between logship and Elasticsearch: one bulk request, its answer (or
    SendFailed when there was none). `ElasticsearchSender` is the real one;
    `agents.testing.sender.ScriptedSender` plays a script."""

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer: ...


def _read_secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"--{what}-file: cannot read {path}: {exc}") from None


def client_options(config: Any) -> dict[str, Any]:
    """Config → the sender's options, named as AsyncElasticsearch's keyword arguments
    (secrets read from files here)."""
    options: dict[str, Any] = {
        "hosts": list(config.es),
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "http_compress": bool(config.compress),
        "request_timeout": float(config.request_timeout),
        "verify_certs": not config.insecure,
        "ssl_show_warn": False,  # logship logs its own warning for --insecure
    }
    password = _read_secret(config.password_file, "password") or config.password
    if config.username:
        options["basic_auth"] = (config.username, password or "")
    api_key = _read_secret(config.api_key_file, "api-key") or config.api_key
    if api_key:
        options["api_key"] = api_key
    token = _read_secret(config.bearer_token_file, "bearer-token") or config.bearer_token
    if token:
        options["bearer_auth"] = token
    tls_files = {"ca-file": config.ca_file, "cert-file": config.cert_file,
                 "key-file": config.key_file}  # fmt: skip
    for flag, path in tls_files.items():
        if path is None:
            continue
        if not all(url.startswith("https://") for url in config.es):
            raise OptionError(f"--{flag}: TLS files need https:// URLs in --es")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise OptionError(f"--{flag}: cannot read {path}: {exc.strerror}") from None
    if config.ca_file:
        options["ca_certs"] = str(config.ca_file)
    if config.cert_file:
        options["client_cert"] = str(config.cert_file)
        if config.key_file:
            options["client_key"] = str(config.key_file)
    return options


def deflater() -> Any:
    """The module whose `compressobj` gzips bulk bodies: ISA-L's (`isal.isal_zlib`), which
    at level 1 is ~4.5x faster than zlib's level 1 on bulk NDJSON for a slightly smaller
    body; zlib where the isal package is missing (a platform without its wheel). Both
    write standard gzip."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def gzip_body(body: bytes | list[bytes | memoryview], level: int = GZIP_LEVEL) -> bytes:
    """`body` (or its pieces, in order) as one gzip member (what `Content-Encoding: gzip`
    means). Pieces are compressed one after another: no joined copy of the body."""
    module = deflater()
    packer = module.compressobj(level, module.DEFLATED, 16 + module.MAX_WBITS)
    pieces = [body] if isinstance(body, bytes) else body
    return b"".join([packer.compress(piece) for piece in pieces]) + packer.flush()


def _serializers() -> dict[str, Any]:
    """The transport's serializers, changed for bulk requests: a bulk body (bytes, gzipped
    or not) is sent as it is (the NDJSON serializer would copy it twice and end it with a
    newline, which would trail a gzip stream); a bulk response that stored every event is
    read as `AllStored` (2000 items are 2000 dicts otherwise); any other response as
    before."""
    from elastic_transport import JsonSerializer, NdjsonSerializer

    class Reader(JsonSerializer):
        def loads(self, data: bytes) -> Any:
            summary = stored_summary(data)
            return summary if summary is not None else super().loads(data)

    class BulkBody(NdjsonSerializer):
        def dumps(self, data: Any) -> bytes:
            return data if isinstance(data, bytes) else super().dumps(data)

    reader, bulk = Reader(), BulkBody()
    return {"application/json": reader, "application/x-ndjson": bulk,
            "application/vnd.elasticsearch+json": reader,
            "application/vnd.elasticsearch+x-ndjson": bulk}  # fmt: skip


def _check_tls_files(options: dict[str, Any]) -> None:
    """Load the CA and client certificate files the way the transport will, so that a bad
    one is a configuration error now rather than a failure at the first request."""
    import ssl

    ca, cert, key = options.get("ca_certs"), options.get("client_cert"), options.get("client_key")
    if not (ca or cert):
        return
    try:
        context = ssl.create_default_context()
        if ca:
            context.load_verify_locations(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (ValueError, ssl.SSLError, OSError) as exc:
        which = "--ca-file" if ca and not cert else "--cert-file/--key-file"
        if ca and cert:  # which of the two: try the CA alone
            try:
                ssl.create_default_context().load_verify_locations(cafile=ca)
            except (ValueError, ssl.SSLError, OSError):
                which = "--ca-file"
        raise OptionError(f"{which}: unusable for TLS: {exc}") from None


def _import_transport() -> Any:
    """`AsyncTransport`, without the `requests` package the transport would load for a
    node class logship never uses (~4.5 MiB of memory)."""
    blocked = "requests" not in sys.modules
    if blocked:
        sys.modules["requests"] = None  # type: ignore[assignment]  # the import fails
    try:
        from elastic_transport import AsyncTransport
    finally:
        if blocked and sys.modules.get("requests", 0) is None:
            del sys.modules["requests"]  # others may import it as usual
    return AsyncTransport


def _authorization(options: dict[str, Any]) -> str | None:
    """The header the official client would send for basic_auth, api_key or bearer_auth
    (config allows at most one of them)."""
    import base64

    if options.get("basic_auth"):
        user, password = options["basic_auth"]
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    if options.get("api_key"):
        return f"ApiKey {options['api_key']}"
    if options.get("bearer_auth"):
        return f"Bearer {options['bearer_auth']}"
    return None


def node_configs(options: dict[str, Any]) -> list[Any]:
    """One NodeConfig per URL, as the official client makes them: credentials in a URL
    become its node's Authorization header, https:// without a port means 443. An
    http:// URL without a port means 80 here (the client refused it at the first
    request)."""
    from dataclasses import replace

    from elastic_transport.client_utils import url_to_node_config

    tls = {k: options[k] for k in ("ca_certs", "client_cert", "client_key") if options.get(k)}
    configs = []
    for url in options["hosts"]:
        try:
            config = url_to_node_config(url, use_default_ports_for_scheme=True)
        except ValueError as exc:
            raise OptionError(f"--es: {exc}") from None
        configs.append(replace(
            config,
            request_timeout=options.get("request_timeout", 10.0),
            verify_certs=options.get("verify_certs", True),
            ssl_show_warn=options.get("ssl_show_warn", False),
            headers={**config.headers, "user-agent": USER_AGENT},
            **(tls if config.scheme == "https" else {}),
        ))  # fmt: skip
    return configs


USER_AGENT = f"logship/{__version__} (pod-agents; elastic-transport)"
# The media types the 8.x client sends: Elasticsearch 8 and 9 both answer them (9 refuses
# nothing older than 8; 8 refuses compatible-with=9).
JSON = "application/vnd.elasticsearch+json; compatible-with=8"
NDJSON = "application/vnd.elasticsearch+x-ndjson; compatible-with=8"


class ElasticsearchSender:
    """Bulk requests through the official client's transport, `elastic_transport`: its node
    pool (spreading load over the URLs, skipping dead nodes and bringing them back after a
    backoff), aiohttp connections and TLS, without the client's API layer, which logship
    does not use and which costs ~7 MiB of memory and 0.1 s of start-up. Requests and
    answers are what the client sends and reads: the same headers (Authorization,
    Content-Type, gzip), the same node choice.

    The transport is made on first use, not here: `warm()` imports it in a thread after
    the first scan. What would make it refuse its options (unusable TLS files, a URL it
    cannot parse) is checked here, so it is a configuration error at start (exit 2)."""

    def __init__(self, options: dict[str, Any]) -> None:
        options = dict(options)
        self.compress = bool(options.pop("http_compress", False))
        self._options = options
        self._transport: Any = None
        _check_tls_files(options)
        from agents.logship.config import check_urls

        check_urls(list(options["hosts"]))  # node configs come with the transport
        headers = {"accept": JSON}
        authorization = _authorization(options)
        if authorization:
            headers["authorization"] = authorization
        self._json_headers = {**headers, "content-type": JSON}
        self._bulk_headers = {**headers, "content-type": NDJSON}
        if self.compress:
            self._bulk_headers |= {"content-encoding": "gzip", "accept-encoding": "gzip"}

    async def warm(self) -> None:
        """Import the transport off the event loop (reading goes on meanwhile)."""
        await asyncio.to_thread(_import_transport)

    @property
    def transport(self) -> Any:
        if self._transport is None:
            self._transport = _import_transport()(
                node_configs(self._options), serializers=_serializers(), meta_header=False,
                max_retries=0, retry_on_status=(), retry_on_timeout=False,
            )  # fmt: skip
        return self._transport

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer:
        """One bulk request: `body` is NDJSON, whole or in pieces to be sent in order."""
        if self.compress:
            body = await asyncio.to_thread(gzip_body, body)
        elif not isinstance(body, bytes):
            body = b"".join(body)
        return await self._call("POST", "/_bulk", body, self._bulk_headers)

    async def put_template(self, name: str, body: dict[str, Any]) -> Answer:
        """PUT /_index_template/<name> with `body`."""
        from urllib.parse import quote

        return await self._call("PUT", f"/_index_template/{quote(name, safe='')}", body,
                                self._json_headers)  # fmt: skip

    async def _call(self, method: str, target: str, body: Any, headers: dict[str, str]) -> Answer:
        from elastic_transport import HttpHeaders, TransportError

        try:
            meta, answer = await self.transport.perform_request(
                method, target, body=body, headers=HttpHeaders(headers)
            )
        except TransportError as exc:  # no answer: connection, timeout, TLS
            raise SendFailed(_describe(exc)) from None
        return Answer(meta.status, answer)

    async def ping(self) -> bool:
        try:
            answer = await self._call("HEAD", "/", None, self._json_headers)
        except Exception:  # reachability is a yes/no question here
            return False
        return 200 <= answer.status < 300

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


def _describe(exc: BaseException) -> str:
    """One line: the transport's message plus the cause it wraps ("TLS error" alone does
    not say that the certificate was not trusted). Auth never reaches these messages:
    credentials are passed to the client separately from the URLs."""
    parts = [str(exc) or type(exc).__name__]
    seen = {id(exc)}
    pending: list[BaseException | None] = [
        *getattr(exc, "errors", ()),
        exc.__cause__,
        exc.__context__,
    ]
    while pending and len(parts) < 4:
        inner = pending.pop(0)
        if inner is None or id(inner) in seen:
            continue
        seen.add(id(inner))
        text = getattr(inner, "verify_message", None) or str(inner)
        if text and text not in " ".join(parts):
            parts.append(text)
        pending += [*getattr(inner, "errors", ()), inner.__cause__, inner.__context__]
    return ": ".join(parts).splitlines()[0][:300]
