"""Target URIs: parsing, per-target options and the redacted form shown in logs.

A target is `scheme://[user[:password]@]host[:port][/path][?query][#options]`, or
`exec:COMMAND`. waitfor's own per-target options (expected status, record type, ...)
live in the fragment, which no scheme sends anywhere; for schemes other than http(s),
whose query belongs to the URL, they may also be given as the query.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from functools import cache
from urllib.parse import quote, unquote

from agents._options import OptionError, parse_bool, parse_duration, parse_int
from agents._urls import redact
from agents._urls import split as split_url

# scheme -> check module under agents.waitfor.checks (imported only when used)
SCHEMES: dict[str, str] = {
    "tcp": "tcp",
    "http": "http",
    "https": "http",
    "dns": "dns",
    "file": "files",
    "unix": "files",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "redis": "redis",
    "rediss": "redis",
    "amqp": "amqp",
    "amqps": "amqp",
    "k8s": "k8s",
    "grpc": "grpc_health",
    "grpcs": "grpc_health",
    "exec": "exec",
}
DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "postgres": 5432,
    "postgresql": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
}
_PATH_OPTIONS = {"key", "cert", "ca"}  # file paths, worth showing
_SENSITIVE = r"pass|secret|token|key|auth|cookie|credential|sig"


class TargetError(OptionError):
    """A target URI or one of its options is invalid."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(f"target {target!r}: {problem}")
        self.target = target
        self.problem = problem


class TargetOptions:
    """waitfor's per-target options, with typed getters that name the bad option."""

    def __init__(self, display: str, values: dict[str, list[str]] | None = None) -> None:
        self.display = display
        self.values = values if values is not None else {}
        self._used: set[str] = set()

    def _error(self, problem: str) -> TargetError:
        return TargetError(self.display, problem)

    def all(self, key: str) -> list[str]:
        self._used.add(key)
        return self.values.get(key, [])

    def str(self, key: str, default: str | None = None) -> str | None:
        found = self.all(key)
        if len(found) > 1:
            raise self._error(f"option {key!r} given {len(found)} times")
        return found[0] if found else default

    def list(self, key: str) -> list[str]:
        """Comma-separated and/or repeated values, empty items dropped."""
        return [item.strip() for raw in self.all(key) for item in raw.split(",") if item.strip()]

    def bool(self, key: str, default: bool = False) -> bool:
        raw = self.str(key)
        if raw is None:
            return default
        try:
            return parse_bool(raw or "true", name=key)
        except OptionError as exc:
            raise self._error(f"option {exc}") from None

    def int(self, key: str, default: int, minimum: int = 0) -> int:
        raw = self.str(key)
        if raw is None:
            return default
        try:
            return parse_int(raw, name=key, minimum=minimum)
        except OptionError as exc:
            raise self._error(f"option {exc}") from None

    def duration(self, key: str, default: float | None) -> float | None:
        raw = self.str(key)
        if raw is None:
            return default
        try:
            return parse_duration(raw, name=key)
        except OptionError as exc:
            raise self._error(f"option {exc}") from None

    def reject_unknown(self) -> None:
        """Call after a check read every option it knows: leftovers are typos."""
        unknown = sorted(set(self.values) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used)) or "none"
            raise self._error(f"unknown option {unknown[0]!r} (this scheme knows: {known})")


