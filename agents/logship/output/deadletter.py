"""Events Elasticsearch refused for good, kept as JSON lines in the data directory.

Each line holds the reason, where the event came from and the document itself, so it can
be fixed and re-sent by hand; nothing refused is ever silently dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from agents.logship.bulk import Event, ItemResult
from agents.logship.events import iso

FILENAME = "dead-letter.ndjson"


class DeadLetterFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self._lock = asyncio.Lock()

    async def write(self, event: Event, result: ItemResult) -> None:
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
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        with open(self.path, "ab") as fh:
            fh.write(line)
