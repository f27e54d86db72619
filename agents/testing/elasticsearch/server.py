"""An Elasticsearch stand-in on aiohttp: the parts of the REST API a log shipper touches.

`StandIn` answers info/ping, `_bulk` (with ES's item semantics, data streams and a dynamic
mapping check), health, index templates, `_count` and `_search`, checks compatibility
headers the way ES 8/9 do, and injects faults (down, status codes, per-item failures,
latency, dropped connections, 413) from Python or over HTTP under `/_standin/`. Run it as
a process with `python -m agents.testing.elasticsearch --port 9200`.

The parsing and item rules are pure functions and a synchronous `Store`, so they can be
tested without a socket; the server only moves bytes and applies faults.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import fnmatch
import json
import random
import re
import signal
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_VERSION = "8.15.0"
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # http.max_content_length
PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, one unassigned replica
ACTIONS = ("index", "create", "update", "delete")
_ACTION_PARAMS = {
    "_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no",
    "if_primary_term", "retry_on_conflict", "pipeline", "_source", "require_alias",
    "require_data_stream", "dynamic_templates", "list_executed_pipelines",
}  # fmt: skip
_UPDATE_FIELDS = {
    "doc", "upsert", "doc_as_upsert", "script", "scripted_upsert", "detect_noop", "_source",
}  # fmt: skip


# --------------------------------------------------------------------------------------
# Errors in Elasticsearch's shape


class EsError(Exception):
    """An Elasticsearch exception: `type`, `reason`, extra fields and an optional cause."""

    def __init__(
        self,
        status: int,
        type: str,
        reason: str,
        *,
        caused_by: EsError | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {type}: {reason}")
        self.status, self.type, self.reason = status, type, reason
        self.caused_by, self.extra = caused_by, extra

    def cause(self) -> dict[str, Any]:
        """The error object as it appears in a bulk item or as `error` of a response."""
        obj: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            obj["caused_by"] = self.caused_by.cause()
        return obj

    def body(self) -> dict[str, Any]:
        """The request-level response body: `{"error": {"root_cause": [...], ...}, "status"}`."""
        root = {"type": self.type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [root], **self.cause()}, "status": self.status}


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of "8.15.0"; ValueError for anything else."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?(?:-[\w.]+)?", version)
    if match is None:
        raise ValueError(f"not an Elasticsearch version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def _illegal(reason: str, status: int = 400) -> EsError:
    return EsError(status, "illegal_argument_exception", reason)


# --------------------------------------------------------------------------------------
# Compatibility headers (RestCompatibleVersionHelper)

_COMPAT = re.compile(r"compatible-with\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_BODY_TYPES = {
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+json",
    "application/vnd.elasticsearch+x-ndjson",
}


def compat_version(header: str | None) -> int | None:
    """The `compatible-with=N` of a media type, or None when the header does not ask."""
    if not header:
        return None
    match = _COMPAT.search(header)
    return int(match.group(1)) if match else None


def check_media_types(
    accept: str | None, content_type: str | None, has_body: bool, major: int
) -> int | None:
    """Validate Accept/Content-Type like ES `major` does; return the requested version.

    ES accepts its own major and the one before; both headers must agree when a body is
    sent. A violation is a 400 `media_type_header_exception`, caused by a `status_exception`.
    """
    a_version, c_version = compat_version(accept), compat_version(content_type)
    accept_v = major if a_version is None else a_version
    content_v = major if c_version is None else c_version
    lowest = major - 1
    problem = None
    if not lowest <= accept_v <= major:
        problem = (
            f"Accept version must be either version {major} or {lowest}, "
            f"but found {accept_v}. Accept={accept}"
        )
    elif has_body and not lowest <= content_v <= major:
        problem = (
            f"Content-Type version must be either version {major} or {lowest}, "
            f"but found {content_v}. Content-Type={content_type}"
        )
    elif has_body and content_v != accept_v:
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            "either one has requested a compatible version and the compatible versions must "
            f"match. Accept={accept}, Content-Type={content_type}"
        )
    elif has_body and (a_version is None) != (c_version is None):
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            f"either one has requested a compatible version. Accept={accept}, "
            f"Content-Type={content_type}"
        )
    if problem is not None:
        raise EsError(
            400,
            "media_type_header_exception",
            "Invalid media-type value on headers [Accept, Content-Type]",
            caused_by=EsError(400, "status_exception", problem),
        )
    return a_version if a_version is not None else c_version


def body_type_supported(content_type: str | None) -> bool:
    """Whether ES would parse a body sent with this Content-Type (else 406)."""
    if not content_type:
        return False
    return content_type.split(";")[0].strip().lower() in _BODY_TYPES


# --------------------------------------------------------------------------------------
# JSON as ES reads it: duplicate keys and NaN are errors (strict duplicate detection)


class _JsonProblem(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _JsonProblem(f"Duplicate field '{key}'")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise _JsonProblem(f"Non-standard token '{name}'")


def loads_strict(raw: bytes) -> Any:
    """Parse one JSON value; raises EsError(400, x_content_parse_exception) like ES."""
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise EsError(400, "x_content_parse_exception", f"[1:{e.colno}] {e.msg}") from None
    except _JsonProblem as e:
        raise EsError(400, "x_content_parse_exception", f"[1:1] {e}") from None
    except UnicodeDecodeError as e:
        raise EsError(400, "x_content_parse_exception", f"[1:1] Invalid UTF-8: {e}") from None


def _token(value: Any) -> str:
    """The Jackson token name ES puts in its parse errors."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_NUMBER"


def _text(value: Any) -> str:
    """`parser.text()`: how ES turns a scalar metadata value into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------
# NDJSON bulk bodies (BulkRequestParser)


@dataclass
class BulkOp:
    """One parsed bulk action. `source` is the raw document line, parsed per item later."""

    action: str  # index | create | update | delete (index with op_type=create is "create")
    index: str | None
    id: str | None
    line: int
    source: bytes | None = None
    update: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each `\\n`-terminated line; ES rejects an unterminated tail."""
    start, number = 0, 0
    while True:
        end = body.find(b"\n", start)
        if end == -1:
            if start != len(body):
                raise _illegal("The bulk request must be terminated by a newline [\\n]")
            return
        number += 1
        line = body[start:end]
        yield number, line[:-1] if line.endswith(b"\r") else line
        start = end + 1


def _parse_action(raw: bytes, number: int, default_index: str | None) -> BulkOp | None:
    """One action/metadata line; None for a blank line, which ES skips."""
    if not raw.strip():
        return None
    value = loads_strict(raw)
    where = f"Malformed action/metadata line [{number}]"
    if not isinstance(value, dict):
        raise _illegal(f"{where}, expected START_OBJECT but found [{_token(value)}]")
    if not value:
        raise _illegal(f"{where}, expected FIELD_NAME but found [END_OBJECT]")
    action, meta = next(iter(value.items()))  # ES reads the first key; extras are ignored
    if action not in ACTIONS:
        raise _illegal(
            f"{where}, expected field [create], [delete], [index] or [update] but found [{action}]"
        )
    if not isinstance(meta, dict):
        raise _illegal(f"{where}, expected START_OBJECT or END_OBJECT but found [{_token(meta)}]")
    params: dict[str, Any] = {}
    for key, item in meta.items():
        if isinstance(item, list):
            raise _illegal(
                f"{where}, expected a simple value for field [{key}] but found [START_ARRAY]"
            )
        if key not in _ACTION_PARAMS:
            raise _illegal(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
        if isinstance(item, dict) and key not in ("_source", "dynamic_templates"):
            raise _illegal(
                f"{where}, expected a simple value for field [{key}] but found [START_OBJECT]"
            )
        if item is not None:
            params[key] = item
    index = _text(params.pop("_index")) if "_index" in params else default_index
    doc_id = _text(params.pop("_id")) if "_id" in params else None
    if action == "index" and params.get("op_type") == "create":
        action = "create"
    return BulkOp(action, index, doc_id, number, params=params)


def _parse_update(raw: bytes) -> dict[str, Any]:
    spec = loads_strict(raw)
    if not isinstance(spec, dict):
        raise EsError(
            400, "x_content_parse_exception", "[1:1] [UpdateRequest] Expected START_OBJECT"
        )
    for key in spec:
        if key not in _UPDATE_FIELDS:
            raise EsError(
                400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{key}]"
            )
    return spec


