"""Where events Elasticsearch refused for good go: a file in the data directory, or an index.

`DeadLetterFile` keeps them as JSON lines in `<data-dir>/dead-letter.ndjson`, with the
reason, where the event came from and the document itself, so it can be fixed and re-sent
by hand. `DeadLetterIndex` (`--dead-letter index:NAME`) writes them to an index instead,
wrapped so that they cannot fail the mapping again: the refused document is one string,
`event.original`. The wrapper keeps the event's deterministic `_id`, so a dead letter sent
twice (a crash before the commit) is stored once. When the index refuses the wrapper too,
or a single event is too big for any request, it goes to the file: nothing refused is ever
silently dropped.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from agents._log import Logger
from agents.logship.bulk import Event, ItemResult, Verdict, build_body, classify_response
from agents.logship.events import iso
from agents.logship.output.answers import (
    RETRY_BASE,
    RETRY_CAP,
    Kind,
    Reply,
    Retry,
    ask,
    reload_credentials,
)
from agents.logship.output.elasticsearch import Sender

FILENAME = "dead-letter.ndjson"


class DeadLetterFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self._lock = asyncio.Lock()

    async def write(self, event: Event, result: ItemResult, *, index_error: str = "") -> None:
        record = {
            "@timestamp": iso(time.time()),
            "reason": result.reason,
            "status": result.status,
            "error_type": result.error_type,
            "index": event.index,
            "_id": event.id,
            "log": {"file": {"path": event.path}, "offset": event.offset},
            "document": event.doc.decode("utf-8", "replace"),
        }
        if index_error:  # why the dead-letter index did not take it either
            record["dead_letter_index_error"] = index_error
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        # Durable before the event's offset may be committed past it.
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def wrap(event: Event, result: ItemResult, index: str, now: float) -> Event:
    """The dead letter as a document of its own, for `index`, with the event's `_id`.

    Only strings and one integer at fixed ECS names: whatever broke the original
    document's mapping is inside `event.original`, which is never parsed.
    """
    doc = {
        "@timestamp": iso(now),
        "event": {"kind": "pipeline_error", "original": event.doc.decode("utf-8", "replace")},
        "error": {
            "type": result.error_type or f"http_{result.status}",
            "message": result.reason,
            "code": str(result.status),
        },
        "log": {"file": {"path": event.path}, "offset": event.offset},
        "labels": {"target_index": event.index, "target_id": event.id},
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Event(event.key, event.generation, event.offset, event.end, index, body, event.path)


class DeadLetterIndex:
    """Dead letters to an index; the file when the index refuses them for good.

    Answers follow the policy of `answers`: what is retried for a bulk request is retried
    here for as long as it lasts, as for any event; the refused event is not acknowledged
    (and its file does not move on) until its dead letter is stored somewhere.
    """

    def __init__(
        self,
        sender: Sender,
        index: str,
        *,
        fallback: DeadLetterFile,
        log: Logger,
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        self.sender, self.index, self.fallback, self.log = sender, index, fallback, log
        self.retry_base, self.retry_cap = retry_base, retry_cap

    async def write(self, event: Event, result: ItemResult) -> None:
        letter = wrap(event, result, self.index, time.time())
        body = build_body([letter])
        retry = Retry(self.log, base=self.retry_base, cap=self.retry_cap)
        while True:
            reply = await ask(lambda: self.sender.send(body))
            refused = self._refusal(reply)
            if refused is None:
                return
            if refused:
                self.log.error(
                    "dead-letter index refused the event too: written to the dead-letter file",
                    index=self.index, path=event.path, offset=event.offset, error=refused[:300],
                )  # fmt: skip
                await self.fallback.write(event, result, index_error=refused)
                return
            if reload_credentials(self.sender, self.log, reply):
                continue
            why = reply.reason if reply.kind is Kind.UNREACHABLE else f"HTTP {reply.status}"
            await retry.pause("dead letter not stored yet", why, index=self.index,
                              level=retry.changed(why))  # fmt: skip

    def _refusal(self, reply: Reply) -> str | None:
        """None: stored; "": try again later; else why the index will never take it."""
        if reply.kind is Kind.REJECTED:
            return f"HTTP {reply.status} for the dead letter alone"
        if not reply.ok:
            return ""
        (item,) = classify_response(reply.body, 1)
        if item.verdict is Verdict.STORED:
            return None
        if item.verdict is Verdict.DEAD:
            return f"{item.status} {item.error_type}: {item.reason}".strip()
        return ""
