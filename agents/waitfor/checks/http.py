"""http:// and https:// — ready when the response matches every expectation.

Options (after `#`): status (default 2xx; e.g. 200,204 or 2xx,301 or 200-299), body (regex
the body must contain), json (PATH, or PATH:V1,V2 — dot path, numeric indexes), method,
header (Name:Value, repeatable), redirects (how many to follow, default 10; 0 follows none),
ca, cert, key, insecure. User and password in the URI become basic auth.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlunsplit

import aiohttp

from agents._options import user_regex
from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import describe_oserror, tls_from_options
from agents.waitfor.targets import Target, TargetError

_BODY_LIMIT = 4 * 1024 * 1024
_MISSING = object()


def parse_status(spec: str, display: str) -> tuple[str, Callable[[int], bool]]:
    """`200,204`, `2xx`, `200-299` (any mix) → (description, predicate)."""
    ranges: list[tuple[int, int]] = []
    for item in (part.strip().lower() for part in spec.split(",")):
        if re.fullmatch(r"[1-5]xx", item):
            low = int(item[0]) * 100
            ranges.append((low, low + 99))
        elif re.fullmatch(r"\d{3}-\d{3}", item):
            low, high = (int(x) for x in item.split("-"))
            if low > high:
                raise TargetError(display, f"option status: empty range {item!r}")
            ranges.append((low, high))
        elif re.fullmatch(r"\d{3}", item):
            ranges.append((int(item), int(item)))
        else:
            raise TargetError(
                display,
                f"option status: {item!r} is not a status, class or range (200, 2xx, 200-299)",
            )
    described = ",".join(spec.replace(" ", "").lower().split(","))
    return described, lambda code: any(low <= code <= high for low, high in ranges)


def parse_json_expectation(spec: str, display: str) -> tuple[list[str | int], list[str] | None]:
    path_text, colon, values = spec.partition(":")
    path_text = path_text.strip().lstrip(".")
    if not path_text:
        raise TargetError(display, "option json: needs a field path, e.g. json=status:green")
    path: list[str | int] = [int(p) if p.isdigit() else p for p in path_text.split(".")]
    expected = [v.strip() for v in values.split(",") if v.strip()] if colon else None
    return path, expected


async def read_body(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, up to `limit` bytes: one read() returns only what has arrived."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def redirect_reason(exc: aiohttp.TooManyRedirects, limit: int) -> str:
    """Name the loop when the redirects came back to a URL already visited."""
    urls = [str(r.url) for r in exc.history] + [str(exc.request_info.real_url)]
    for end, url in enumerate(urls):
        if url in urls[:end]:
            cycle = urls[urls.index(url) : end + 1]
            return f"more than {limit} redirects, a redirect loop: {' -> '.join(cycle)}"
    return f"more than {limit} redirects"


def _shorten(message: str, limit: int = 160) -> str:
    """aiohttp's parser errors span lines and quote the peer's bytes: one short line."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_lookup(document: Any, path: list[str | int]) -> Any:
    node = document
    for key in path:
        if isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node):
            node = node[key]
        elif isinstance(node, dict) and str(key) in node:
            node = node[str(key)]
        else:
            return _MISSING
    return node


def basic_auth(username: str | None, password: str | None) -> str:
    credentials = f"{username or ''}:{password or ''}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def json_scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


