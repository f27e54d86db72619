"""One-event-per-line logging on stderr, shared by both programs.

Every call is a fixed message plus fixed field names. `json` mode writes one JSON
object per line with ECS names (`@timestamp`, `log.level`, `message`); text mode writes
`TIME LEVEL message key=value ...` for people reading `kubectl logs`.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing's own flag costs its import at start-up
if TYPE_CHECKING:
    from typing import IO, Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _timestamp(now: float) -> str:
    secs = int(now)
    millis = int((now - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(c in text for c in ' "=\n\t\\'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'
    return text


class Logger:
    """Writes events to a stream; `min_level` filters, `json_lines` picks the format."""

    def __init__(
        self,
        program: str,
        *,
        json_lines: bool = False,
        min_level: str = "info",
        stream: IO[str] | None = None,
    ) -> None:
        self.program = program
        self.json_lines = json_lines
        self.min_level = LEVELS[min_level]
        self.stream = stream if stream is not None else sys.stderr  # may be None: no stderr

    def log(self, level: str, message: str, **fields: Any) -> None:
        if LEVELS[level] < self.min_level:
            return
        now = time.time()
        if self.json_lines:
            import json  # only JSON mode pays for it

            event = {"@timestamp": _timestamp(now), "log.level": level, "message": message}
            event["process.name"] = self.program
            event.update((k, v) for k, v in fields.items() if v is not None)
            line = json.dumps(event, ensure_ascii=False, default=str)
        else:
            # One event, one line: a message carrying a server's newlines is escaped.
            text = message.replace("\r", "\\r").replace("\n", "\\n")
            parts = [_timestamp(now), f"{level.upper():<5}", self.program + ":", text]
            parts.extend(f"{k}={_text_value(v)}" for k, v in fields.items() if v is not None)
            line = " ".join(parts)
        if self.stream is None:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            # stderr closed or full (EPIPE, EBADF, ENOSPC): logging must never take the
            # program down, nor change its exit code.
            pass

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)
