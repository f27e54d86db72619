"""http:// and https:// — ready when the response matches every expectation.

Options (after `#`): status (default 2xx; e.g. 200,204 or 2xx,301 or 200-299), body (regex
the body must contain), json (PATH, or PATH:V1,V2 — dot path, numeric indexes), method,
header (Name:Value, repeatable), redirects (how many to follow, default 10; 0 follows none),
ca, cert, key, insecure. User and password in the URI become basic auth (sent only to
the target's own origin, not to where it redirects).

HTTP/1.1 over `_net.open_stream`, a fresh connection and DNS lookup each attempt, no
keep-alive, no compression, no proxy: one request needs no HTTP library, and aiohttp's
import alone cost 13 MiB of waitfor's 25 MiB goal (measured: http 34.5 → 21.5 MiB).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from agents._options import user_regex
from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.checks._net import (
    BadHead,
    body_pieces,
    close_stream,
    describe_oserror,
    host_port,
    open_stream,
    read_response_head,
    tls_context,
    tls_from_options,
)
from agents.waitfor.targets import Target, TargetError

_BODY_LIMIT = 4 * 1024 * 1024
_HEAD_LIMIT = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MISSING = object()


class _Answer:
    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


async def _read_body(reader, headers: dict[str, str], limit: int) -> bytes:  # type: ignore[no-untyped-def]
    """Content-Length, chunked, or up to the close; at most `limit` bytes kept."""
    body = b""
    async for piece in body_pieces(reader, headers, "the response body"):
        body += piece
        if len(body) >= limit:
            break
    return body[:limit]


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


def redirect_reason(urls: list[str], limit: int) -> str:
    """Name the loop when the redirects came back to a URL already visited."""
    for end, url in enumerate(urls):
        if url in urls[:end]:
            cycle = urls[urls.index(url) : end + 1]
            return f"more than {limit} redirects, a redirect loop: {' -> '.join(cycle)}"
    return f"more than {limit} redirects"


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

    def _tls_for(self, scheme: str):  # type: ignore[no-untyped-def]
        if scheme != "https":
            return None
        if self.ssl is None:  # an http:// target redirected to https://
            self.ssl = tls_context(self.display, ca=None, cert=None, key=None, insecure=False)
        return self.ssl

    async def _request(self, method: str, url: str, auth: bool, body_wanted: bool) -> _Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotReady(f"HTTP request failed: cannot follow a redirect to {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        tls = self._tls_for(parts.scheme)
        reader, writer = await open_stream(host, port, tls=tls)
        where = host_port(host, port)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            netloc = parts.netloc.rpartition("@")[2]
            lines = [
                f"{method} {target} HTTP/1.1",
                f"Host: {netloc}",
                "User-Agent: waitfor",
                "Accept: */*",
                "Accept-Encoding: identity",
                "Connection: close",
            ]
            lines += [f"{k}: {v}" for k, v in self._headers(auth)]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
            try:
                status, reason, headers = await read_response_head(reader)
            except BadHead as exc:
                raise NotReady(f"invalid HTTP response: {exc.reason}") from None
            body = b""
            if body_wanted and method != "HEAD" and status not in (204, 304):
                try:
                    body = await _read_body(reader, headers, _BODY_LIMIT)
                except NotReady as exc:
                    raise NotReady(f"response body broken: {exc.reason}") from None
            return _Answer(status, reason, headers, body)
        except ConnectionResetError as exc:
            raise NotReady(describe_oserror(exc, where)) from None
        finally:
            await close_stream(writer)

    def _headers(self, auth: bool) -> list[tuple[str, str]]:
        target = self.target
        password = target.current_password()
        if not auth or (target.username is None and password is None):
            return self.headers
        return [*self.headers, ("Authorization", basic_auth(target.username, password))]

    async def probe(self) -> str:
        method, url, history = self.method, self.url, [self.url]
        origin = _origin(url)
        want_body = self.body is not None or self.json is not None
        while True:
            same = _origin(url) == origin  # credentials never leave the first origin
            answer = await self._request(method, url, same, want_body)
            code = answer.status
            location = answer.headers.get("location")
            if self.redirects > 0 and code in _REDIRECTS and location:
                if len(history) > self.redirects:
                    raise NotReady(redirect_reason(history, self.redirects))
                url = urljoin(url, location)
                history.append(url)
                if code == 303 or (code in (301, 302) and method == "POST"):
                    method = "GET"
                continue
            break
        if not self.status_ok(code):
            reason = f" {answer.reason}" if answer.reason else ""
            raise NotReady(f"HTTP {code}{reason}, expected {self.status_text}")
        if not want_body:
            return f"HTTP {code}"
        return self._check_body(code, answer.body)

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


def build(target: Target, ctx: BuildContext) -> HttpCheck:
    return HttpCheck(target, ctx)
