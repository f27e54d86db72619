"""What one bulk item does to the concrete index it targets (index, create, update, delete),
and the item ES answers for it. The `Store` finds the index; these rules only write to it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from agents.testing.elasticsearch.bulk import BulkOp
from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.mapping import check_document
from agents.testing.elasticsearch.model import Doc, Index
from agents.testing.elasticsearch.strict_json import _token, loads_strict

SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, one unassigned replica


def write(
    op: BulkOp,
    index: Index,
    doc_id: str,
    *,
    parsing_error: str,
    fill_timestamp: Callable[[], float] | None,
) -> dict[str, Any]:
    """Apply `op` to `index`; its response item, or EsError for the item's failure.

    `parsing_error` is the type this version gives a bad document; `fill_timestamp` is the
    clock that dates a data stream document without `@timestamp` (None: it is refused).
    """
    if op.action == "delete":
        return _delete(index, doc_id)
    if op.action == "update":
        return _update(op, index, doc_id, parsing_error)
    return _index(op, index, doc_id, parsing_error, fill_timestamp)


def failed_item(action: str, index: str, doc_id: str | None, error: EsError) -> dict[str, Any]:
    return {
        action: {"_index": index, "_id": doc_id, "status": error.status, "error": error.cause()}
    }


def merge_doc(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """The update API's partial-document merge: objects merge recursively, the rest replaces."""
    merged = dict(base)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_doc(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_source(raw: bytes, parsing_error: str) -> dict[str, Any]:
    if not raw.strip():
        raise EsError(400, parsing_error, "failed to parse, document is empty")
    try:
        doc = loads_strict(raw)
    except EsError as e:
        where, _, detail = e.reason.partition("] ")
        reason = f"{where}] failed to parse: {detail}"
        raise EsError(400, parsing_error, reason, caused_by=e) from None
    if not isinstance(doc, dict):
        raise EsError(
            400,
            parsing_error,
            f"[1:1] failed to parse: expected START_OBJECT but found [{_token(doc)}]",
        )
    return doc


def _check(
    index: Index, doc: dict[str, Any], doc_id: str, raw: bytes, parsing_error: str
) -> dict[str, str]:
    try:
        added = check_document(index.mapping, doc, doc_id, raw)
    except EsError as e:
        if e.type == "document_parsing_exception":
            e.type = parsing_error
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
                parsing_error,
                f"[1:{len(raw)}] failed to parse: {problem}",
                caused_by=_illegal(problem),
            )
    return added


def _index(
    op: BulkOp,
    index: Index,
    doc_id: str,
    parsing_error: str,
    fill_timestamp: Callable[[], float] | None,
) -> dict[str, Any]:
    raw = op.source or b""
    doc = _parse_source(raw, parsing_error)
    stream = index.data_stream is not None
    if stream and fill_timestamp is not None and doc.get("@timestamp") is None:
        now = dt.datetime.fromtimestamp(fill_timestamp(), dt.UTC)
        doc["@timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    added = _check(index, doc, doc_id, raw, parsing_error)
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
        stored = _put(index, doc_id, doc, index.tombstones.pop(doc_id, 0) + 1)
        return _written(op.action, index.name, doc_id, stored, "created", 201)
    stored = _put(index, doc_id, doc, current.version + 1)
    return _written(op.action, index.name, doc_id, stored, "updated", 200)


def _update(op: BulkOp, index: Index, doc_id: str, parsing_error: str) -> dict[str, Any]:
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
        raw = json.dumps(new).encode()
        index.mapping.fields.update(_check(index, new, doc_id, raw, parsing_error))
        stored = _put(index, doc_id, new, index.tombstones.pop(doc_id, 0) + 1)
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
    index.mapping.fields.update(_check(index, merged, doc_id, raw, parsing_error))
    stored = _put(index, doc_id, merged, current.version + 1)
    return _written("update", index.name, doc_id, stored, "updated", 200)


def _delete(index: Index, doc_id: str) -> dict[str, Any]:
    current = index.docs.pop(doc_id, None)
    if current is None:
        version = index.tombstones.get(doc_id, 0) + 1
        result, status = "not_found", 404
    else:
        version, result, status = current.version + 1, "deleted", 200
    index.tombstones[doc_id] = version
    gone = Doc({}, version, index.next_seq_no())
    return _written("delete", index.name, doc_id, gone, result, status)


def _put(index: Index, doc_id: str, source: dict[str, Any], version: int) -> Doc:
    stored = index.docs[doc_id] = Doc(source, version, index.next_seq_no())
    return stored


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
