"""Dynamic mapping: the first value of a field fixes its type, and ES's coercions decide
which later values conflict with it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.strict_json import _text

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
