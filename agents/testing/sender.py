"""A scripted stand-in for logship's sender: the one-method seam between the pipeline and
Elasticsearch (`send(body) -> Answer`).

Each call takes the next step of the script: an `Answer` to give, an exception to raise
(`SendFailed` for "no answer at all"), or a function of the request's events that makes
the answer. When the script is used up, every event is stored (`stored(n)`). Every body
sent is kept, decoded into its (action, source) pairs, so a test can say what went out.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from agents.logship.output.elasticsearch import Answer

Step = Answer | BaseException | Callable[[list[dict[str, Any]]], Answer]


def stored(count: int) -> Answer:
    """A 200 bulk answer that stored `count` events (201 created each)."""
    items = [{"create": {"status": 201, "result": "created"}} for _ in range(count)]
    return Answer(200, {"took": 1, "errors": False, "items": items})


def items(*statuses: int, error_type: str = "", reason: str = "") -> Answer:
    """A 200 bulk answer with one item per status (errors for the ones not 200/201)."""
    rows = []
    for status in statuses:
        body: dict[str, Any] = {"status": status}
        if status not in (200, 201):
            kind = error_type or ("version_conflict_engine_exception" if status == 409
                                  else "es_rejected_execution_exception" if status == 429
                                  else "mapper_parsing_exception")  # fmt: skip
            body["error"] = {"type": kind, "reason": reason or kind}
        rows.append({"create": body})
    errors = any(s not in (200, 201) for s in statuses)
    return Answer(200, {"took": 1, "errors": errors, "items": rows})


def error(status: int, kind: str = "", reason: str = "") -> Answer:
    """A request-level error answer in Elasticsearch's shape."""
    kind = kind or {401: "security_exception", 403: "security_exception",
                    429: "es_rejected_execution_exception"}.get(status, "exception")  # fmt: skip
    return Answer(status, {"error": {"type": kind, "reason": reason or kind}, "status": status})


class ScriptedSender:
    """`send()` answers from a script; see the module docstring."""

    def __init__(self, script: Iterable[Step] = ()) -> None:
        self.script: deque[Step] = deque(script)
        self.requests: list[list[dict[str, Any]]] = []  # each request's events, decoded
        self.sent = asyncio.Event()  # set at every request
        self.gate: asyncio.Event | None = None  # when set to an Event: requests wait for it

    def then(self, *steps: Step) -> ScriptedSender:
        self.script.extend(steps)
        return self

    async def send(self, body: bytes | list[bytes | memoryview]) -> Answer:
        raw = body if isinstance(body, bytes) else b"".join(bytes(piece) for piece in body)
        events = _decode(raw)
        self.requests.append(events)
        self.sent.set()
        if self.gate is not None:
            await self.gate.wait()
        step = self.script.popleft() if self.script else stored(len(events))
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(events)
        return step

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Every source sent, in order (re-sends included)."""
        return [event["source"] for request in self.requests for event in request]

    async def close(self) -> None:
        return None


def _decode(raw: bytes) -> list[dict[str, Any]]:
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    events = []
    for action, source in zip(lines[::2], lines[1::2], strict=True):
        meta = json.loads(action)
        ((verb, where),) = meta.items()
        events.append({"action": verb, "_id": where.get("_id"), "_index": where.get("_index"),
                       "source": json.loads(source)})  # fmt: skip
    return events
