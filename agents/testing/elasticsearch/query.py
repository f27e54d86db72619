"""What the read handlers share: `filter_path` response filtering, ES time values, and the
small query language `_count` and `_search` run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.strict_json import _text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agents.testing.elasticsearch.mapping import IndexMapping

_DROP = object()
# The standard analyzer, approximated: lower case, words of letters and digits joined by
# "." or "'" between them (UAX#29 keeps "foo.bar", "1.5" and "don't" whole, splits on "-",
# "/", spaces and other punctuation). No stop words, as in the standard analyzer's default.
_WORD = re.compile(r"\w+(?:[.'\u2019]\w+)*")
_ANALYSED = {"text", "match_only_text"}


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


def analyse(value: Any) -> list[str]:
    """The tokens the (approximated) standard analyzer makes of a value."""
    return [t.lower() for t in _WORD.findall(_text(value))]


def _values(
    source: Mapping[str, Any], name: str, mapping: IndexMapping | None
) -> tuple[list[Any], str]:
    """A field's values and its mapped type; `x.keyword` of a dynamic text field `x` is
    `x`'s values, unanalysed, as ES's default `keyword` sub-field holds them."""
    types = mapping.fields if mapping is not None else {}
    es_type = types.get(name, "")
    value = _field_value(source, name)
    if value is None and name.endswith(".keyword") and types.get(name[:-8]) == "text":
        value, es_type = _field_value(source, name[:-8]), "keyword"
    values = value if isinstance(value, list) else [value]
    return [v for v in values if v is not None], es_type


def _all_fields(source: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in source.items():
        path = f"{prefix}.{key}" if prefix else key
        out.extend(_all_fields(value, path) if isinstance(value, dict) else [path])
    return out


def _text_match(kind: str, spec: Mapping[str, Any], source: Mapping[str, Any],
                mapping: IndexMapping | None) -> bool:  # fmt: skip
    """term, match and match_phrase on one field (or every field for `*`)."""
    ((name, wanted),) = spec.items()
    operator = "or"
    if isinstance(wanted, dict):
        operator = str(wanted.get("operator", "or")).lower()
        wanted = wanted.get("value", wanted.get("query"))
    names = _all_fields(source) if name == "*" else [name]
    for field_name in names:
        values, es_type = _values(source, field_name, mapping)
        analysed = es_type in _ANALYSED
        if any(_one_match(kind, wanted, operator, v, analysed) for v in values):
            return True
    return False


def _one_match(kind: str, wanted: Any, operator: str, value: Any, analysed: bool) -> bool:
    if not analysed:  # keyword, numbers, dates, booleans: the whole value
        return value == wanted or _text(value) == _text(wanted)
    tokens = analyse(value)
    if kind == "term":  # a term is looked up among the tokens as it is, not analysed
        return _text(wanted) in tokens
    wanted_tokens = analyse(wanted)
    if kind == "match_phrase":
        n = len(wanted_tokens)
        return n > 0 and any(tokens[i : i + n] == wanted_tokens for i in range(len(tokens)))
    every = operator == "and"
    return bool(wanted_tokens) and (all if every else any)(t in tokens for t in wanted_tokens)


def query_matches(
    query: Mapping[str, Any] | None,
    doc_id: str,
    source: Mapping[str, Any],
    mapping: IndexMapping | None = None,
) -> bool:
    """The query subset the stand-in runs: match_all, ids, exists, term, match (analysed
    text fields tokenised as above, keyword and other fields whole), match_phrase, bool."""
    if not query:
        return True
    if len(query) != 1:
        raise EsError(
            400, "parsing_exception", "[_na] query malformed, must start with start_object"
        )
    kind, spec = next(iter(query.items()))
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "ids":
        return doc_id in [str(v) for v in spec.get("values", [])]
    if kind == "exists":
        return bool(_values(source, spec["field"], mapping)[0])
    if kind in ("term", "match", "match_phrase"):
        return _text_match(kind, spec, source, mapping)
    if kind == "bool":

        def all_of(key: str) -> list[Mapping[str, Any]]:
            clauses = spec.get(key, [])
            return clauses if isinstance(clauses, list) else [clauses]

        def hit(q: Mapping[str, Any]) -> bool:
            return query_matches(q, doc_id, source, mapping)

        required = all_of("must") + all_of("filter")
        should = all_of("should")
        return (
            all(hit(q) for q in required)
            and not any(hit(q) for q in all_of("must_not"))
            and (not should or (bool(required) and "minimum_should_match" not in spec)
                 or any(hit(q) for q in should))
        )  # fmt: skip
    raise EsError(400, "parsing_exception", f"unknown query [{kind}] (not run by the stand-in)")


_QS_TOKEN = re.compile(r'([+-]?)(?:([\w.@*-]+):)?("[^"]*"|\S+)')


def query_string(q: str, default_field: str | None = None, operator: str = "OR") -> dict[str, Any]:
    """The `q=` of a URI search as a bool query: words and "phrases", `field:value`,
    AND/OR/NOT and +/- prefixes, `*` for everything. Words not given a field search every
    field (`index.query.default_field: *`), as ES does. Not run: ranges, fuzzy and regex
    terms, wildcards inside words, grouping with parentheses (a 400)."""
    if q.strip() in ("*", "*:*"):
        return {"match_all": {}}
    if any(c in q for c in "()[]{}~/^"):
        raise EsError(400, "query_shard_exception",
                      f"Failed to parse query [{q}] (the stand-in runs words, phrases, "
                      "field:value, AND/OR/NOT and +/-)")  # fmt: skip
    must: list[dict[str, Any]] = []
    should: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    default_and = operator.upper() == "AND"
    pending_and = pending_not = False
    clauses: list[tuple[str, dict[str, Any]]] = []
    for sign, name, value in _QS_TOKEN.findall(q):
        if not name and not sign and value in ("AND", "&&"):
            pending_and = True
            continue
        if not name and not sign and value in ("OR", "||"):
            continue
        if not name and not sign and value in ("NOT", "!"):
            pending_not = True
            continue
        field_name = name or default_field or "*"
        if value.startswith('"'):
            clause = {"match_phrase": {field_name: value.strip('"')}}
        elif value == "*":
            clause = {"exists": {"field": field_name}}
        else:
            clause = {"match": {field_name: value}}
        role = "-" if sign == "-" or pending_not else "+" if sign == "+" else ""
        if pending_and and clauses and clauses[-1][0] == "":
            clauses[-1] = ("+", clauses[-1][1])
        if pending_and and not role:
            role = "+"
        clauses.append((role or ("+" if default_and else ""), clause))
        pending_and = pending_not = False
    for role, clause in clauses:
        {"+": must, "-": must_not, "": should}[role].append(clause)
    if not must and not should:
        return {"bool": {"must": [{"match_all": {}}], "must_not": must_not}}
    return {"bool": {"must": must, "should": should, "must_not": must_not}}


def source_filter(
    param: str | None, includes: str | None, excludes: str | None, body: Any
) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """What `_source` filtering keeps of each hit's source: `_source=false` none, a list
    of fields (wildcards) or includes/excludes, from the URL or the search body."""
    inc: list[str] = []
    exc: list[str] = []
    if param is not None:
        if param in ("false", "true", ""):
            body = param != "false"
        else:
            inc = param.split(",")
    if includes:
        inc = includes.split(",")
    if excludes:
        exc = excludes.split(",")
    if body is False:
        return lambda _source: None
    if isinstance(body, str):
        inc = [body]
    elif isinstance(body, list):
        inc = [str(x) for x in body]
    elif isinstance(body, dict):
        inc = _as_list(body.get("includes", body.get("include", [])))
        exc = _as_list(body.get("excludes", body.get("exclude", [])))
    if not inc and not exc:
        return lambda source: source

    def keep(source: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in source.items():
            path = f"{prefix}.{key}" if prefix else key
            if any(fnmatch.fnmatchcase(path, p) for p in exc):
                continue
            whole = not inc or any(fnmatch.fnmatchcase(path, p) for p in inc)
            if isinstance(value, dict) and not (whole and not exc):
                inner = keep(value, path) if not whole else keep_all_but(value, path)
                if inner or whole:
                    out[key] = inner
            elif whole:
                out[key] = value
        return out

    def keep_all_but(source: dict[str, Any], prefix: str) -> dict[str, Any]:
        saved = list(inc)
        inc.clear()
        try:
            return keep(source, prefix)
        finally:
            inc.extend(saved)

    return keep


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]
