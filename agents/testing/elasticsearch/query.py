"""What the read handlers share: `filter_path` response filtering, ES time values, and the
small query language `_count` and `_search` run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.strict_json import _text

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
