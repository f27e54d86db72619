"""What the store holds: indices with their documents and tombstones, data streams, and the
rules for an index's name. Plain data; the `Store` decides what changes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.testing.elasticsearch.errors import EsError
from agents.testing.elasticsearch.mapping import IndexMapping

_BAD_NAME_CHARS = '\\/*?"<>| ,#:'


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
    settings: dict[str, Any] = field(default_factory=dict)  # flat "index.x" -> str, as given
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


def check_index_name(name: str) -> None:
    """ES's 400 invalid_index_name_exception for a name it would not create."""
    problem = index_name_problem(name)
    if problem is not None:
        raise EsError(400, "invalid_index_name_exception",
                      f"Invalid index name [{name}], {problem}", index_uuid="_na_",
                      index=name)  # fmt: skip


def index_exists(index: Index) -> EsError:
    return EsError(400, "resource_already_exists_exception",
                   f"index [{index.name}/{index.uuid}] already exists", index_uuid=index.uuid,
                   index=index.name)  # fmt: skip


def _not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"},
        index=name,
    )