class Target:
    """One parsed target. (Plain classes here and in config: `dataclasses` would add a
    fifth to waitfor's start-up.)"""

    def __init__(
        self,
        raw: str,
        scheme: str,
        display: str,
        options: TargetOptions,
        *,
        host: str = "",
        port: int | None = None,
        path: str = "",
        query: str = "",
        username: str | None = None,
        password: str | None = None,
        command: tuple[str, ...] = (),
    ) -> None:
        self.raw, self.scheme, self.display, self.options = raw, scheme, display, options
        self.host, self.port, self.path, self.query = host, port, path, query
        self.username, self.password, self.command = username, password, command
        self.password_file: str | None = None  # read again at each attempt: a rotated Secret

    def current_password(self) -> str | None:
        """The password now: `#password-file=` is read at each attempt (a Secret rotated
        while waitfor waits); one unreadable this moment keeps the last value read."""
        if self.password_file is not None:
            with contextlib.suppress(TargetError):
                self.password = _read_password_file(self, self.password_file)
        return self.password

    def __repr__(self) -> str:
        return f"Target({self.display!r})"

    def error(self, problem: str) -> TargetError:
        return TargetError(self.display, problem)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _parse_options(text: str, display: str, into: dict[str, list[str]]) -> None:
    for item in text.split("&"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip().lower().replace("_", "-")
        if not key:
            raise TargetError(display, f"option {item!r} has no name")
        into.setdefault(key, []).append(unquote(value) if sep else "")


def _redact(scheme: str, netloc_user: str | None, has_password: bool, rest: str) -> str:
    user = ""
    if netloc_user is not None or has_password:
        user = quote(netloc_user or "", safe="") + (":***" if has_password else "") + "@"
    return f"{scheme}://{user}{rest}"


def _redact_pairs(text: str, *, ours: bool) -> str:
    """Mask the values of sensitive-looking options, including header values.

    `ours`: waitfor's own options, where ca/cert/key are file paths worth showing; in a
    URL's own query `key=` is an API key like any other secret.
    """
    out = []
    for item in text.split("&"):
        key, sep, value = item.partition("=")
        if sep and key.lower() == "header":
            name, colon, _ = unquote(value).partition(":")
            if colon and _pattern(_SENSITIVE).search(name):
                value = quote(name) + ":***"
        elif sep and _pattern(_SENSITIVE).search(key) and not (ours and key in _PATH_OPTIONS):
            value = "***"
        out.append(f"{key}{sep}{value}")
    return "&".join(out)


# `host:port` alone, as wait-for-it takes it: a TCP target
_HOST_PORT = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5}"
)


def parse_target(raw: str, *, read_files: bool = True) -> Target:
    """A target as waitfor takes it (`host:port` alone is `tcp://host:port`).
    `read_files=False`: a `#password-file=` is named but not read (a file that exists only
    where the target will run, as `pod-agents inject` writes it into a manifest)."""
    text = raw.strip()
    if _HOST_PORT.fullmatch(text):
        text = raw = f"tcp://{text}"
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise TargetError(
            _safe_display(raw),
            "not a URI: expected scheme://host:port, host:port or exec:COMMAND",
        )
    if scheme not in SCHEMES:
        raise TargetError(_safe_display(raw), unknown_scheme(scheme))

    if scheme == "exec":
        try:
            argv = tuple(shlex.split(rest))
        except ValueError as exc:
            raise TargetError(raw, f"cannot split command: {exc}") from None
        if not argv:
            raise TargetError(raw, "exec: needs a command, e.g. exec:pg_isready -h db")
        return Target(raw, scheme, f"exec:{shlex.join(argv)}", TargetOptions(raw), command=argv)

    try:
        # postgres://app:pa/ss@db would parse as host "app", port "pa"...: a password with
        # an unencoded "/", "?" or "#" would be run as an address and printed. Refused.
        parts, port = split_url(text)
    except ValueError as exc:
        raise TargetError(_safe_display(raw), f"invalid URI: {exc}") from None
    host = parts.hostname or ""
    if not parts.netloc and "@" in parts.path and scheme not in ("file", "unix", "dns"):
        raise TargetError(_safe_display(raw), "expected scheme://[user[:password]@]host[:port]")
    has_password = parts.password is not None
    hostport = parts.netloc.rpartition("@")[2]
    rest_display = hostport + parts.path
    query = parts.query
    options: dict[str, list[str]] = {}
    display = _redact(scheme, parts.username, has_password, rest_display)
    if query:
        display += "?" + _redact_pairs(query, ours=scheme not in ("http", "https"))
    if parts.fragment:
        display += "#" + _redact_pairs(parts.fragment, ours=True)
    _parse_options(parts.fragment, display, options)
    if query and scheme not in ("http", "https"):
        _parse_options(query, display, options)
        query = ""

    target = Target(
        raw=raw,
        scheme=scheme,
        display=display,
        options=TargetOptions(display, options),
        host=host,
        port=port if port is not None else DEFAULT_PORTS.get(scheme),
        path=unquote(parts.path),
        query=query,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if has_password else None,
    )
    if "\0" in target.path:
        raise target.error("the path contains a NUL byte")
    if scheme in PASSWORD_SCHEMES:
        secret_file = target.options.str("password-file")
        if secret_file is not None:
            if has_password:
                raise target.error("a password in the URI and a password-file: give one")
            if read_files:
                target.password = _read_password_file(target, secret_file)
            target.password_file = secret_file
    if scheme in ("file", "unix"):
        if host and host != "localhost":
            raise target.error(
                f"{scheme}:// takes an absolute path: {scheme}:///path "
                f"(three slashes), not a host {host!r}"
            )
        if not target.path:
            raise target.error("missing path")
        return target
    if scheme == "dns":
        # dns://name and dns:name both name the record to look up.
        name = host or parts.path.lstrip("/")
        if parts.netloc and not host:
            raise target.error("missing name to look up")
        if not name:
            raise target.error("missing name to look up, e.g. dns://myservice")
        if port is not None:
            raise target.error("a DNS name takes no port; choose the server with #server=IP:PORT")
        target.host = name
        return target
    if scheme == "k8s":  # k8s://KIND/NAME: the "host" is the kind
        if port is not None or not host:
            raise target.error("expected k8s://KIND/NAME or k8s://pods?selector=LABELS")
        return target
    if not host:
        raise target.error("missing host")
    problem = host_problem(host)
    if problem:
        raise target.error(problem)
    if target.port is None:
        raise target.error(f"missing port ({scheme}://host:PORT)")
    if not 0 < target.port < 65536:
        raise target.error(f"port {target.port} out of range 1-65535")
    return target


