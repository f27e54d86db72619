"""The bulk protocol, as pure functions: NDJSON bodies out, verdicts per event back.

Every event is sent as `create` with its deterministic `_id`, so a re-sent event comes
back 409 and counts as stored. What comes back is sorted into: stored (201, 200, 409
version conflict), retry (per-item 429/503 and other 5xx), and dead (other 4xx: mapping
and parse errors, which no retry will cure).

On the hot path events travel as `Docs`: the consecutive events of one read of one file,
serialised once into one NDJSON run. A response that says `errors: false` for exactly the
events sent stores them all at once (`all_stored`); any other goes through
`classify_response`, item by item.
"""

from __future__ import annotations

import json
import re
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from enum import Enum
from itertools import accumulate

from agents.logship.fingerprint import document_id


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


class Docs:
    """Consecutive events of one file, as one run of NDJSON bulk lines (action + source each).

    Event `i` covers file bytes [starts[i], starts[i + 1]); its two NDJSON lines are
    body[cut(i):cut(i + 1)]. Each action line is `action_bytes` long plus the hex digits of
    its offset (the `_id` ends with them), which is how `source_bytes` knows the documents'
    own size without keeping it per event. `remaining` counts the events not yet stored or
    dead-lettered: the run is acknowledged, as one range of its file, when it reaches 0.
    `tail` travels with the run to the commit of its end (see registry.tail_of).
    """

    __slots__ = ("action_bytes", "body", "cuts", "generation", "index", "key", "path",
                 "remaining", "starts", "tail")  # fmt: skip

    def __init__(
        self,
        key: str,
        generation: int,
        index: str,
        path: str,
        *,
        entries: list[bytes],
        starts: list[int],
        action_bytes: int,
    ) -> None:
        """`entries`: each event's NDJSON (action and source lines); `starts`: each event's
        file offset, then the offset just past the last one."""
        if len(starts) != len(entries) + 1 or not entries:
            raise ValueError("Docs needs one start per entry plus the end")
        self.key, self.generation, self.index, self.path = key, generation, index, path
        self.body = b"".join(entries)
        self.cuts = array("Q", accumulate(map(len, entries), initial=0))
        self.starts = array("Q", starts)
        self.action_bytes = action_bytes
        self.remaining = len(entries)
        # The hash of the file's bytes before `end` (registry.tail_hash), taken when they
        # were read: committed with `end`, never looked up again. None: not known.
        self.tail: str | None = None

    @classmethod
    def of(cls, event: Event) -> Docs:
        """One event on its own (dead letters, callers that build events one by one)."""
        entry = event.ndjson()
        action = entry.index(b"\n") + 1
        digits = len(f"{event.offset:x}")
        return cls(event.key, event.generation, event.index, event.path, entries=[entry],
                   starts=[event.offset, event.end], action_bytes=action + 1 - digits)  # fmt: skip

    def __len__(self) -> int:
        return len(self.cuts) - 1

    @property
    def start(self) -> int:
        return self.starts[0]

    @property
    def end(self) -> int:
        return self.starts[-1]

    @property
    def size(self) -> int:
        """Bytes these events take in memory and in a bulk body."""
        return len(self.body)

    def body_of(self, lo: int, hi: int) -> bytes | memoryview:
        """The NDJSON of events lo..hi-1 (a view: bodies are joined, not kept)."""
        if lo == 0 and hi == len(self):
            return self.body
        return memoryview(self.body)[self.cuts[lo] : self.cuts[hi]]

    def bytes_of(self, lo: int, hi: int) -> int:
        """NDJSON bytes of events lo..hi-1."""
        return self.cuts[hi] - self.cuts[lo]

    def source_bytes(self, lo: int, hi: int) -> int:
        """Bytes of the documents (sources, without actions and newlines) of events lo..hi-1."""
        actions = (hi - lo) * self.action_bytes + hex_digits_total(self.starts, lo, hi)
        return self.bytes_of(lo, hi) - actions

    def cut_at_bytes(self, lo: int, limit: int) -> int:
        """The largest hi > lo such that events lo..hi-1 take at most `limit` bytes (lo + 1
        when event lo alone is bigger)."""
        hi = bisect_left(self.cuts, self.cuts[lo] + limit + 1, lo + 1) - 1
        return max(hi, lo + 1)

    def slice(self, lo: int, hi: int) -> Docs:
        """Events lo..hi-1 as a Docs of their own (a run too big for the memory budget
        is handed over in slices)."""
        part = Docs.__new__(Docs)
        part.key, part.generation, part.index, part.path = (
            self.key, self.generation, self.index, self.path
        )  # fmt: skip
        first = self.cuts[lo]
        part.body = self.body[first : self.cuts[hi]]
        part.cuts = array("Q", (cut - first for cut in self.cuts[lo : hi + 1]))
        part.starts = self.starts[lo : hi + 1]
        part.action_bytes = self.action_bytes
        part.remaining = hi - lo
        part.tail = self.tail if hi == len(self) else None
        return part

    def event(self, i: int) -> Event:
        """Event `i` on its own: for the dead letter, and the logs that name it."""
        entry = self.body[self.cuts[i] : self.cuts[i + 1]]
        source = entry[entry.index(b"\n") + 1 : -1]
        return Event(self.key, self.generation, self.starts[i], self.starts[i + 1], self.index,
                     source, self.path)  # fmt: skip


