"""The store: indices, data streams, templates, and what each bulk item does to them.
Pure and synchronous, so it is tested without a socket.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.testing.elasticsearch.bulk import BulkOp
from agents.testing.elasticsearch.defaults import DEFAULT_VERSION
from agents.testing.elasticsearch.errors import EsError, _illegal, version_tuple
from agents.testing.elasticsearch.mapping import IndexMapping, check_document
from agents.testing.elasticsearch.strict_json import _token, loads_strict

SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, one unassigned replica
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