class HttpCheck(BaseCheck):
    def __init__(self, target: Target, ctx: BuildContext) -> None:
        opts = target.options
        self.display = target.display
        self.address = target.address
        host = f"[{target.host}]" if ":" in target.host else target.host
        default_port = 443 if target.scheme == "https" else 80
        netloc = host if target.port == default_port else f"{host}:{target.port}"
        self.url = urlunsplit((target.scheme, netloc, target.path or "/", target.query, ""))
        self.method = (opts.str("method") or "GET").upper()
        if not re.fullmatch(r"[A-Z]+", self.method):
            raise target.error(f"option method: {self.method!r} is not an HTTP method")
        self.status_text, self.status_ok = parse_status(opts.str("status") or "2xx", target.display)
        body = opts.str("body")
        try:
            self.body = user_regex(body) if body is not None else None
        except re.error as exc:
            raise target.error(f"option body: invalid regular expression: {exc}") from None
        json_spec = opts.str("json")
        self.json = (
            parse_json_expectation(json_spec, target.display) if json_spec is not None else None
        )
        self.headers: list[tuple[str, str]] = []
        for header in opts.all("header"):
            name, colon, value = header.partition(":")
            if not colon or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
                raise target.error(f"option header: expected Name:Value, got {name.strip()!r}")
            if any(c in value for c in "\r\n\0"):
                raise target.error(f"option header: {name.strip()} value has a line break")
            self.headers.append((name.strip(), value.strip()))
        # Per request, not per session: aiohttp drops it on a redirect to another origin.
        # (Built here: aiohttp 3.14 deprecates BasicAuth.) Its password read at each attempt.
        self.target = target
        self.redirects = opts.int("redirects", 10)
        self.ssl = tls_from_options(target, ctx, always=target.scheme == "https")
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            # A fresh connection and a fresh DNS lookup on every attempt: readiness of a
            # restarted server must not be judged on an old keep-alive connection.
            connector = aiohttp.TCPConnector(
                force_close=True, use_dns_cache=False, ssl=self.ssl if self.ssl else True
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": "waitfor"},
            )
        return self.session

    def _headers(self) -> list[tuple[str, str]]:
        target = self.target
        password = target.current_password()
        if target.username is None and password is None:
            return self.headers
        return [*self.headers, ("Authorization", basic_auth(target.username, password))]

    async def probe(self) -> str:
        session = self._session()
        try:
            async with session.request(
                self.method,
                self.url,
                headers=self._headers(),
                allow_redirects=self.redirects > 0,
                max_redirects=max(self.redirects, 1),
            ) as response:
                code = response.status
                if not self.status_ok(code):
                    reason = f" {response.reason}" if response.reason else ""
                    raise NotReady(f"HTTP {code}{reason}, expected {self.status_text}")
                if self.body is None and self.json is None:
                    return f"HTTP {code}"
                data = await read_body(response.content, _BODY_LIMIT)
        except aiohttp.TooManyRedirects as exc:
            raise NotReady(redirect_reason(exc, self.redirects)) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise NotReady(
                f"TLS certificate of {exc.host}:{exc.port} not trusted: "
                f"{getattr(exc.certificate_error, 'verify_message', exc.certificate_error)}"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            where, tls = f"{exc.host}:{exc.port}", self.ssl is not None
            raise NotReady(describe_oserror(exc.os_error, where, tls=tls)) from None
        except aiohttp.ClientOSError as exc:  # reset or broken pipe once connected
            raise NotReady(describe_oserror(exc, self.address)) from None
        except aiohttp.ServerDisconnectedError:
            raise NotReady("server closed the connection without a response") from None
        except aiohttp.ClientResponseError as exc:
            raise NotReady(f"invalid HTTP response: {_shorten(exc.message)}") from None
        except aiohttp.ClientPayloadError as exc:
            raise NotReady(f"response body broken: {exc}") from None
        except aiohttp.ClientError as exc:
            raise NotReady(f"HTTP request failed: {exc}") from None
        return self._check_body(code, data)

    def _check_body(self, code: int, data: bytes) -> str:
        text = data.decode("utf-8", "replace")
        if self.body is not None and not self.body.search(text):
            raise NotReady(f"HTTP {code}, body does not match /{self.body.pattern}/")
        if self.json is not None:
            path, expected = self.json
            dotted = ".".join(str(p) for p in path)
            try:
                document = json.loads(data)
            except (ValueError, RecursionError):
                raise NotReady(f"HTTP {code}, body is not JSON (or nested too deeply)") from None
            value = json_lookup(document, path)
            if value is _MISSING:
                raise NotReady(f"HTTP {code}, JSON field {dotted} missing")
            if expected is None:
                if value in (None, False):
                    raise NotReady(f"HTTP {code}, JSON field {dotted} is {json.dumps(value)}")
            elif json_scalar_text(value) not in expected:
                raise NotReady(
                    f"HTTP {code}, JSON field {dotted} is {json.dumps(value)[:100]}, "
                    f"expected {' or '.join(expected)}"
                )
        return f"HTTP {code}"

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def build(target: Target, ctx: BuildContext) -> HttpCheck:
    return HttpCheck(target, ctx)
