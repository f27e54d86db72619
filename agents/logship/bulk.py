"""The bulk protocol, as pure functions: NDJSON bodies out, verdicts per event back.

Every event is sent as `create` with its deterministic `_id`, so a re-sent event comes
back 409 and counts as stored. What comes back is sorted into: stored (201, 200, 409
version conflict), retry (per-item 429/503 and other 5xx), and dead (other 4xx: mapping
and parse errors, which no retry will cure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from agents.logship.identity import document_id


class Event:
    """One document on its way: where it came from and its serialised source."""

    __slots__ = ("doc", "end", "generation", "index", "key", "offset", "path")

    def __init__(
        self,
        key: str,
        generation: int,
        offset: int,
        end: int,
        index: str,
        doc: bytes,
        path: str = "",
    ) -> None:
        self.key, self.generation, self.offset, self.end = key, generation, offset, end
        self.index, self.doc, self.path = index, doc, path

    @property
    def id(self) -> str:
        return document_id(self.key, self.generation, self.offset)

    def ndjson(self) -> bytes:
        action = json.dumps({"create": {"_index": self.index, "_id": self.id}})
        return action.encode() + b"\n" + self.doc + b"\n"

    @property
    def size(self) -> int:
        """Bytes this event takes in a bulk body (close enough for budgets)."""
        return len(self.doc) + len(self.index) + 80


def build_body(events: list[Event]) -> bytes:
    return b"".join(event.ndjson() for event in events)


class Verdict(Enum):
    STORED = "stored"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class ItemResult:
    verdict: Verdict
    status: int
    reason: str = ""
    error_type: str = ""


def classify_item(item: object) -> ItemResult:
    """One entry of a bulk response's `items`."""
    if not isinstance(item, dict) or len(item) != 1:
        return ItemResult(Verdict.RETRY, 0, "malformed item in the bulk response")
    (body,) = item.values()
    if not isinstance(body, dict):
        return ItemResult(Verdict.RETRY, 0, "malformed item in the bulk response")
    status = body.get("status")
    if not isinstance(status, int):
        return ItemResult(Verdict.RETRY, 0, "item without a status")
    error = body.get("error")
    error_type = error.get("type", "") if isinstance(error, dict) else ""
    reason = error.get("reason", "") if isinstance(error, dict) else ""
    if status in (200, 201):
        return ItemResult(Verdict.STORED, status)
    if status == 409 and error_type == "version_conflict_engine_exception":
        return ItemResult(Verdict.STORED, status, "already stored")  # a re-send: fine
    if status == 429 or status >= 500:
        return ItemResult(Verdict.RETRY, status, reason, error_type)
    return ItemResult(Verdict.DEAD, status, reason, error_type)


def classify_response(body: object, count: int) -> list[ItemResult]:
    """A 200 bulk response → one result per event sent. A response that does not list
    exactly `count` items is not trusted: every event is retried."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no"
        reason = f"bulk response has {got} items for {count} events"
        return [ItemResult(Verdict.RETRY, 0, reason)] * count
    return [classify_item(item) for item in items]


class RequestVerdict(Enum):
    RETRY = "retry"  # the whole request again, after a backoff
    SPLIT = "split"  # too big, or one event poisons it: halve and send again


def classify_request_status(status: int) -> RequestVerdict:
    """A non-200 answer to the whole bulk request."""
    if status in (400, 413):
        return RequestVerdict.SPLIT
    return RequestVerdict.RETRY  # 429, 5xx, and auth errors that a fixed Secret cures