def hex_digits_total(starts: array[int] | list[int], lo: int, hi: int) -> int:
    """How many hex digits the offsets starts[lo:hi] (ascending) take in their `_id`s."""
    total = hi - lo  # every offset has at least one digit, 0 included
    threshold = 16
    while hi > lo and starts[hi - 1] >= threshold:
        total += hi - bisect_left(starts, threshold, lo, hi)
        threshold *= 16
    return total


class AllStored:
    """What `stored_summary` makes of a bulk response that stored all its `count` items;
    `raw` is the response, parsed only if `count` is not the number of events sent."""

    __slots__ = ("count", "raw")

    def __init__(self, count: int, raw: bytes = b"") -> None:
        self.count, self.raw = count, raw

    def __repr__(self) -> str:
        return f"AllStored({self.count})"


# The top-level keys Elasticsearch writes before "items" are scalars (took, errors,
# ingest_took): an "errors" found there is the response's own.
_ERRORS_FALSE = re.compile(rb'"errors"\s*:\s*false\s*[,}]')


def stored_summary(raw: bytes) -> AllStored | None:
    """A bulk response, unparsed, that says `errors: false` → AllStored(its item count);
    None for anything else (which is then parsed and classified item by item).

    Each item has exactly one `"status":` key and an item without an error has no string
    that could contain it; a response written another way (`"status" : 201`) only misses
    this shortcut: its count does not match the events sent, and it is parsed in full.
    """
    items = raw.find(b'"items"')
    if items < 0 or not raw.startswith(b"{") or not _ERRORS_FALSE.search(raw, 0, items):
        return None
    if b'"error"' in raw:  # a failed item, whatever `errors` says: parse it all
        return None
    return AllStored(raw.count(b'"status":'), raw)


def all_stored(body: object, count: int) -> bool:
    """The fast verdict on a 200 bulk response: `errors: false` and exactly `count` items.

    Elasticsearch sets `errors` when any item failed (a 409 included), so this is True
    only when every event was stored; anything else goes through `classify_response`.
    """
    if isinstance(body, AllStored):
        return body.count == count
    if not isinstance(body, dict) or body.get("errors") is not False:
        return False
    items = body.get("items")
    return isinstance(items, list) and len(items) == count


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
    if isinstance(body, AllStored):
        if body.count == count:
            return [ItemResult(Verdict.STORED, 201)] * count
        try:
            body = json.loads(body.raw)
        except ValueError:
            body = None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no"
        reason = f"bulk response has {got} items for {count} events"
        return [ItemResult(Verdict.RETRY, 0, reason)] * count
    return [classify_item(item) for item in items]
