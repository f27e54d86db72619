"""The store: the cluster's indices, data streams and templates, where each bulk item lands,
and which indices a read reaches. Pure and synchronous, so it is tested without a socket;
`model` holds the data, `templates` and `items` the rules this applies.
"""

from __future__ import annotations

import base64
import fnmatch
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from agents.testing.elasticsearch.bulk import BulkOp
from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.flavors import Profile, profile
from agents.testing.elasticsearch.items import failed_item, write
from agents.testing.elasticsearch.model import (
    DataStream,
    Doc,
    Index,
    _not_found,
    check_index_name,
    index_exists,
)
from agents.testing.elasticsearch.templates import (
    BUILTIN_LOGS_TEMPLATE,
    check_removable,
    checked_template,
    mapping_from_template,
    normalised_settings,
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
        version: str | None = None,
        flavor: str = "elasticsearch",
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        fill_missing_timestamp: bool = False,
    ) -> None:
        self.profile: Profile = profile(flavor, version)
        self.version = self.profile.version
        self.rng = rng or random.Random()  # noqa: S311 - ids, not secrets
        self.clock = clock
        self.fill_missing_timestamp = fill_missing_timestamp
        self.parsing_error = self.profile.parsing_error  # ES 8.8 renamed it
        self.clear()

    def clear(self) -> None:
        """Back to a fresh cluster: no indices, no data streams, only built-in templates
        (Elasticsearch's logs-*-*; OpenSearch has none)."""
        self.indices: dict[str, Index] = {}
        self.data_streams: dict[str, DataStream] = {}
        self._builtin_logs = dict(BUILTIN_LOGS_TEMPLATE)
        self.templates: dict[str, dict[str, Any]] = (
            {"logs": self._builtin_logs} if self.profile.builtin_logs_template else {}
        )

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
        backing = self.profile.backing_index(name, self.clock(), 1)
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
            check_index_name(name)
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
        """One bulk item: `{action: {_index, _id, ...result or error}}` (and `_type` where
        the version still shows it)."""
        item = self._apply(op, item_fault)
        if self.profile.item_type:
            ((action, body),) = item.items()
            item = {action: {"_index": body.pop("_index"), **self.profile.item_type, **body}}
        return item

    def _apply(self, op: BulkOp, item_fault: ItemFault | None) -> dict[str, Any]:
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

    # -- indices and data streams ---------------------------------------------------

    def create_index(self, name: str, body: dict[str, Any] | None = None) -> Index:
        """`PUT /{name}`: an index with the settings and mappings of `body` over those of
        the matching template. A name taken, refused, or claimed by a data stream template
        is ES's 400."""
        if name in self.indices:
            raise index_exists(self.indices[name])
        if name in self.data_streams:
            raise EsError(400, "resource_already_exists_exception",
                          f"data stream [{name}] already exists")  # fmt: skip
        check_index_name(name)
        found = self.template_for(name)
        if found is not None and "data_stream" in found[1]:
            raise _illegal(f"cannot create index with name [{name}], because it matches with "
                           f"template [{found[0]}] that creates data streams only, use create "
                           "data stream api instead")  # fmt: skip
        body = body or {}
        unknown = sorted(set(body) - {"settings", "mappings", "aliases"})
        if unknown:
            raise EsError(400, "parse_exception", f"unknown key [{unknown[0]}] for create "
                          "index")  # fmt: skip
        index = self._create_index(name)
        own = mapping_from_template({"template": body})
        index.mapping.fields.update(own.fields)
        if "dynamic" in (body.get("mappings") or {}):
            index.mapping.dynamic = own.dynamic
        index.mapping.ignore_malformed |= own.ignore_malformed
        index.settings.update(normalised_settings(body.get("settings") or {}))
        return index

    def delete_index(self, expression: str) -> list[str]:
        """`DELETE /{expression}`: the indices removed (a backing index of a data stream
        may not be: ES's 400)."""
        names = self.resolve(expression)
        for name in names:
            stream = self.indices[name].data_stream
            if stream is not None:
                raise _illegal(f"index [{name}] is the write index for data stream [{stream}] "
                               "and cannot be deleted")  # fmt: skip
        for name in names:
            del self.indices[name]
        return names

    def create_data_stream(self, name: str) -> DataStream:
        """`PUT /_data_stream/{name}`: needs a matching template with `data_stream`."""
        if name in self.data_streams:
            raise EsError(400, "resource_already_exists_exception",
                          f"data_stream [{name}] already exists")  # fmt: skip
        if name in self.indices:
            raise index_exists(self.indices[name])
        check_index_name(name)
        found = self.template_for(name)
        if found is None:
            raise _illegal(f"no matching index template found for data stream [{name}]")
        if "data_stream" not in found[1]:
            raise _illegal(f"matching index template [{found[0]}] for data stream [{name}] "
                           "has no data stream template")  # fmt: skip
        return self._create_data_stream(name, found[0])

    def delete_data_stream(self, expression: str) -> list[str]:
        """`DELETE /_data_stream/{expression}`: the streams removed with their backing
        indices; a name (not a pattern) that matches none is a 404."""
        parts = expression.split(",")
        removed = [n for n in self.data_streams
                   if any(fnmatch.fnmatchcase(n, p) for p in parts)]  # fmt: skip
        if not removed and not any("*" in p for p in parts):
            raise EsError(404, "resource_not_found_exception",
                          f"data streams [{', '.join(parts)}] not found")  # fmt: skip
        for name in dict.fromkeys(removed):
            for backing in self.data_streams.pop(name).indices:
                self.indices.pop(backing, None)
        return list(dict.fromkeys(removed))

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
