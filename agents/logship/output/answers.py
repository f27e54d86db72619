"""What an answer from Elasticsearch means, and the one retry policy logship follows.

Every request logship makes (bulk, the index template, the dead-letter index) is classified
here and retried by `Retry`, so the three cannot disagree:

| answer | `Kind` | bulk request | template | dead-letter index |
|---|---|---|---|---|
| 2xx | OK | items classified (`bulk`) | installed | items classified |
| no answer (refused, reset, timeout, TLS) | UNREACHABLE | retried | retried | retried |
| 401, 403 | DENIED | retried | retried | retried |
| 400, 413 | REJECTED | halved; one event alone: dead | final: exit 2 | to the file |
| 408, 429, 5xx, any other | BUSY | retried | retried | retried |

Retried means: with exponential backoff and full jitter from `RETRY_BASE` up to
`RETRY_CAP`, for as long as it lasts; what waits holds its memory budget, so nothing read
is lost and nothing more is read. A 401/403 is retried because the cure (a fixed Secret,
a granted privilege) comes from outside without a restart. A 404 or 405 to `_bulk` is
not a refusal of the events: it is a proxy or a server that is not Elasticsearch, and it
is retried rather than dead-letter every line. Only 400 and 413 say "not this content",
and only then does logship change what it sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from agents._aio import wait_event
from agents._backoff import Backoff
from agents._log import Logger
from agents.logship.output.elasticsearch import Answer, SendFailed

RETRY_BASE = 0.1  # seconds: the first retry waits up to this
RETRY_CAP = 30.0  # seconds: no retry waits longer


class Kind(Enum):
    OK = "ok"
    UNREACHABLE = "unreachable"  # no HTTP answer at all
    DENIED = "denied"  # credentials or privileges
    REJECTED = "rejected"  # this content will never be taken as it is
    BUSY = "busy"  # try again later


@dataclass(frozen=True)
class Reply:
    """An answer (or its absence) and what it means."""

    kind: Kind
    status: int  # 0 when there was no answer
    body: Any
    reason: str  # one line for logs: "connection refused", "401 security_exception: …"

    @property
    def ok(self) -> bool:
        return self.kind is Kind.OK


def kind_of(status: int) -> Kind:
    if 200 <= status < 300:
        return Kind.OK
    if status in (401, 403):
        return Kind.DENIED
    if status in (400, 413):
        return Kind.REJECTED
    return Kind.BUSY


def error_reason(body: object) -> str:
    """`type: reason` from an Elasticsearch error body, else the body as text (shortened)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind, reason = error.get("type", ""), error.get("reason", "")
            return f"{kind}: {reason}" if kind else str(reason)
        if isinstance(error, str):
            return error
    return "" if body is None else str(body)[:300]


def classify(answer: Answer) -> Reply:
    kind = kind_of(answer.status)
    reason = "" if kind is Kind.OK else f"{answer.status} {error_reason(answer.body)}".strip()
    return Reply(kind, answer.status, answer.body, reason)


async def ask(call: Callable[[], Awaitable[Answer]]) -> Reply:
    """Make one request and classify what came back."""
    try:
        answer = await call()
    except SendFailed as exc:
        return Reply(Kind.UNREACHABLE, 0, None, str(exc))
    return classify(answer)


class Retry:
    """One operation's retries under the policy above: `pause()` logs why and waits out
    the next backoff; `progress()` starts the schedule over (something got through)."""

    def __init__(
        self, log: Logger, *, base: float = RETRY_BASE, cap: float = RETRY_CAP,
        on_pause: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self.log = log
        self.backoff = Backoff(base, cap)
        self.on_pause = on_pause
        self.attempts = 0
        self._last_why: str | None = None

    async def pause(
        self, what: str, why: object, *, until: asyncio.Event | None = None,
        level: str = "warning", **fields: Any,
    ) -> None:  # fmt: skip
        """Wait before the next attempt (or until `until` is set), saying `what` and why."""
        self.attempts += 1
        if self.on_pause is not None:
            self.on_pause()
        delay = self.backoff.next()
        self.log.log(level, what, error=str(why), retry_in=round(delay, 3), **fields)
        if until is None:
            await asyncio.sleep(delay)
        else:
            await wait_event(until, delay)

    def progress(self) -> None:
        self.backoff.reset()

    def changed(self, why: str) -> str:
        """The log level for this retry's reason: "warning" the first time a reason is
        seen in a row, "debug" while it repeats (a state change is said once)."""
        level = "debug" if why == self._last_why else "warning"
        self._last_why = why
        return level


def reload_credentials(sender: object, log: Logger, reply: Reply) -> bool:
    """After a 401/403: read the credential files again (a rotated Secret) → whether
    they changed, so the request may go again at once."""
    reload = getattr(sender, "reload_credentials", None)
    return reply.kind is Kind.DENIED and reload is not None and bool(reload(log))
