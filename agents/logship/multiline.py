"""Joining multi-line messages (stack traces) into one event, with Filebeat's rules.

`pattern` decides which lines belong to a neighbour; `negate` inverts it; `match`
says whether such lines join the line *before* them (`after`: a Java stack trace's
"\tat ..." lines follow their message) or the line *after* them (`before`: a line
continued with a trailing backslash). `max_lines` caps an event (the rest is dropped
and the event flagged); a pending event is released after `timeout` seconds of quiet
by the caller's `flush_due`.
"""

from __future__ import annotations

import re

from agents._options import user_regex
from agents.logship.lines import Line

PRESETS: dict[str, tuple[str, bool, str]] = {
    # "\tat com.x.Y(Y.java:1)", "\t... 5 more", "Caused by: ...", "\tSuppressed: ..."
    "java": (r"^[ \t]+(at |\.\.\. \d+ more|Suppressed: )|^Caused by: ", False, "after"),
    # "Traceback (most recent call last):", indented frames, the final "XError: ..." line,
    # and the chaining sentences between chained tracebacks.
    "python": (
        r"^Traceback \(most recent call last\):|^[ \t]+|^\w+(\.\w+)*(Error|Exception|Warning|"
        r"Exit|Interrupt)\b|^During handling of the above exception|^The above exception was",
        False,
        "after",
    ),
}


class MultilineError(ValueError):
    pass


class Joiner:
    """Feed lines in file order; get whole events (as Lines spanning the joined range)."""

    def __init__(
        self,
        pattern: str,
        *,
        negate: bool = False,
        match: str = "after",
        max_lines: int = 500,
    ) -> None:
        try:
            self.regex = user_regex(pattern)
        except re.error as exc:
            raise MultilineError(f"multiline pattern {pattern!r}: {exc}") from None
        if match not in ("after", "before"):
            raise MultilineError(f"multiline match must be 'after' or 'before', not {match!r}")
        if max_lines < 1:
            raise MultilineError("multiline max_lines must be at least 1")
        self.negate, self.match, self.max_lines = negate, match, max_lines
        self._parts: list[str] = []
        self._first: Line | None = None
        self._last: Line | None = None
        self._dropped = False
        self._truncated = False

    @classmethod
    def preset(cls, name: str, *, max_lines: int = 500) -> Joiner:
        if name not in PRESETS:
            raise MultilineError(f"unknown multiline preset {name!r} (known: {', '.join(PRESETS)})")
        pattern, negate, match = PRESETS[name]
        return cls(pattern, negate=negate, match=match, max_lines=max_lines)

    def _joins(self, line: Line) -> bool:
        return bool(self.regex.search(line.text)) != self.negate

    @property
    def pending(self) -> bool:
        return self._first is not None

    def feed(self, line: Line) -> list[Line]:
        out: list[Line] = []
        joins = self._joins(line)
        if self.match == "after":
            # A joining line continues the pending event; any other line starts a new one.
            if not (joins and self.pending):
                out.extend(self._release())
            self._add(line)
        else:
            # A joining line waits for the next line; the first non-joining one ends it.
            self._add(line)
            if not joins:
                out.extend(self._release())
        return out

    def flush(self) -> list[Line]:
        """Release the pending event (flush timeout, end of file at drain)."""
        return self._release()

    def _add(self, line: Line) -> None:
        if self._first is None:
            self._first = line
        if len(self._parts) < self.max_lines:
            self._parts.append(line.text)
        else:
            self._dropped = True
        self._last = line
        self._truncated = self._truncated or line.truncated

    def _release(self) -> list[Line]:
        if self._first is None or self._last is None:
            return []
        event = Line(
            self._first.offset,
            self._last.end,
            "\n".join(self._parts),
            truncated=self._dropped or self._truncated,
        )
        self._parts, self._first, self._last = [], None, None
        self._dropped = self._truncated = False
        return [event]
