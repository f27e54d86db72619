"""The store: the cluster's indices, data streams and templates, where each bulk item lands,
and which indices a read reaches. Pure and synchronous, so it is tested without a socket;
`model` holds the data, `templates` and `items` the rules this applies.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from agents.testing.elasticsearch.bulk import BulkOp
from agents.testing.elasticsearch.defaults import DEFAULT_VERSION
from agents.testing.elasticsearch.errors import EsError, _illegal, version_tuple
from agents.testing.elasticsearch.items import failed_item, write
from agents.testing.elasticsearch.model import (
    DataStream,
    Doc,
    Index,
    _not_found,
    index_name_problem,
)
from agents.testing.elasticsearch.templates import (
    BUILTIN_LOGS_TEMPLATE,
    check_removable,
    checked_template,
    mapping_from_template,
    template_for,
)

ItemFault = Callable[[BulkOp, str], EsError | None]  # (op, concrete index) -> injected error


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
        return template_for(self.templates, name)

    def _create_index(self, name: str, data_stream: str | None = None) -> Index:
        found = self.template_for(data_stream or name)
        template = found[1] if found else None
        mapping = mapping_from_template(template)
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
            return failed_item(op.action, op.index or "", op.id, e)
        if op.id == "" and op.action in ("create", "index"):  # as ES validates the item
            empty = EsError(400, "illegal_argument_exception",
                            "if _id is specified it must not be empty")  # fmt: skip
            return failed_item(op.action, index.name, "", empty)
        doc_id = op.id if op.id is not None else self.auto_id()
        if item_fault is not None and op.action in ("create", "index"):
            injected = item_fault(op, index.name)
            if injected is not None:
                return failed_item(op.action, index.name, doc_id, injected)
        fill = self.clock if self.fill_missing_timestamp else None
        try:
            return write(op, index, doc_id, parsing_error=self.parsing_error, fill_timestamp=fill)
        except EsError as e:
            return failed_item(op.action, index.name, doc_id, e)

    # -- templates ------------------------------------------------------------------

    def put_template(self, name: str, body: dict[str, Any]) -> None:
        """Store a composable index template, with ES's checks on its shape and priority."""
        self.templates[name] = checked_template(name, body, self.templates)

    def delete_template(self, name: str) -> None:
        check_removable(name, self.templates, self.data_streams.values())
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
