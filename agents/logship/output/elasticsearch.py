"""Sending one pre-serialised bulk body through the official async client.

The client owns connections, auth, TLS and the node pool (spreading load over the URLs,
skipping dead nodes and bringing them back after a backoff). Its own retries are
switched off: the pipeline decides what to retry, when, and how often. Bulk bodies are
gzipped here rather than by the client: at level 1 (`GZIP_LEVEL`; the client uses 9) and
in a thread, where zlib releases the GIL, so the event loop reads and serialises the next
events meanwhile. A bulk response that says all was stored is not parsed at all
(`stored_summary`).
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents._options import OptionError
from agents.logship.bulk import stored_summary

GZIP_LEVEL = 1  # a bulk body shrinks ~12x at level 1, ~16x at 9, for a quarter of the CPU


class SendFailed(Exception):
    """No HTTP answer at all (refused, reset, timed out, TLS failure): retry later."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def _read_secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"--{what}-file: cannot read {path}: {exc}") from None


def client_options(config: Any) -> dict[str, Any]:
    """Config → AsyncElasticsearch keyword arguments (secrets read from files here)."""
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


def gzip_body(body: bytes | list[bytes | memoryview], level: int = GZIP_LEVEL) -> bytes:
    """`body` (or its pieces, in order) as one gzip member (what `Content-Encoding: gzip`
    means). Pieces are compressed one after another: no joined copy of the body."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    pieces = [body] if isinstance(body, bytes) else body
    return b"".join([packer.compress(piece) for piece in pieces]) + packer.flush()


def _serializers() -> dict[str, Any]:
    """The client's serializers, changed for bulk requests: a bulk body (bytes, gzipped or
    not) is sent as it is (the client's own NDJSON serializer copies it twice and ends it
    with a newline, which would trail a gzip stream); a bulk response that stored every
    event is read as `AllStored` (2000 items are 2000 dicts otherwise); any other
    response as before."""
    from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

    class Reader(JsonSerializer):
        def loads(self, data: bytes) -> Any:
            summary = stored_summary(data)
            return summary if summary is not None else super().loads(data)

    class BulkBody(NdjsonSerializer):
        def dumps(self, data: Any) -> bytes:
            return data if isinstance(data, bytes) else super().dumps(data)

    return {"application/json": Reader(), "application/x-ndjson": BulkBody()}


def _check_tls_files(options: dict[str, Any]) -> None:
    """Load the CA and client certificate files the way the client will, so that a bad
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


def _import_client() -> Any:
    """`AsyncElasticsearch`, without the `requests` package its transport would load for a
    node class logship never uses (~4.5 MiB of memory)."""
    blocked = "requests" not in sys.modules
    if blocked:
        sys.modules["requests"] = None  # type: ignore[assignment]  # the import fails
    try:
        from elasticsearch import AsyncElasticsearch
    finally:
        if blocked and sys.modules.get("requests", 0) is None:
            del sys.modules["requests"]  # others may import it as usual
    return AsyncElasticsearch


class ElasticsearchSender:
    """The client is made on first use, not here: importing it costs ~0.2 s, which would
    hold back reading the files and /readyz at start-up. `warm()` imports it in a thread
    meanwhile. What would make the client refuse its options (unusable TLS files) is
    checked here, so it is still a configuration error at start (exit 2)."""

    def __init__(self, options: dict[str, Any]) -> None:
        options = dict(options)
        self.compress = bool(options.pop("http_compress", False))
        self._options = options
        self._client: Any = None
        self._bulk_client: Any = None
        _check_tls_files(options)

    async def warm(self) -> None:
        """Import the client off the event loop (reading goes on meanwhile)."""
        await asyncio.to_thread(_import_client)

    @property
    def client(self) -> Any:
        self._make()
        return self._client

    def _make(self) -> None:
        if self._client is None:
            self._client = _import_client()(**self._options, serializers=_serializers())
            # The headers the client itself would set with http_compress.
            gzipped = {"content-encoding": "gzip", "accept-encoding": "gzip"}
            self._bulk_client = (
                self._client.options(headers=gzipped) if self.compress else self._client
            )

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer:
        """One bulk request: `body` is NDJSON, whole or in pieces to be sent in order."""
        if self.compress:
            body = await asyncio.to_thread(gzip_body, body)
        elif not isinstance(body, bytes):
            body = b"".join(body)
        self._make()
        return await self._call(self._bulk_client.bulk(operations=body))

    async def put_template(self, name: str, body: dict[str, Any]) -> Answer:
        """PUT /_index_template/<name> with `body`."""
        return await self._call(self.client.indices.put_index_template(name=name, body=body))

    async def _call(self, request: Awaitable[Any]) -> Answer:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        try:
            response = await request
        except ApiError as exc:  # an HTTP answer that is not 2xx
            return Answer(exc.meta.status, exc.body)
        except TransportError as exc:  # no answer: connection, timeout, TLS
            raise SendFailed(_describe(exc)) from None
        return Answer(response.meta.status, response.body)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # reachability is a yes/no question here
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


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