# Schemes whose check logs in: a password can come from a file (a mounted Secret), so
# that it is in neither the command line (`ps`, /proc/PID/cmdline) nor the environment.
PASSWORD_SCHEMES = frozenset({"http", "https", "mysql", "mariadb", "redis", "rediss", "amqp",
                              "amqps", "postgres", "postgresql"})  # fmt: skip


def _read_password_file(target: Target, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as secret:
            text = secret.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise target.error(f"option password-file: cannot read {path}: {why}") from None
    return text.removesuffix("\n").removesuffix("\r")


def unknown_scheme(scheme: str) -> str:
    """The problem with an unknown scheme, naming the known one it is closest to."""
    import difflib

    known = sorted(SCHEMES)
    close = difflib.get_close_matches(scheme, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}://? " if close else ""
    return f"unknown scheme {scheme!r} ({hint}known: {', '.join(known)})"


_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"


def host_problem(host: str) -> str | None:
    """Why `host` cannot be a host name or address, or None when it can."""
    if ":" in host:
        return None  # an IPv6 literal: urlsplit checked its brackets
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return f"invalid host name {host!r}"
    if len(name) > 253 or not all(re.fullmatch(_LABEL, label) for label in name.split(".")):
        return f"invalid host name {host!r}"
    return None


def _safe_display(raw: str) -> str:
    """Best-effort redaction for URIs too broken to parse."""
    return redact(raw)


_SPLIT = r",+(?=(?:[a-z][a-z0-9+.-]*://|(?:exec|dns|file|unix):))"


@cache
def _pattern(text: str) -> re.Pattern[str]:
    """Compiled on first use: most runs never need most patterns."""
    return re.compile(text, re.IGNORECASE)


def split_targets(text: str) -> list[str]:
    """Split WAITFOR_TARGETS: whitespace or commas between targets.

    A comma splits only where a new URI starts, so option lists such as
    `#status=200,204` stay whole. A target wrapped whole in '…' or "…" may contain
    spaces (exec: commands); quotes inside a target are kept as they are, so a body
    regex such as `"status":\\s*"UP"` arrives intact.
    """
    out: list[str] = []
    for match in re.finditer(r"""'([^']*)'|"([^"]*)"|(\S+)""", text):
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if quoted is not None:
            if (
                match.start() > 0
                and not text[match.start() - 1].isspace()
                and text[match.start() - 1] != ","
            ):
                raise OptionError("WAITFOR_TARGETS: a quote must open a whole target")
            if not quoted.strip():
                raise OptionError("WAITFOR_TARGETS: an empty quoted target: remove the quotes")
            out.append(quoted)
            continue
        word = match.group(3)
        if word.count("'") % 2 or word.startswith('"'):
            raise OptionError(f"WAITFOR_TARGETS: unbalanced quote in {_safe_display(word)!r}")
        out.extend(piece for piece in _pattern(_SPLIT).split(word.strip(", ")) if piece)
    return out
