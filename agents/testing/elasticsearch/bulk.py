"""NDJSON bulk bodies as ES's BulkRequestParser reads them, and Content-Encoding decoding
under the body limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.strict_json import _text, _token, loads_strict

ACTIONS = ("index", "create", "update", "delete")
_ACTION_PARAMS = {
    "_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no",
    "if_primary_term", "retry_on_conflict", "pipeline", "_source", "require_alias",
    "require_data_stream", "dynamic_templates", "list_executed_pipelines",
}  # fmt: skip
_UPDATE_FIELDS = {
    "doc", "upsert", "doc_as_upsert", "script", "scripted_upsert", "detect_noop", "_source",
}  # fmt: skip


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