def _validate(ops: list[BulkOp]) -> None:
    """BulkRequest.validate(): every problem numbered in one action_request_validation_exception."""
    problems = [] if ops else ["no requests added"]
    for op in ops:
        if op.index is None:
            problems.append("index is missing")
        if op.action in ("update", "delete") and op.id is None:
            problems.append("id is missing")
        if op.update is not None and "doc" not in op.update and "script" not in op.update:
            problems.append("script or doc is missing")
        if op.id is not None and len(op.id.encode()) > 512:
            size = len(op.id.encode())
            problems.append(
                f"id [{op.id}] is too long, must be no longer than 512 bytes but was: {size}"
            )
    if problems:
        text = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        raise EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")


def parse_bulk(body: bytes, default_index: str | None = None) -> list[BulkOp]:
    """Parse an NDJSON bulk body into operations, or raise the request-level EsError.

    Faithful to ES: blank lines are skipped, `\\r\\n` is accepted, an action whose source
    line is missing at the very end is dropped silently, and document sources are not
    parsed here (a bad document is a per-item failure, a bad action line fails the request).
    """
    if not body:
        raise EsError(400, "parse_exception", "request body is required")
    ops: list[BulkOp] = []
    lines = _lines(body)
    for number, raw in lines:
        op = _parse_action(raw, number, default_index)
        if op is None:
            continue
        if op.action != "delete":
            source = next(lines, None)
            if source is None:
                break
            if op.action == "update":
                op.update = _parse_update(source[1])
            else:
                op.source = source[1]
        ops.append(op)
    _validate(ops)
    return ops


def decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding` (gzip, deflate); raise BodyTooLarge past `limit` decoded bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _illegal(f"unsupported Content-Encoding [{encoding}]")
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(raw, limit + 1)  # bounded: a small gzip can expand hugely
    except zlib.error as e:
        raise _illegal(f"failed to decompress the request body: {e}") from None
    if len(out) > limit:
        raise BodyTooLarge
    return out


class BodyTooLarge(Exception):
    """The body is over http.max_content_length: answer 413 with an empty body."""


# --------------------------------------------------------------------------------------
# Dynamic mapping: the first value of a field fixes its type; ES's coercions decide conflicts

_ISO_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_SLASH_DATE = re.compile(r"(\d{4})/(\d{2})/(\d{2})(?: \d{2}:\d{2}:\d{2})?")
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_KIND = {  # ES field type -> what the check treats it as
    "text": "string", "keyword": "string", "match_only_text": "string", "wildcard": "string",
    "constant_keyword": "string", "ip": "string", "version": "string",
    "long": "long", "integer": "long", "short": "long", "byte": "long",
    "unsigned_long": "long", "double": "double", "float": "double", "half_float": "double",
    "scaled_float": "double", "boolean": "boolean", "date": "date", "date_nanos": "date",
    "object": "object", "nested": "object", "flattened": "flattened",
}  # fmt: skip


def looks_like_date(value: str) -> bool:
    """Dynamic date detection: strict_date_optional_time or yyyy/MM/dd[ HH:mm:ss]."""
    match = _ISO_DATE.fullmatch(value) or _SLASH_DATE.fullmatch(value)
    if match is None:
        return False
    try:
        dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return False
    return True


def dynamic_type(value: Any) -> str | None:
    """The field type ES's dynamic mapping picks for a first value (None: no mapping yet)."""
    if isinstance(value, list):
        return next((t for t in map(dynamic_type, value) if t is not None), None)
    if isinstance(value, dict):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "date" if looks_like_date(value) else "text"
    return None


def _preview(value: Any) -> str:
    """Java's Map/List toString, as in ES's "Preview of field's value"."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_preview(v) for v in value) + "]"
    return _text(value) if value is not None else "null"


def _scalar_problem(es_type: str, value: Any) -> EsError | None:
    """Why a concrete value does not fit a mapped scalar type (None: ES would accept it)."""
    kind = _KIND.get(es_type, "string")
    text = _text(value)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("long", "double"):
        if isinstance(value, bool):
            return _illegal(f"Current token (VALUE_{text.upper()}) not numeric")
        if numeric or _NUMBER.fullmatch(text):
            return None
        return EsError(400, "number_format_exception", f'For input string: "{text}"')
    if kind == "boolean" and not (isinstance(value, bool) or text in ("true", "false", "")):
        return _illegal(f"Failed to parse value [{text}] as only [true] or [false] are allowed.")
    if kind == "date" and not (numeric or looks_like_date(text) or _NUMBER.fullmatch(text)):
        return _illegal(
            f"failed to parse date field [{text}] with format "
            "[strict_date_optional_time||epoch_millis]"
        )
    return None


@dataclass
class IndexMapping:
    """One index's mapping: dotted field path -> ES type, plus the index-wide switches."""

    fields: dict[str, str] = field(default_factory=dict)
    dynamic: str = "true"  # "true" | "false" | "strict"
    ignore_malformed: bool = False

    def properties(self) -> dict[str, Any]:
        """The mapping as ES shows it: nested `properties`."""
        root: dict[str, Any] = {}
        for path in sorted(self.fields):
            node = root
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {}).setdefault("properties", {})
            if self.fields[path] == "object":
                node.setdefault(leaf, {"properties": {}})
            else:
                node[leaf] = {"type": self.fields[path]}
        return root


class _DocumentCheck:
    """Walks one document against a mapping, collecting the fields it would add."""

    def __init__(self, mapping: IndexMapping, doc_id: str, raw: bytes) -> None:
        self.mapping, self.doc_id = mapping, doc_id
        self.text = raw.decode("utf-8", "replace")
        self.added: dict[str, str] = {}

    def col(self, leaf: str) -> int:
        """Roughly where ES's parser was: the field name's column in the source line."""
        return self.text.find(f'"{leaf}"') + 1 or 1

    def fail(self, leaf: str, reason: str, cause: EsError | None = None) -> EsError:
        reason = f"[1:{self.col(leaf)}] {reason}"
        return EsError(400, "document_parsing_exception", reason, caused_by=cause)

    def known(self, path: str) -> str | None:
        return self.added.get(path) or self.mapping.fields.get(path)

    def add(self, path: str, leaf: str, es_type: str) -> None:
        if self.mapping.dynamic == "strict":
            parent = path.rpartition(".")[0] or "_doc"
            raise EsError(
                400,
                "strict_dynamic_mapping_exception",
                f"[1:{self.col(leaf)}] mapping set to strict, dynamic introduction of "
                f"[{leaf}] within [{parent}] is not allowed",
            )
        if self.mapping.dynamic == "true":
            self.added[path] = es_type

    def object(self, obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            *parents, leaf = key.split(".")
            path = prefix
            for part in parents:  # "a.b": 1 is {"a": {"b": 1}}
                path = f"{path}.{part}" if path else part
                existing = self.known(path)
                if existing is None:
                    self.add(path, part, "object")
                elif existing != "object":
                    full = f"{prefix}.{key}" if prefix else key
                    raise self.fail(
                        part,
                        f"Could not dynamically add mapping for field [{full}]. Existing "
                        f"mapping for [{path}] must be of type object but found [{existing}].",
                    )
            self.value(f"{path}.{leaf}" if path else leaf, leaf, value)

    def value(self, path: str, leaf: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, list):  # an array is several values of one field
            for item in value:
                self.value(path, leaf, item)
            return
        existing = self.known(path)
        if existing is None:
            self.add(path, leaf, dynamic_type(value) or "text")
            existing = "object" if isinstance(value, dict) else None
        if existing is None or _KIND.get(existing) == "flattened":
            return
        if existing == "object":
            if not isinstance(value, dict):
                raise self.fail(
                    leaf,
                    f"object mapping for [{path}] tried to parse field [{leaf}] as object, "
                    "but found a concrete value",
                )
            self.object(value, path)
            return
        lenient = self.mapping.ignore_malformed and path != "@timestamp"
        if isinstance(value, dict):
            if lenient and _KIND.get(existing) != "string":
                return
            cause = EsError(
                400,
                "illegal_state_exception",
                f"Can't get text on a START_OBJECT at 1:{self.col(leaf)}",
            )
            raise self.fail(leaf, _field_reason(path, existing, self.doc_id, value), cause)
        problem = _scalar_problem(existing, value)
        if problem is not None and not lenient:
            raise self.fail(leaf, _field_reason(path, existing, self.doc_id, value), problem)


def check_document(
    mapping: IndexMapping, doc: dict[str, Any], doc_id: str, raw: bytes
) -> dict[str, str]:
    """Fields the document would add to `mapping`, or raise its document_parsing_exception.

    Dotted keys are object paths, as in ES. A conflict is what ES itself rejects: a concrete
    value where an object is mapped (and the reverse), a non-number in a numeric field, a
    non-date in a date field, a non-boolean in a boolean field; a string field takes any
    scalar and a long field takes 1.5 or "12", because ES coerces them. With
    `ignore_malformed` (the built-in logs-*-* template sets it) scalar misfits are dropped
    instead of rejected, except in `@timestamp`.
    """
    check = _DocumentCheck(mapping, doc_id, raw)
    check.object(doc, "")
    return check.added


def _field_reason(path: str, es_type: str, doc_id: str, value: Any) -> str:
    return (
        f"failed to parse field [{path}] of type [{es_type}] in document with id '{doc_id}'. "
        f"Preview of field's value: '{_preview(value)}'"
    )


# --------------------------------------------------------------------------------------
# The store: indices, data streams, templates, and what each bulk item does to them

BUILTIN_LOGS_TEMPLATE: dict[str, Any] = {
    "index_patterns": ["logs-*-*"],
    "priority": 100,
    "data_stream": {"hidden": False, "allow_custom_routing": False},
    "composed_of": ["logs@mappings", "logs@settings", "logs@custom", "ecs@mappings"],
    "ignore_missing_component_templates": ["logs@custom"],
    "allow_auto_create": True,
    "_meta": {"description": "default logs template installed by x-pack", "managed": True},
}
_BAD_NAME_CHARS = '\\/*?"<>| ,#:'
ItemFault = Callable[[BulkOp, str], EsError | None]  # (op, concrete index) -> injected error


@dataclass
class Doc:
    source: dict[str, Any]
    version: int
    seq_no: int


@dataclass
class Index:
    name: str
    uuid: str
    mapping: IndexMapping
    data_stream: str | None = None
    docs: dict[str, Doc] = field(default_factory=dict)
    tombstones: dict[str, int] = field(default_factory=dict)  # id -> version of its delete
    last_seq_no: int = -1

    def next_seq_no(self) -> int:
        self.last_seq_no += 1
        return self.last_seq_no

    def error_extra(self) -> dict[str, str]:
        return {"index_uuid": self.uuid, "shard": "0", "index": self.name}


@dataclass
class DataStream:
    name: str
    template: str
    indices: list[str]


def index_name_problem(name: str) -> str | None:
    """Why ES would refuse to create an index of this name (None: it is fine)."""
    if name != name.lower():
        return "must be lowercase"
    if any(c in name for c in _BAD_NAME_CHARS):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, :, #]'
    if name[:1] in ("_", "-", "+"):
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name.encode()) > 255:
        return "index name is too long, (" + str(len(name.encode())) + " > 255)"
    return None


def merge_doc(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """The update API's partial-document merge: objects merge recursively, the rest replaces."""
    merged = dict(base)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_doc(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: {"index": {"mapping": {...}}} -> "index.mapping..."."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _mapping_from_template(template: Mapping[str, Any] | None) -> IndexMapping:
    """The explicit part of a template's mapping (properties, dynamic, ignore_malformed)."""
    body = (template or {}).get("template") or {}
    mappings = body.get("mappings") or {}
    settings = {
        key if key.startswith("index.") else f"index.{key}": value
        for key, value in _flatten(body.get("settings") or {}).items()
    }
    fields: dict[str, str] = {}

    def walk(properties: Mapping[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = f"{prefix}.{name}" if prefix else name
            fields[path] = spec.get("type", "object")
            walk(spec.get("properties") or {}, path)

    walk(mappings.get("properties") or {}, "")
    return IndexMapping(
        fields=fields,
        dynamic=str(mappings.get("dynamic", "true")).lower(),
        ignore_malformed=str(settings.get("index.mapping.ignore_malformed")).lower() == "true",
    )


class Store:
    """Everything the stand-in holds, and the rules of each bulk action. No I/O.

    `rng` makes auto-generated ids and uuids reproducible; `clock` dates backing indices.
    `fill_missing_timestamp` mimics the `logs@default-pipeline` of ES's stack templates,
    which sets a missing `@timestamp` in logs-*-* from the ingest time; off, a data stream
    document without `@timestamp` is the per-item 400 a plain data stream gives.
    """

    def __init__(
        self,
        *,
        version: str = DEFAULT_VERSION,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        fill_missing_timestamp: bool = False,
    ) -> None:
        self.version = version
        self.rng = rng or random.Random()  # noqa: S311 - ids, not secrets
        self.clock = clock
        self.fill_missing_timestamp = fill_missing_timestamp
        # ES 8.8 renamed mapper_parsing_exception for document failures
        self.parsing_error = (
            "document_parsing_exception"
            if version_tuple(version) >= (8, 8)
            else "mapper_parsing_exception"
        )
        self.clear()

    def clear(self) -> None:
        """Back to a fresh cluster: no indices, no data streams, only built-in templates."""
        self.indices: dict[str, Index] = {}
        self.data_streams: dict[str, DataStream] = {}
        self._builtin_logs = dict(BUILTIN_LOGS_TEMPLATE)
        self.templates: dict[str, dict[str, Any]] = {"logs": self._builtin_logs}

    # -- ids ------------------------------------------------------------------------

    def auto_id(self) -> str:
        """A 20-character URL-safe id, like ES's time-based ones."""
        return base64.urlsafe_b64encode(self.rng.randbytes(15)).decode()

    def new_uuid(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(16)).decode().rstrip("=")

    # -- resolution -----------------------------------------------------------------

    def template_for(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """The highest-priority index template whose patterns match `name`."""
        matches = [
            (int(body.get("priority") or 0), tname, body)
            for tname, body in self.templates.items()
            if any(fnmatch.fnmatchcase(name, p) for p in body.get("index_patterns", []))
        ]
        if not matches:
            return None
        _, tname, body = max(matches, key=lambda m: m[0])
        return tname, body

    def _create_index(self, name: str, data_stream: str | None = None) -> Index:
        found = self.template_for(data_stream or name)
        template = found[1] if found else None
        mapping = _mapping_from_template(template)
        if template is self._builtin_logs:  # logs@settings: index.mapping.ignore_malformed
            mapping.ignore_malformed = True
        if data_stream is not None:
            mapping.fields["@timestamp"] = "date"
        index = Index(name, self.new_uuid(), mapping, data_stream)
        self.indices[name] = index
        return index

    def _create_data_stream(self, name: str, template: str) -> DataStream:
        day = dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y.%m.%d")
        backing = f".ds-{name}-{day}-000001"
        stream = DataStream(name, template, [backing])
        self.data_streams[name] = stream
        self._create_index(backing, data_stream=name)
        return stream

    def _write_target(self, op: BulkOp) -> Index:
        """The concrete index an op writes to, creating it (or its data stream) on demand."""
        name = op.index or ""
        index, stream = self.indices.get(name), self.data_streams.get(name)
        stream_template = None
        if index is None and stream is None:
            problem = index_name_problem(name)
            if problem is not None:
                raise EsError(
                    400,
                    "invalid_index_name_exception",
                    f"Invalid index name [{name}], {problem}",
                    index_uuid="_na_",
                    index=name,
                )
            found = self.template_for(name)
            if found is not None and "data_stream" in found[1]:
                stream_template = found[0]
        if stream is not None or stream_template is not None:
            if op.action != "create":
                raise _illegal(
                    "only write ops with an op_type of create are allowed in data streams"
                )
            if stream is None:
                stream = self._create_data_stream(name, stream_template or "")
            return self.indices[stream.indices[-1]]
        if index is not None and index.data_stream is not None and op.action in ("create", "index"):
            what = "op_type=create" if op.action == "create" else "op_type=index and no if_seq_no"
            raise _illegal(
                f"index request with {what} targeting backing indices is disallowed, "
                f"target corresponding data stream [{index.data_stream}] instead"
            )
        if index is None:
            if op.action == "delete":  # ES does not create an index to delete from it
                raise _not_found(name)
            index = self._create_index(name)
        return index

    def resolve(self, expression: str) -> list[str]:
        """Concrete indices for a read expression: names, `*` patterns, data streams, `_all`.

        Patterns skip hidden indices (a leading dot, like backing indices) unless the pattern
        itself starts with a dot; a missing explicit name is a 404 index_not_found_exception.
        """
        found: list[str] = []
        for part in (p.strip() for p in expression.split(",")):
            if part in ("", "_all"):
                part = "*"
            if "*" in part:
                for stream in self.data_streams.values():
                    if fnmatch.fnmatchcase(stream.name, part):
                        found.extend(stream.indices)
                for name in self.indices:
                    if (part.startswith(".") or not name.startswith(".")) and fnmatch.fnmatchcase(
                        name, part
                    ):
                        found.append(name)
            elif part in self.data_streams:
                found.extend(self.data_streams[part].indices)
            elif part in self.indices:
                found.append(part)
            else:
                raise _not_found(part)
        return list(dict.fromkeys(found))

    # -- bulk -----------------------------------------------------------------------

    def bulk(self, ops: Iterable[BulkOp], item_fault: ItemFault | None = None) -> dict[str, Any]:
        """Apply a parsed bulk request; the response body ES would send (HTTP 200)."""
        started = time.monotonic()
        items = [self.apply(op, item_fault) for op in ops]
        return {
            "took": int((time.monotonic() - started) * 1000),
            "errors": any("error" in next(iter(item.values())) for item in items),
            "items": items,
        }

    def apply(self, op: BulkOp, item_fault: ItemFault | None = None) -> dict[str, Any]:
        """One bulk item: `{action: {_index, _id, ...result or error}}`."""
        try:
            index = self._write_target(op)
        except EsError as e:
            return _failed(op.action, op.index or "", op.id, e)
        doc_id = op.id if op.id is not None else self.auto_id()
        if item_fault is not None and op.action in ("create", "index"):
            injected = item_fault(op, index.name)
            if injected is not None:
                return _failed(op.action, index.name, doc_id, injected)
        try:
            if op.action == "delete":
                return self._delete(index, doc_id)
            if op.action == "update":
                return self._update(op, index, doc_id)
            return self._index(op, index, doc_id)
        except EsError as e:
            return _failed(op.action, index.name, doc_id, e)

    def _parse_source(self, raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            raise EsError(400, self.parsing_error, "failed to parse, document is empty")
        try:
            doc = loads_strict(raw)
        except EsError as e:
            where, _, detail = e.reason.partition("] ")
            reason = f"{where}] failed to parse: {detail}"
            raise EsError(400, self.parsing_error, reason, caused_by=e) from None
        if not isinstance(doc, dict):
            raise EsError(
                400,
                self.parsing_error,
                f"[1:1] failed to parse: expected START_OBJECT but found [{_token(doc)}]",
            )
        return doc

    def _check(self, index: Index, doc: dict[str, Any], doc_id: str, raw: bytes) -> dict[str, str]:
        try:
            added = check_document(index.mapping, doc, doc_id, raw)
        except EsError as e:
            if e.type == "document_parsing_exception":
                e.type = self.parsing_error
            raise
        if index.data_stream is not None:
            stamp = doc.get("@timestamp")
            problem = None
            if stamp is None:
                problem = "data stream timestamp field [@timestamp] is missing"
            elif isinstance(stamp, list) and len(stamp) > 1:
                problem = "data stream timestamp field [@timestamp] encountered multiple values"
            if problem is not None:
                raise EsError(
                    400,
                    self.parsing_error,
                    f"[1:{len(raw)}] failed to parse: {problem}",
                    caused_by=_illegal(problem),
                )
        return added

    def _index(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        raw = op.source or b""
        doc = self._parse_source(raw)
        stream, fill = index.data_stream is not None, self.fill_missing_timestamp
        if stream and fill and doc.get("@timestamp") is None:
            now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            doc["@timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        added = self._check(index, doc, doc_id, raw)
        current = index.docs.get(doc_id)
        if current is not None and op.action == "create":
            raise EsError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists "
                f"(current version [{current.version}])",
                **index.error_extra(),
            )
        index.mapping.fields.update(added)
        if current is None:
            stored = self._put(index, doc_id, doc, index.tombstones.pop(doc_id, 0) + 1)
            return _written(op.action, index.name, doc_id, stored, "created", 201)
        stored = self._put(index, doc_id, doc, current.version + 1)
        return _written(op.action, index.name, doc_id, stored, "updated", 200)

    @staticmethod
    def _put(index: Index, doc_id: str, source: dict[str, Any], version: int) -> Doc:
        stored = index.docs[doc_id] = Doc(source, version, index.next_seq_no())
        return stored

    def _update(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        spec = op.update or {}
        current = index.docs.get(doc_id)
        if current is None:
            if isinstance(spec.get("upsert"), dict):
                new = spec["upsert"]
            elif spec.get("doc_as_upsert") and isinstance(spec.get("doc"), dict):
                new = spec["doc"]
            else:
                raise EsError(
                    404,
                    "document_missing_exception",
                    f"[{doc_id}]: document missing",
                    **index.error_extra(),
                )
            index.mapping.fields.update(self._check(index, new, doc_id, json.dumps(new).encode()))
            stored = self._put(index, doc_id, new, index.tombstones.pop(doc_id, 0) + 1)
            return _written("update", index.name, doc_id, stored, "created", 201)
        if "script" in spec:
            raise _illegal("the Elasticsearch stand-in does not run update scripts")
        partial = spec.get("doc")
        if not isinstance(partial, dict):
            raise _illegal("an update needs a [doc] object")
        merged = merge_doc(current.source, partial)
        if spec.get("detect_noop", True) and merged == current.source:
            noop = {"total": 0, "successful": 0, "failed": 0}
            return _written("update", index.name, doc_id, current, "noop", 200, noop)
        raw = json.dumps(merged).encode()
        index.mapping.fields.update(self._check(index, merged, doc_id, raw))
        stored = self._put(index, doc_id, merged, current.version + 1)
        return _written("update", index.name, doc_id, stored, "updated", 200)

    def _delete(self, index: Index, doc_id: str) -> dict[str, Any]:
        current = index.docs.pop(doc_id, None)
        if current is None:
            version = index.tombstones.get(doc_id, 0) + 1
            result, status = "not_found", 404
        else:
            version, result, status = current.version + 1, "deleted", 200
        index.tombstones[doc_id] = version
        gone = Doc({}, version, index.next_seq_no())
        return _written("delete", index.name, doc_id, gone, result, status)

    # -- templates ------------------------------------------------------------------

    def put_template(self, name: str, body: dict[str, Any]) -> None:
        """Store a composable index template, with ES's checks on its shape and priority."""
        for key in body:
            if key not in _TEMPLATE_FIELDS:
                raise EsError(
                    400,
                    "x_content_parse_exception",
                    f"[1:2] [index_template] unknown field [{key}]",
                )
        patterns = body.get("index_patterns")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index patterns are missing;",
            )
        priority = int(body.get("priority") or 0)
        for other, other_body in self.templates.items():
            other_patterns = other_body.get("index_patterns", [])
            if other == name or int(other_body.get("priority") or 0) != priority:
                continue
            if any(_patterns_overlap(p, q) for p in patterns for q in other_patterns):
                raise _illegal(
                    f"index template [{name}] has index patterns {_java_list(patterns)} "
                    f"matching patterns from existing templates [{other}] with patterns "
                    f"({other} => {_java_list(other_patterns)}) that have the same priority "
                    f"[{priority}], multiple index templates may not match during index "
                    "creation, please use a different priority"
                )
        self.templates[name] = {**body, "index_patterns": list(patterns)}

    def delete_template(self, name: str) -> None:
        if name not in self.templates:
            raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
        using = sorted(s.name for s in self.data_streams.values() if s.template == name)
        if using:
            raise _illegal(
                f"unable to remove composable templates [{name}] as they are in use by a data "
                f"streams {_java_list(using)}"
            )
        del self.templates[name]

    # -- reads ----------------------------------------------------------------------

    def documents(self, expression: str = "*") -> list[tuple[str, str, Doc]]:
        """(index, id, doc) for every document the expression reaches, in write order."""
        return self.documents_in(self.resolve(expression))

    def documents_in(self, names: Iterable[str]) -> list[tuple[str, str, Doc]]:
        out = []
        for name in names:
            index = self.indices[name]
            ordered = sorted(index.docs.items(), key=lambda kv: kv[1].seq_no)
            out.extend((name, doc_id, doc) for doc_id, doc in ordered)
        return out


_TEMPLATE_FIELDS = {
    "index_patterns", "template", "composed_of", "priority", "version", "_meta",
    "data_stream", "allow_auto_create", "ignore_missing_component_templates", "deprecated",
}  # fmt: skip


def _java_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _patterns_overlap(a: str, b: str) -> bool:
    """Whether two index patterns can match one name (ES intersects automata; this guesses)."""
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def _written(
    action: str,
    index: str,
    doc_id: str,
    doc: Doc,
    result: str,
    status: int,
    shards: dict[str, int] = SHARDS,
) -> dict[str, Any]:
    return {
        action: {
            "_index": index,
            "_id": doc_id,
            "_version": doc.version,
            "result": result,
            "_shards": dict(shards),
            "_seq_no": doc.seq_no,
            "_primary_term": 1,
            "status": status,
        }
    }


def _failed(action: str, index: str, doc_id: str | None, error: EsError) -> dict[str, Any]:
    return {
        action: {"_index": index, "_id": doc_id, "status": error.status, "error": error.cause()}
    }


def _not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"},
        index=name,
    )


# --------------------------------------------------------------------------------------
# Faults: what to break, decided with one seeded Random so tests are reproducible

_ITEM_ERRORS: dict[str, tuple[int, str]] = {
    "es_rejected_execution_exception": (
        429,
        "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, "
        "max_coordinating_and_primary_bytes=107374182]",
    ),
    "cluster_block_exception": (
        429,
        "index [{index}] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
        "watermark, index has read-only-allow-delete block];",
    ),
    "unavailable_shards_exception": (
        503,
        "[{index}][0] primary shard is not active Timeout: [1m], request: "
        "[BulkShardRequest [[{index}][0]] containing [1] requests]",
    ),
    "mapper_parsing_exception": (400, "failed to parse: injected by the stand-in"),
}
_ITEM_DEFAULT_TYPE = {
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
    400: "mapper_parsing_exception",
}
_REQUEST_ERRORS: dict[int, tuple[str, str]] = {
    429: (
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, "
        "max_coordinating_and_primary_bytes=107374182]",
    ),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    500: ("exception", "internal server error injected by the stand-in"),
    401: ("security_exception", "missing authentication credentials for REST request [{path}]"),
    403: (
        "security_exception",
        "action [indices:data/write/bulk] is unauthorized for user [logship] with effective "
        "roles [viewer], this action is granted by the index privileges [create_doc,write,all]",
    ),
}
PROXY_STATUSES = (502, 504)  # ES never sends these; a proxy in front of it does, as HTML


@dataclass
class Rule:
    """Fire for the next `count` matches (None: no limit), each with `probability`."""

    count: int | None = None
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must not be negative, got {self.count}")

    def fires(self, rng: random.Random) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        if self.count is not None:
            self.count -= 1
        return True


def request_error(status: int, path: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of an injected request-level failure."""
    if status in PROXY_STATUSES:
        title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
        return {"Content-Type": "text/html"}, html.encode()
    if status not in _REQUEST_ERRORS:
        raise ValueError(f"no injectable request failure for HTTP {status}")
    error_type, reason = _REQUEST_ERRORS[status]
    body = EsError(status, error_type, reason.format(path=path)).body()
    headers = {"Content-Type": "application/json", **PRODUCT_HEADER}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8"'
    return headers, json.dumps(body).encode()


class Faults:
    """The active faults. Every random decision draws from `rng`, in request order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.requests: list[tuple[int, str, Rule]] = []  # (status, scope, rule)
        self.items: list[tuple[str, Rule]] = []  # (error type, rule)
        self.drops: list[tuple[bool, Rule]] = []  # (after processing, rule)
        self.latency = 0.0

    def add_request_failure(self, status: int, rule: Rule, scope: str = "bulk") -> None:
        if status not in _REQUEST_ERRORS and status not in PROXY_STATUSES:
            known = sorted([*_REQUEST_ERRORS, *PROXY_STATUSES])
            raise ValueError(f"status must be one of {known}, got {status}")
        if scope not in ("bulk", "all"):
            raise ValueError(f"scope must be 'bulk' or 'all', got {scope!r}")
        self.requests.append((status, scope, rule))

    def add_item_failure(self, status: int, rule: Rule, error_type: str | None = None) -> None:
        error_type = error_type or _ITEM_DEFAULT_TYPE.get(status)
        if error_type not in _ITEM_ERRORS or _ITEM_ERRORS[error_type][0] != status:
            choices = {t: s for t, (s, _) in _ITEM_ERRORS.items()}
            raise ValueError(f"item failures are one of {choices}, got {status} {error_type}")
        self.items.append((error_type, rule))

    def request_failure(self, is_bulk: bool) -> int | None:
        """The status to answer this request with instead of handling it, if any."""
        for status, scope, rule in self.requests:
            if (is_bulk or scope == "all") and rule.fires(self.rng):
                return status
        return None

    def item_failure(self, op: BulkOp, index: str) -> EsError | None:
        for error_type, rule in self.items:
            if rule.fires(self.rng):
                status, reason = _ITEM_ERRORS[error_type]
                return EsError(status, error_type, reason.format(index=index))
        return None

    def drop(self, after_processing: bool) -> bool:
        return any(after == after_processing and rule.fires(self.rng) for after, rule in self.drops)


# --------------------------------------------------------------------------------------
# Response filtering and small parsers the handlers share

_DROP = object()


def filter_path(obj: Any, paths: str) -> Any:
    """ES's `filter_path`: keep only the dotted paths given (`*` and `**` wildcards).

    Arrays do not use up a path segment, so `items.*.error` reaches every bulk item's error.
    """
    patterns = [p.strip().split(".") for p in paths.split(",") if p.strip()]

    def keep(node: Any, pats: list[list[str]]) -> Any:
        if any(not p for p in pats):
            return node
        if isinstance(node, list):
            kept = [k for k in (keep(x, pats) for x in node) if k is not _DROP]
            return kept or _DROP
        if not isinstance(node, dict):
            return _DROP
        out = {}
        for key, value in node.items():
            deeper: list[list[str]] = []
            for p in pats:
                if p[0] == "**":
                    deeper.append(p)
                    if len(p) > 1 and fnmatch.fnmatchcase(key, p[1]):
                        deeper.append(p[2:])
                elif fnmatch.fnmatchcase(key, p[0]):
                    deeper.append(p[1:])
            if deeper and (kept := keep(value, deeper)) is not _DROP:
                out[key] = kept
        return out or _DROP

    result = keep(obj, patterns)
    return {} if result is _DROP else result


def parse_time(value: str) -> float:
    """An ES time value ("30s", "500ms", "1m") in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)", value.strip())
    if match is None:
        raise _illegal(
            f"failed to parse setting [timeout] with value [{value}] as a time value: "
            "unit is missing or unrecognized"
        )
    scale = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(match.group(1)) * scale[match.group(2)]


def _field_value(source: Mapping[str, Any], path: str) -> Any:
    """A dotted path's value in a source, whether stored nested or with dotted keys."""
    if path in source:
        return source[path]
    head, dot, rest = path.partition(".")
    while dot:
        inner = source.get(head)
        if isinstance(inner, dict):
            found = _field_value(inner, rest)
            if found is not None:
                return found
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def query_matches(query: Mapping[str, Any] | None, doc_id: str, source: Mapping[str, Any]) -> bool:
    """The small query subset the stand-in runs: match_all, term, match, ids, exists, bool."""
    if not query:
        return True
    if len(query) != 1:
        raise EsError(
            400, "parsing_exception", "[_na] query malformed, must start with start_object"
        )
    kind, spec = next(iter(query.items()))
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in [str(v) for v in spec.get("values", [])]
    if kind == "exists":
        return _field_value(source, spec["field"]) not in (None, [])
    if kind in ("term", "match"):
        ((name, wanted),) = spec.items()
        if isinstance(wanted, dict):
            wanted = wanted.get("value", wanted.get("query"))
        value = _field_value(source, name)
        values = value if isinstance(value, list) else [value]
        return any(v == wanted or _text(v) == _text(wanted) for v in values if v is not None)
    if kind == "bool":

        def all_of(key: str) -> list[Mapping[str, Any]]:
            clauses = spec.get(key, [])
            return clauses if isinstance(clauses, list) else [clauses]

        required = all_of("must") + all_of("filter")
        should = all_of("should")
        return (
            all(query_matches(q, doc_id, source) for q in required)
            and not any(query_matches(q, doc_id, source) for q in all_of("must_not"))
            and (not should or any(query_matches(q, doc_id, source) for q in should))
        )
    raise EsError(400, "parsing_exception", f"unknown query [{kind}] (not run by the stand-in)")


# --------------------------------------------------------------------------------------
# The server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _dispatch(path: str, methods: Mapping[str, Handler]) -> Handler:
    """One route per path: ES's 405 for a known path with the wrong method."""
    allowed = ", ".join(sorted(methods))

    async def handle(request: web.Request) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        index = request.match_info.get("index", "")
        if path == "/{index}" and index.startswith("_") and index != "_all":
            raise web.HTTPNotFound
        if method not in methods:
            reason = (
                f"Incorrect HTTP method for uri [{request.path_qs}] and method "
                f"[{request.method}], allowed: [{allowed}]"
            )
            return web.json_response({"error": reason, "status": 405}, status=405)
        return await methods[method](request)

    return handle


def _no_handler(request: web.Request) -> web.Response:
    reason = f"no handler found for uri [{request.path_qs}] and method [{request.method}]"
    return web.json_response({"error": reason, "status": 400}, status=400)


def _content_type_refused(request: web.Request) -> web.Response:
    header = request.headers.get("Content-Type")
    reason = (
        "Content-Type header is missing"
        if header is None
        else f"Content-Type header [{header}] is not supported"
    )
    return web.json_response({"error": reason, "status": 406}, status=406)


def _shards(count: int) -> dict[str, int]:
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}


def _sort_clauses(sort: Any) -> list[tuple[str, bool]]:
    """(field, descending) pairs from a search `sort`: "f", {"f": "desc"}, {"f": {"order"}}."""
    if sort is None:
        return []
    out = []
    for clause in sort if isinstance(sort, list) else [sort]:
        if isinstance(clause, str):
            out.append((clause, False))
        else:
            for name, order in clause.items():
                order = order.get("order", "asc") if isinstance(order, dict) else order
                out.append((name, order == "desc"))
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, _text(value))


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it (control requests under /_standin are not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_encoding: str | None
    body_bytes: int = 0  # as received on the wire
    decoded_bytes: int = 0  # after Content-Encoding
    items: int | None = None  # bulk actions parsed (None: not a bulk, or it did not parse)
    status: int | None = None  # the answer; None when the connection was dropped

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


_RECORD = web.RequestKey("record", RecordedRequest)
_COMPAT_KEY = web.RequestKey[int | None]("compat")  # the compatible-with version asked for
_BODY = web.RequestKey("body", bytes)  # decoded
_LUCENE = {8: "9.11.1", 9: "10.1.0"}
_WIRE = {8: ("7.17.0", "7.0.0"), 9: ("8.18.0", "8.0.0")}
_HEALTH_RANK = {"green": 0, "yellow": 1, "red": 2}


class StandIn:
    """A fake Elasticsearch on a real socket. Start it, point a client at `.url`, inspect.

        async with StandIn(seed=1) as es:        # listens on 127.0.0.1, a free port
            ...                                  # AsyncElasticsearch(es.url)
            es.fail_items(429, probability=0.5)  # faults, also at POST /_standin/<name>
            assert es.count("logs-*") == 10

    One seeded `random.Random` drives auto ids and every probabilistic fault.
    """

    def __init__(
        self,
        version: str = DEFAULT_VERSION,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        cluster_name: str = "standin",
        health: str = "green",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        fill_missing_timestamp: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        major = version_tuple(version)[0]
        if major not in (8, 9):
            raise ValueError(f"the stand-in speaks Elasticsearch 8 and 9, not {version}")
        self.version, self.major = version, major
        self.rng = rng if rng is not None else random.Random(seed)  # noqa: S311 - not secrets
        self.store = Store(
            version=version,
            rng=self.rng,
            clock=clock,
            fill_missing_timestamp=fill_missing_timestamp,
        )
        self.faults = Faults(self.rng)
        self.requests: list[RecordedRequest] = []
        self.cluster_name = cluster_name
        self.cluster_uuid = self.store.new_uuid()
        self._max_body_default = max_body_bytes
        self.max_body_bytes = max_body_bytes
        self._health, self._health_default = "green", health
        self._health_changed = asyncio.Event()
        self.set_health(health)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host, self._port = "127.0.0.1", 0
        self._revive: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # wakes latency and health waits for a prompt stop

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> StandIn:
        """Bind and serve; port 0 picks a free one (see `.port`, `.url`)."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        # auto_decompress off: the stand-in decodes gzip itself, to log wire sizes and cap it
        # A client that gives up does not cancel its request, as with ES: a timed-out bulk is
        # still applied (handler_cancellation stays off).
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, auto_decompress=False, shutdown_timeout=5
        )
        await runner.setup()
        self._runner, self._host = runner, host
        self._stopping = asyncio.Event()
        try:
            await self._listen(port)
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Close the listener and every connection; safe to call twice."""
        self._stopping.set()
        self._health_changed.set()
        revive, self._revive = self._revive, None
        if revive is not None:
            revive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revive
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StandIn:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self._host, port, reuse_address=True)
        await site.start()
        self._site, self._port = site, site.port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = wildcard.get(self._host, self._host)
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def listening(self) -> bool:
        return self._site is not None

    # -- inspection -----------------------------------------------------------------

    def docs(self, index_pattern: str = "*") -> list[dict[str, Any]]:
        """Stored sources with `_index` and `_id` added, in write order per index."""
        return [
            {**doc.source, "_index": index, "_id": doc_id}
            for index, doc_id, doc in self.store.documents(index_pattern)
        ]

    def count(self, index_pattern: str = "*") -> int:
        return len(self.store.documents(index_pattern))

    def bulk_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/_bulk")]

    def clear(self) -> None:
        """Forget documents, indices, data streams, user templates and the request log."""
        self.store.clear()
        self.requests.clear()

    def set_health(self, status: str) -> None:
        if status not in _HEALTH_RANK:
            raise ValueError(f"health must be green, yellow or red, not {status!r}")
        self._health = status
        self._health_changed.set()
        self._health_changed = asyncio.Event()

    # -- faults ---------------------------------------------------------------------

    async def down(self, seconds: float | None = None) -> None:
        """Refuse connections: stop listening and cut open connections.

        After `seconds` it listens again on the same port; None waits for `up()`.
        """
        await self._stop_listening()
        self._cut_connections()
        self._schedule_up(seconds)

    async def _stop_listening(self) -> None:
        if self._runner is None:
            raise RuntimeError("the stand-in is not started")
        await self._cancel_revive()
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()

    def _cut_connections(self) -> None:
        assert self._runner is not None and self._runner.server is not None
        for connection in self._runner.server.connections:
            connection.force_close()

    def _schedule_up(self, seconds: float | None) -> None:
        if seconds is not None:
            self._revive = asyncio.create_task(self._up_after(seconds))

    async def up(self) -> None:
        """Listen again (on the same port) now."""
        await self._cancel_revive()
        if self._site is None and self._runner is not None:
            await self._listen(self._port)

    async def _up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._revive = None
        await self._listen(self._port)

    async def _cancel_revive(self) -> None:
        revive, self._revive = self._revive, None
        if revive is not None and revive is not asyncio.current_task():
            revive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await revive

    def fail_requests(
        self,
        status: int,
        *,
        count: int | None = None,
        probability: float = 1.0,
        scope: str = "bulk",
    ) -> None:
        """Answer whole requests with `status` (429, 503, 500, 401, 403; 502/504 as a proxy).

        `scope="bulk"` hits only `_bulk`; `"all"` hits every ES endpoint (GET / too).
        """
        self.faults.add_request_failure(status, Rule(count, probability), scope)

    def fail_items(
        self,
        status: int,
        *,
        probability: float = 1.0,
        count: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """Fail create/index items inside a 200 bulk response (429, 503 or 400).

        `error_type` picks `cluster_block_exception` (flood-stage watermark) for 429.
        """
        self.faults.add_item_failure(status, Rule(count, probability), error_type)

    def latency(self, seconds: float) -> None:
        """Wait this long before answering every ES request."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        self.faults.latency = seconds

    def drop_connections(
        self, *, count: int | None = None, probability: float = 1.0, after_processing: bool = False
    ) -> None:
        """Close the socket without answering; `after_processing` first applies the request."""
        self.faults.drops.append((after_processing, Rule(count, probability)))

    def reset_faults(self) -> None:
        """No faults, the configured body limit and health. (A `down()` lasts until `up()`.)"""
        self.faults.reset()
        self.max_body_bytes = self._max_body_default
        self.set_health(self._health_default)

    # -- HTTP plumbing --------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, dict[str, Handler]]] = [
            ("/", {"GET": self._info}),
            ("/_bulk", {"POST": self._bulk, "PUT": self._bulk}),
            ("/_cluster/health", {"GET": self._cluster_health}),
            ("/_index_template", {"GET": self._get_template}),
            (
                "/_index_template/{name}",
                {
                    "GET": self._get_template,
                    "PUT": self._put_template,
                    "POST": self._put_template,
                    "DELETE": self._delete_template,
                },
            ),
            ("/_data_stream", {"GET": self._get_data_stream}),
            ("/_data_stream/{name}", {"GET": self._get_data_stream}),
            ("/_count", {"GET": self._count, "POST": self._count}),
            ("/_search", {"GET": self._search, "POST": self._search}),
            ("/{index}/_bulk", {"POST": self._bulk, "PUT": self._bulk}),
            ("/{index}/_count", {"GET": self._count, "POST": self._count}),
            ("/{index}/_search", {"GET": self._search, "POST": self._search}),
            ("/{index}/_mapping", {"GET": self._get_mapping}),
            ("/{index}", {"GET": self._get_index}),
        ]
        app.router.add_route("*", "/_standin/{op}", self._control)
        for path, methods in routes:
            app.router.add_route("*", path, _dispatch(path, methods))

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_standin/"):
            return await handler(request)
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            request.headers.get("Content-Encoding"),
        )
        self.requests.append(record)
        request[_RECORD] = record
        try:
            body = await self._read_body(request, record)
        except BodyTooLarge:
            return self._finish(record, web.Response(status=413))
        except EsError as e:
            return self._finish(record, self._error(request, e))
        if self.faults.drop(after_processing=False):
            return self._drop(request, record)
        if self.faults.latency:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.latency)
        try:
            request[_COMPAT_KEY] = check_media_types(
                request.headers.get("Accept"),
                request.headers.get("Content-Type"),
                bool(body),
                self.major,
            )
            if body and not body_type_supported(request.headers.get("Content-Type")):
                return self._finish(record, _content_type_refused(request))
            failure = self.faults.request_failure(request.path.endswith("/_bulk"))
            if failure is not None:
                headers, payload = request_error(failure, request.path)
                return self._finish(
                    record, web.Response(status=failure, body=payload, headers=headers)
                )
            request[_BODY] = body
            response = await handler(request)
        except EsError as e:
            response = self._error(request, e)
        except web.HTTPNotFound:
            response = _no_handler(request)
        if self.faults.drop(after_processing=True):
            return self._drop(request, record)
        return self._finish(record, response)

    async def _read_body(self, request: web.Request, record: RecordedRequest) -> bytes:
        """The decoded body; raises BodyTooLarge (after draining it) past max_body_bytes."""
        chunks, size, limit = [], 0, self.max_body_bytes
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
        record.body_bytes = size
        if size > limit:
            raise BodyTooLarge
        body = decode_body(b"".join(chunks), request.headers.get("Content-Encoding"), limit)
        record.decoded_bytes = len(body)
        return body

    def _finish(self, record: RecordedRequest, response: web.Response) -> web.Response:
        if response.status not in PROXY_STATUSES and response.status != 413:
            response.headers.update(PRODUCT_HEADER)
        record.status = response.status
        return response

    def _drop(self, request: web.Request, record: RecordedRequest) -> web.Response:
        record.status = None
        if request.protocol is not None:
            request.protocol.force_close()  # the response below is never written
        return web.Response(status=500)

    def _reply(self, request: web.Request, obj: Any, status: int = 200) -> web.Response:
        """A JSON answer in the media type the client asked for; `filter_path` applied."""
        if "filter_path" in request.query and isinstance(obj, dict):
            obj = filter_path(obj, request.query["filter_path"])
        compat = request.get(_COMPAT_KEY)
        content_type = (
            f"application/vnd.elasticsearch+json;compatible-with={compat}"
            if compat
            else "application/json"
        )
        body = json.dumps(obj).encode()
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    def _error(self, request: web.Request, error: EsError) -> web.Response:
        return self._reply(request, error.body(), error.status)

    def _json_body(self, request: web.Request) -> Any:
        body = request.get(_BODY) or b""
        return loads_strict(body) if body.strip() else None

    # -- ES endpoints ---------------------------------------------------------------

    async def _info(self, request: web.Request) -> web.Response:
        wire, index_compat = _WIRE.get(self.major, _WIRE[8])
        return self._reply(
            request,
            {
                "name": "standin-node",
                "cluster_name": self.cluster_name,
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": self.version,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "0" * 40,
                    "build_date": "2024-08-05T10:05:34.233336849Z",
                    "build_snapshot": False,
                    "lucene_version": _LUCENE.get(self.major, _LUCENE[8]),
                    "minimum_wire_compatibility_version": wire,
                    "minimum_index_compatibility_version": index_compat,
                },
                "tagline": "You Know, for Search",
            },
        )

    async def _bulk(self, request: web.Request) -> web.Response:
        ops = parse_bulk(request[_BODY], request.match_info.get("index"))
        request[_RECORD].items = len(ops)
        return self._reply(request, self.store.bulk(ops, self.faults.item_failure))

    async def _cluster_health(self, request: web.Request) -> web.Response:
        wanted = request.query.get("wait_for_status")
        timed_out = False
        if wanted is not None:
            if wanted not in _HEALTH_RANK:
                raise _illegal(f"unknown cluster health status [{wanted}]")
            deadline = time.monotonic() + parse_time(request.query.get("timeout", "30s"))
            while _HEALTH_RANK[self._health] > _HEALTH_RANK[wanted]:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    timed_out = True
                    break
                with contextlib.suppress(TimeoutError):  # stop() sets it too
                    await asyncio.wait_for(self._health_changed.wait(), remaining)
        shards = len(self.store.indices)
        unassigned = {"green": 0, "yellow": shards, "red": 2 * shards}[self._health]
        body = {
            "cluster_name": self.cluster_name,
            "status": self._health,
            "timed_out": timed_out,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": shards if self._health != "red" else 0,
            "active_shards": shards if self._health != "red" else 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "unassigned_primary_shards": shards if self._health == "red" else 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0 if self._health == "green" else 50.0,
        }
        return self._reply(request, body, 408 if timed_out else 200)

    async def _put_template(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise EsError(400, "parse_exception", "request body is required")
        if request.query.get("create") == "true" and name in self.store.templates:
            raise _illegal(f"index template [{name}] already exists")
        self.store.put_template(name, body)
        return self._reply(request, {"acknowledged": True})

    async def _get_template(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "*")
        found = [
            {"name": tname, "index_template": body}
            for tname, body in self.store.templates.items()
            if any(fnmatch.fnmatchcase(tname, n) for n in name.split(","))
        ]
        if not found and "*" not in name:
            raise EsError(
                404, "resource_not_found_exception", f"index template matching [{name}] not found"
            )
        return self._reply(request, {"index_templates": found})

    async def _delete_template(self, request: web.Request) -> web.Response:
        self.store.delete_template(request.match_info["name"])
        return self._reply(request, {"acknowledged": True})

    async def _get_data_stream(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "*")
        streams = [
            s
            for s in self.store.data_streams.values()
            if any(fnmatch.fnmatchcase(s.name, n) for n in name.split(","))
        ]
        if not streams and "*" not in name:
            raise _not_found(name)
        return self._reply(
            request,
            {
                "data_streams": [
                    {
                        "name": s.name,
                        "timestamp_field": {"name": "@timestamp"},
                        "indices": [
                            {"index_name": i, "index_uuid": self.store.indices[i].uuid}
                            for i in s.indices
                        ],
                        "generation": len(s.indices),
                        "status": self._health.upper(),
                        "template": s.template,
                        "hidden": False,
                        "system": False,
                    }
                    for s in streams
                ]
            },
        )

    def _hits(self, request: web.Request) -> tuple[list[tuple[str, str, Doc]], int, dict[str, Any]]:
        """Documents matching the request's query, the shard count, and the search body."""
        body = self._json_body(request) or {}
        if not isinstance(body, dict):
            raise EsError(400, "parsing_exception", "request body must be an object")
        indices = self.store.resolve(request.match_info.get("index", "_all"))
        query = body.get("query")
        matched = [
            (index, doc_id, doc)
            for index, doc_id, doc in self.store.documents_in(indices)
            if query_matches(query, doc_id, doc.source)
        ]
        return matched, len(indices), body

    async def _count(self, request: web.Request) -> web.Response:
        matched, shards, _ = self._hits(request)
        return self._reply(request, {"count": len(matched), "_shards": _shards(shards)})

    async def _search(self, request: web.Request) -> web.Response:
        matched, shards, body = self._hits(request)
        size = int(request.query.get("size", body.get("size", 10)))
        start = int(request.query.get("from", body.get("from", 0)))
        for clause in reversed(_sort_clauses(body.get("sort"))):
            name, descending = clause
            present = [m for m in matched if _field_value(m[2].source, name) is not None]
            missing = [m for m in matched if _field_value(m[2].source, name) is None]
            present.sort(
                key=lambda m: _sort_key(_field_value(m[2].source, name)), reverse=descending
            )
            matched = present + missing
        hits = [
            {"_index": index, "_id": doc_id, "_score": 1.0, "_source": doc.source}
            for index, doc_id, doc in matched[start : start + size]
        ]
        return self._reply(
            request,
            {
                "took": 0,
                "timed_out": False,
                "_shards": _shards(shards),
                "hits": {
                    "total": {"value": len(matched), "relation": "eq"},
                    "max_score": 1.0 if hits else None,
                    "hits": hits,
                },
            },
        )

    async def _get_index(self, request: web.Request) -> web.Response:
        out = {}
        for name in self.store.resolve(request.match_info["index"]):
            index = self.store.indices[name]
            out[name] = {
                "aliases": {},
                "mappings": {"properties": index.mapping.properties()},
                "settings": {
                    "index": {
                        "number_of_shards": "1",
                        "number_of_replicas": "1",
                        "uuid": index.uuid,
                        "provided_name": name,
                        "hidden": str(name.startswith(".")).lower(),
                    }
                },
            }
            if index.data_stream is not None:
                out[name]["data_stream"] = index.data_stream
        return self._reply(request, out)

    async def _get_mapping(self, request: web.Request) -> web.Response:
        out = {
            name: {"mappings": {"properties": self.store.indices[name].mapping.properties()}}
            for name in self.store.resolve(request.match_info["index"])
        }
        return self._reply(request, out)

    # -- control API for out-of-process users ---------------------------------------

    async def _control(self, request: web.Request) -> web.StreamResponse:
        """`POST /_standin/<fault>` with JSON arguments; `GET` docs, count and requests."""
        op = request.match_info["op"]
        try:
            raw = await request.read()
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            if request.method == "GET":
                index = request.query.get("index", "*")
                views: dict[str, Callable[[], object]] = {
                    "docs": lambda: {"docs": self.docs(index)},
                    "count": lambda: {"count": self.count(index)},
                    "requests": lambda: {"requests": [r.to_json() for r in self.requests]},
                }
                if op not in views:
                    raise KeyError(op)
                return web.json_response(views[op]())
            if request.method != "POST":
                return web.json_response({"error": "use GET or POST"}, status=405)
            if op == "down":
                seconds = args.pop("seconds", None)
                if args or not (seconds is None or isinstance(seconds, int | float)):
                    raise ValueError("down takes {'seconds': number or null}")
                # refuse new connections before acknowledging, then cut this one too
                await self._stop_listening()
                response = web.json_response({"acknowledged": True})
                await response.prepare(request)
                await response.write_eof()
                self._cut_connections()
                self._schedule_up(seconds)
                return response
            if op == "up":
                await self.up(**args)
                return web.json_response({"acknowledged": True})
            setters: dict[str, Callable[..., None]] = {
                "fail_requests": self.fail_requests,
                "fail_items": self.fail_items,
                "latency": self.latency,
                "drop_connections": self.drop_connections,
                "max_body_bytes": self._set_max_body_bytes,
                "health": self.set_health,
                "reset_faults": self.reset_faults,
                "clear": self.clear,
            }
            if op not in setters:
                raise KeyError(op)
            setters[op](**args)
        except KeyError as e:
            return web.json_response({"error": f"unknown stand-in operation {e}"}, status=404)
        except (TypeError, ValueError) as e:
            return web.json_response({"error": f"{op}: {e}"}, status=400)
        return web.json_response({"acknowledged": True})

    def _set_max_body_bytes(self, bytes: int) -> None:
        if bytes < 0:
            raise ValueError("bytes must not be negative")
        self.max_body_bytes = bytes


# --------------------------------------------------------------------------------------
# The process form: python -m agents.testing.elasticsearch --port 9200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agents.testing.elasticsearch",
        description="Serve the Elasticsearch stand-in until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--version", default=DEFAULT_VERSION, help="the ES version to claim")
    parser.add_argument("--seed", type=int, default=None, help="seed ids and random faults")
    parser.add_argument("--health", default="green", choices=sorted(_HEALTH_RANK))
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--fill-missing-timestamp",
        action="store_true",
        help="set a missing @timestamp in data streams, like ES's logs@default-pipeline",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; the handlers only set a flag, shutdown happens here."""
    from agents._log import Logger

    log = Logger("es-standin")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    standin = StandIn(
        args.version,
        seed=args.seed,
        health=args.health,
        max_body_bytes=args.max_body_bytes,
        fill_missing_timestamp=args.fill_missing_timestamp,
    )
    try:
        await standin.start(args.host, args.port)
    except OSError as e:
        log.error("cannot listen", host=args.host, port=args.port, error=str(e))
        return 1
    log.info(
        "elasticsearch stand-in listening", url=standin.url, host=args.host, version=args.version
    )
    try:
        await stop.wait()
    finally:
        await standin.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        StandIn(args.version)  # validate the version before binding anything
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
