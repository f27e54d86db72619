"""Exactly once over hours: the stand-in keeps every document in memory (~3 KiB each, so
two hours at 2,000 lines/s would not fit), so the soak harvests the index as it goes:
it reads what is stored, notes each line here, and deletes those documents by `_id`.

The ledger holds, per file prefix and sequence number, how many distinct documents
carried that line and a hash of the first one's `_id`. A document seen again with the
same `_id` is the same document (read twice, or re-created by logship after the harvest
deleted it: Elasticsearch, which never deleted it, would have answered 409), not a
duplicate; the same line under another `_id` is a duplicate.
"""

from __future__ import annotations

import json
import urllib.request
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.testing.processes import StandInProcess

INDEX = "logship-*"
DELETE_CHUNK = 20_000  # ids per bulk delete: a few MiB of body


@dataclass
class Lines:
    """One file's lines: copies[seq] distinct documents, ids[seq] the first one's hash."""

    copies: bytearray = field(default_factory=bytearray)
    ids: array[int] = field(default_factory=lambda: array("q"))

    def grow(self, size: int) -> None:
        if size > len(self.copies):
            more = max(size, 2 * len(self.copies)) - len(self.copies)
            self.copies.extend(bytes(more))
            self.ids.extend([0] * more)


class Ledger:
    """Every line the index held, as the harvests saw it (see the module)."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.files = {p: Lines() for p in prefixes}
        self.unique = 0  # distinct lines stored
        self.doubled = 0  # documents that repeat a line under another _id
        self.seen_again = 0  # documents seen again under the same _id
        self.strangers: list[str] = []  # messages no writer wrote (the first few)
        self.strangers_total = 0

    def add(self, message: str, doc_id: str) -> None:
        prefix, _, rest = message.partition(" ")
        lines = self.files.get(prefix)
        seq_text = rest[:8]
        if lines is None or not seq_text.isdigit():
            self.strangers_total += 1
            if len(self.strangers) < 5:
                self.strangers.append(message[:120])
            return
        seq = int(seq_text)
        lines.grow(seq + 1)
        key = hash(doc_id) or 1  # 0 marks "none yet"
        if lines.copies[seq] == 0:
            lines.copies[seq], lines.ids[seq] = 1, key
            self.unique += 1
        elif lines.ids[seq] == key:
            self.seen_again += 1
        else:
            lines.copies[seq] = min(255, lines.copies[seq] + 1)
            self.doubled += 1

    def check(self, prefix: str, written: int, destroyed: list[list[int]]) -> dict[str, Any]:
        """One file against what its writer wrote: missing and doubled lines, and for a
        truncating rotation what its window lost (each destroyed content may miss its
        tail, since logship reads in order; nothing else may be missing)."""
        lines = self.files[prefix]
        lines.grow(written)
        copies = lines.copies
        allowed = bytearray(written)  # 1: may be missing (the unread tail of a content)
        windows = []  # [first, last, lost] of each destroyed content that lost lines
        for first, last in destroyed:
            shipped = [s for s in range(first, last + 1) if copies[s]]
            tail_from = (shipped[-1] + 1) if shipped else first
            for s in range(tail_from, last + 1):
                allowed[s] = 1
            if tail_from <= last:
                windows.append([first, last, last + 1 - tail_from])
        missing = [s for s in range(written) if copies[s] == 0 and not allowed[s]]
        doubled = [s for s in range(written) if copies[s] > 1]
        beyond = sum(1 for s in range(written, len(copies)) if copies[s])
        return {
            "written": written,
            "missing": len(missing),
            "missing_first": missing[:5],
            "doubled": len(doubled),
            "doubled_first": doubled[:5],
            "beyond_written": beyond,
            "lost_in_copytruncate_window": sum(w[2] for w in windows),
            "windows": windows,
        }


def harvest(es: StandInProcess, ledger: Ledger) -> int:
    """Note every stored document in the ledger, then delete those documents (only those:
    one stored meanwhile stays for the next harvest) → how many were read. Raises OSError,
    http.client.HTTPException or ValueError when the stand-in does not answer or its
    answer is cut (going down): the next harvest reads them again."""
    docs = es.get(f"/_standin/docs?index={INDEX}", timeout=120)["docs"]
    for doc in docs:
        ledger.add(doc["message"], doc["_id"])
    for start in range(0, len(docs), DELETE_CHUNK):
        chunk = docs[start : start + DELETE_CHUNK]
        body = "".join(
            json.dumps({"delete": {"_index": d["_index"], "_id": d["_id"]}}) + "\n" for d in chunk
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the stand-in on a test host
            f"{es.url}/_bulk", data=body, method="POST",
            headers={"Content-Type": "application/x-ndjson"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            answer = json.loads(response.read())
        if answer.get("errors"):
            failed = [i for i in answer["items"] if i["delete"].get("status", 200) >= 300]
            # 404: not found, gone already (a harvest whose answer was lost): fine; 429 and
            # 503: the stand-in going down meanwhile: still stored, read again next time
            real = [i for i in failed if i["delete"].get("status") not in (404, 429, 503)]
            if real:
                raise RuntimeError(f"the harvest could not delete documents: {real[:3]}")
    return len(docs)
