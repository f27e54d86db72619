"""JSON as ES reads it: duplicate keys and NaN are errors, and values are named and
printed the way ES's parser does in its messages.
"""

from __future__ import annotations

import json
from typing import Any

from agents.testing.elasticsearch.errors import EsError


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
