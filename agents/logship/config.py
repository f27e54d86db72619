"""argv + environment + an optional YAML file → a validated, frozen `Config`.

Every option has three spellings: `--batch-bytes` on the command line, `LOGSHIP_BATCH_BYTES`
in the environment, `batch_bytes:` (or `batch-bytes:`) in the file named by `--config`.
The command line wins over the environment, the environment over the file, the file over
the default. A bad value is an `OptionError` naming the spelling it came from.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from agents import __version__
from agents._options import OptionError, env_twin, parse_bool, parse_duration, parse_int, pick
from agents._urls import redact
from agents._urls import split as split_url

# (name, kind, default, help). kinds: str, secret, path, duration, int, size, bool, list,
# choice:a|b. Config below has one typed field per row, in the same order.
OPTIONS: list[tuple[str, str, object, str]] = [
    ("paths", "list", [], "glob of files to ship (repeatable; ** matches directories)"),
    ("exclude", "list", [], "glob of files to leave alone (repeatable)"),
    ("es", "list", [], "Elasticsearch/OpenSearch URL (repeatable, load spread; no port: 80/443)"),
    ("data_dir", "path", None, "where the registry and dead letters live (shared volume)"),
    ("start_at", "choice:beginning|end", "beginning", "where to start files seen first"),
    ("max_line_bytes", "size", 1024 * 1024, "longer lines are truncated and flagged"),
    ("multiline_preset", "choice:|java|python", "", "join stack traces: java or python"),
    ("multiline_pattern", "str", "", "regex of lines that belong to a neighbour"),
    ("multiline_negate", "bool", False, "join the lines that do NOT match the pattern"),
    ("multiline_match", "choice:after|before", "after", "join onto the line before/after"),
    ("multiline_max_lines", "int", 500, "cap on lines in one joined event"),
    ("multiline_timeout", "duration", 5.0, "release a pending joined event after this quiet"),
    ("json_lines", "choice:off|root|key", "off", "parse JSON-object lines into fields"),
    ("json_key", "str", "json", "with --json-lines key: the field to put them under"),
    ("timestamp_field", "str", "", "JSON field to take @timestamp from"),
    ("field", "list", [], "static field key=value added to every event (repeatable)"),
    ("labels_file", "path", Path("/etc/podinfo/labels"), "downwardAPI labels file, if mounted"),
    ("index", "str", "logship-%Y.%m.%d", "index name; strftime patterns use the event day (UTC)"),
    (
        "data_stream",
        "str",
        "",
        "ship to data stream logs-DATASET-NAMESPACE (give DATASET.NAMESPACE)",
    ),
    ("template_file", "path", None, "index template (JSON) to install at start"),
    (
        "flavor",
        "choice:auto|elasticsearch|elasticsearch-7|opensearch",
        "auto",
        "the server at --es; auto: learnt from GET / (give it where GET / is forbidden)",
    ),
    ("username", "str", "", "basic-auth user"),
    ("password", "secret", "", "basic-auth password"),
    ("password_file", "path", None, "file holding the basic-auth password"),
    ("api_key", "secret", "", "API key (base64 id:key as Elasticsearch issues it)"),
    ("api_key_file", "path", None, "file holding the API key"),
    ("bearer_token", "secret", "", "bearer token"),
    ("bearer_token_file", "path", None, "file holding the bearer token"),
    ("ca_file", "path", None, "CA bundle to verify Elasticsearch with"),
    ("cert_file", "path", None, "client certificate (mTLS)"),
    ("key_file", "path", None, "client key (mTLS)"),
    ("insecure", "bool", False, "skip TLS verification (logged as a warning)"),
    ("batch_docs", "int", 2000, "flush a bulk request at this many events"),
    ("batch_bytes", "size", 5 * 1024 * 1024, "... or at this many bytes of NDJSON"),
    ("flush_interval", "duration", 0.1, "... or after this long (a quiet line waits no longer)"),
    ("max_in_flight", "int", 4, "bulk requests in flight at once"),
    ("compress", "bool", True, "gzip bulk bodies"),
    ("request_timeout", "duration", 30.0, "limit for one bulk request"),
    ("queue_bytes", "size", 64 * 1024 * 1024, "memory budget for unacknowledged events"),
    ("dead_letter", "str", "file", "where rejected events go: file, or index:NAME"),
    # All interfaces by default: the kubelet probes the pod IP, not loopback.
    ("http_host", "str", "0.0.0.0", "address of /healthz, /readyz and /metrics"),  # noqa: S104
    ("http_port", "int", 0, "port of /healthz, /readyz and /metrics (0: off)"),
    (
        "drain_quiet",
        "duration",
        1.0,
        "on SIGTERM: once the app's processes are gone (or cannot be seen), stop when no file "
        "grew this long, counted from the signal at the earliest",
    ),
    (
        "drain_timeout",
        "duration",
        25.0,
        "on SIGTERM: stop after this long regardless (from 5s before it, writers still alive "
        "are no longer waited for)",
    ),
    ("scan_interval", "duration", 10.0, "rescan the globs this often (inotify aside)"),
    # auto: inotify on Linux, watchdog elsewhere; poll: for filesystems whose changes
    # inotify does not see (NFS, some bind mounts).
    ("watch", "choice:auto|inotify|watchdog|poll", "auto", "inotify, watchdog or poll"),
    ("close_inactive", "duration", 300.0, "close files idle this long (reopened on growth)"),
    (
        "stats_interval",
        "duration",
        30.0,
        "say what was shipped (events, bytes, files, lag) this often, when anything was; 0: never",
    ),
    (
        "log_format",
        "choice:auto|json|text",
        "auto",
        "logship's own log lines; auto: text on a terminal, JSON otherwise",
    ),
    ("log_level", "choice:debug|info|warning|error", "info", "logship's own log level"),
]
NAMES = {name for name, *_ in OPTIONS}
SECRET = {"password", "api_key", "bearer_token"}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?", re.IGNORECASE)
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# Where the plural reads better in a manifest than the flag's name.
ENV_NAMES = {"es": "LOGSHIP_ES_URLS", "exclude": "LOGSHIP_EXCLUDES", "field": "LOGSHIP_FIELDS"}
FILE_ALIASES = {"path": "paths", "es_urls": "es", "excludes": "exclude", "fields": "field"}


def env_name(name: str) -> str:
    return env_twin("LOGSHIP_", name, ENV_NAMES)


def parse_size(text: str, *, name: str) -> int:
    """`65536`, `64KiB`, `5MB`, `1g` → bytes (K, M, G are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise OptionError(f"{name}: expected a size such as 512KiB or 64MiB, got {text!r}")
    unit = (match.group(2) or "b")[0].lower()
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Config:
    """Validated settings, one field per row of OPTIONS; load_config builds it (the
    defaults are OPTIONS'), and nothing changes it after.

    Types by kind: list → tuple[str, ...]; duration → float (seconds); int, size → int
    (sizes in bytes); path → Path | None (None: not given); choice → its Literal.
    """

    paths: tuple[str, ...]
    exclude: tuple[str, ...]
    es: tuple[str, ...]
    data_dir: Path  # required: validate() refuses None
    start_at: Literal["beginning", "end"]
    max_line_bytes: int
    multiline_preset: Literal["", "java", "python"]
    multiline_pattern: str
    multiline_negate: bool
    multiline_match: Literal["after", "before"]
    multiline_max_lines: int
    multiline_timeout: float
    json_lines: Literal["off", "root", "key"]
    json_key: str
    timestamp_field: str
    field: tuple[str, ...]
    labels_file: Path | None
    index: str
    data_stream: str
    template_file: Path | None
    flavor: Literal["auto", "elasticsearch", "elasticsearch-7", "opensearch"]
    username: str
    password: str
    password_file: Path | None
    api_key: str
    api_key_file: Path | None
    bearer_token: str
    bearer_token_file: Path | None
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    insecure: bool
    batch_docs: int
    batch_bytes: int
    flush_interval: float
    max_in_flight: int
    compress: bool
    request_timeout: float
    queue_bytes: int
    dead_letter: str
    http_host: str
    http_port: int
    drain_quiet: float
    drain_timeout: float
    scan_interval: float
    watch: Literal["auto", "inotify", "watchdog", "poll"]
    close_inactive: float
    stats_interval: float
    log_format: Literal["auto", "json", "text"]
    log_level: Literal["debug", "info", "warning", "error"]

    def as_dict(self, *, redact: bool = True) -> dict[str, Any]:
        """Every option's value; with `redact`, secrets as *** and so are the passwords
        in --es URLs."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if redact:
            for name in SECRET:
                if values[name]:
                    values[name] = "***"
            values["es"] = tuple(redact_url(url) for url in self.es)
        return values

    def __repr__(self) -> str:
        # Redacted: a Config in a log line or a traceback must not show credentials.
        shown = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"Config({shown})"


def default_text(kind: str, default: object) -> str:
    """A default as a user writes it: `1MiB`, `0.1s`, `on`; "" when there is none."""
    if default in (None, "", []) or kind == "secret":
        return ""
    if kind == "size" and isinstance(default, int):
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if default % size == 0:
                return f"{default // size}{unit}"
    if kind == "duration" and isinstance(default, float):
        return f"{default:g}s"
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


def build_parser() -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str):  # type: ignore[override]
            raise OptionError(message)

    parser = Parser(
        prog="logship",
        description="Tail log files and bulk-ship every line to Elasticsearch: nothing lost, "
        "nothing doubled, startup and shutdown lines included.",
        epilog="Every option also reads LOGSHIP_<NAME> from the environment and <name>: "
        "from the --config YAML file. Exit codes: 0 stopped cleanly; 2 bad configuration; "
        "1 any other failure.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file (env LOGSHIP_CONFIG)")
    parser.add_argument("--version", action="version", version=f"logship {__version__}")
    for name, kind, default, text in OPTIONS:
        shown = default_text(kind, default)
        shown = f", default {shown}" if shown else ""
        if kind.startswith("choice:"):
            shown += "; one of " + "|".join(c or '""' for c in kind.split(":", 1)[1].split("|"))
        hint = f"{text} (env {env_name(name)}{shown})".replace("%", "%%")  # argparse %-formats
        dest = name
        if name == "paths":
            parser.add_argument("--path", dest=dest, action="append", metavar="GLOB", help=hint)
        elif kind == "list":
            parser.add_argument(flag(name), dest=dest, action="append", metavar="VALUE", help=hint)
        elif kind == "bool":
            parser.add_argument(
                flag(name), dest=dest, action=argparse.BooleanOptionalAction, help=hint
            )
        else:
            parser.add_argument(
                flag(name), dest=dest, metavar=kind.split(":")[0].upper(), help=hint
            )
    return parser


def _split_list(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text.strip()) if item]


def yaml_problem(exc: Exception) -> str:
    """A YAML error as one line: where (line, column) and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def read_config_file(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            document = yaml.safe_load(fh)
    except OSError as exc:
        raise OptionError(f"--config: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise OptionError(f"--config: {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise OptionError(f"--config: {path} is not valid YAML: {yaml_problem(exc)}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise OptionError(f"--config: {path} must hold a mapping of option: value")
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = str(key).replace("-", "_")
        name = FILE_ALIASES.get(name, name)
        if name not in NAMES:
            raise OptionError(f"{path}: unknown option {key!r}")
        values[name] = value
    return values


def _convert(name: str, kind: str, raw: object, source: str) -> Any:
    """One raw value (CLI/env string, or YAML scalar/list) → its typed value."""
    if kind == "list":
        if isinstance(raw, list):
            return tuple(str(item) for item in raw)
        return tuple(_split_list(str(raw)))
    if isinstance(raw, bool) and kind == "bool":
        return raw
    text = str(raw)
    if kind == "duration":
        return parse_duration(text, name=source)
    if kind == "int":
        return parse_int(text, name=source, minimum=0)
    if kind == "size":
        return parse_size(text, name=source)
    if kind == "bool":
        return parse_bool(text, name=source)
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        if text not in choices:
            shown = ", ".join(c or "(empty)" for c in choices)
            raise OptionError(f"{source}: expected one of {shown}, got {text!r}")
        return text
    if kind == "path":
        return Path(text) if text else None
    return text


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    parsed = build_parser().parse_args(list(argv))
    config_path = parsed.config or env.get("LOGSHIP_CONFIG", "").strip() or None
    from_file = read_config_file(config_path) if config_path else {}
    values: dict[str, Any] = {}
    for name, kind, default, _ in OPTIONS:
        given = pick(getattr(parsed, name), flag=flag("path" if name == "paths" else name),
                     env=env, variable=env_name(name), file=from_file, key=name,
                     file_name=config_path or "")  # fmt: skip
        if given is None:
            values[name] = tuple(default) if isinstance(default, list) else default
            continue
        raw, source = given
        if kind == "list" and isinstance(raw, list) and source.startswith("--"):
            raw = [piece for item in raw for piece in _split_list(item)]
        values[name] = _convert(name, kind, raw, source)
    validate(values)
    return Config(**values)


REQUIRED = {
    "paths": "--path GLOB (or LOGSHIP_PATHS): the files to ship",
    "es": "--es URL (or LOGSHIP_ES_URLS): Elasticsearch",
    "data_dir": "--data-dir DIR (or LOGSHIP_DATA_DIR): where positions are kept, on the "
    "shared volume",
}


def validate(values: dict[str, Any]) -> None:
    """Rules across options; each error names the option to change."""
    missing = [what for name, what in REQUIRED.items() if not values[name]]
    if missing:
        raise OptionError("missing required options: " + "; ".join(missing))
    for url in values["es"]:
        if not re.fullmatch(r"https?://[^/\s]+(/.*)?", url):
            raise OptionError(f"--es: {redact_url(url)!r} is not an http(s):// URL")
    check_urls(values["es"])
    for name in ("batch_docs", "max_in_flight", "multiline_max_lines", "max_line_bytes",
                 "batch_bytes"):  # fmt: skip
        if values[name] < 1:
            raise OptionError(f"{flag(name)}: must be at least 1")
    for name in ("request_timeout", "scan_interval", "flush_interval", "drain_quiet"):
        if values[name] <= 0:
            raise OptionError(f"{flag(name)}: must be greater than 0")
    if not values["data_stream"]:
        problem = index_problem(values["index"])
        if problem:
            raise OptionError(f"--index: {problem}")
    if values["queue_bytes"] < values["batch_bytes"]:
        raise OptionError("--queue-bytes: must be at least --batch-bytes")
    for pair in values["field"]:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise OptionError(f"--field: expected key=value, got {pair!r}")
    stream = values["data_stream"]
    if stream and not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", stream):
        raise OptionError(
            f"--data-stream: expected DATASET.NAMESPACE in lower case, got {stream!r}"
        )
    if values["multiline_preset"] and values["multiline_pattern"]:
        raise OptionError("--multiline-pattern: give a pattern or a preset, not both")
    dead = values["dead_letter"]
    if dead != "file" and not re.fullmatch(r"index:[a-z0-9][a-z0-9._-]*", dead):
        raise OptionError(f"--dead-letter: expected file or index:NAME, got {dead!r}")
    auth = [n for n in ("password", "password_file") if values[n]]
    if auth and not values["username"]:
        raise OptionError("--username: needed with --password/--password-file")
    kinds = [bool(values["password"] or values["password_file"]),
             bool(values["api_key"] or values["api_key_file"]),
             bool(values["bearer_token"] or values["bearer_token_file"])]  # fmt: skip
    if sum(kinds) > 1:
        raise OptionError("--api-key: choose one of basic auth, API key or bearer token")
    if values["key_file"] and not values["cert_file"]:
        raise OptionError("--key-file: needs --cert-file too")
    if not 0 <= values["http_port"] < 65536:
        raise OptionError(f"--http-port: {values['http_port']} is not a port")


def index_problem(pattern: str) -> str | None:
    """Why Elasticsearch would refuse every index this strftime pattern names, or None."""
    import time

    name = time.strftime(pattern, time.gmtime(0))
    if "%" in name:
        return f"{pattern!r} has an unknown % pattern (it gives {name!r})"
    if name != name.lower():
        return f"{name!r}: index names must be lower case"
    if not name or name[0] in "-_+" or name in (".", "..") or len(name.encode()) > 255:
        return f"{name!r} is not a valid index name"
    bad = set(name) & set('\\/*?"<>| ,#:')
    if bad:
        return f"{name!r} contains {''.join(sorted(bad))!r}, not allowed in index names"
    return None


def check_urls(urls: Sequence[str]) -> None:
    """What the HTTP client cannot use (no host, a port that is not one, a password with
    an unencoded '/'), said at start; never with the password."""
    for url in urls:
        try:
            parts, _ = split_url(url)
        except ValueError as exc:
            raise OptionError(f"--es: cannot read {redact_url(url)!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OptionError(f"--es: {redact_url(url)!r} needs http(s)://HOST[:PORT]")


def redact_url(url: str) -> str:
    """`url` with the password of its userinfo, if any, replaced by ***."""
    return redact(url)
