"""Errors raised where no code of ours catches them, said as one event per line.

Python prints a multi-line traceback on stderr for an exception in a thread, in an
asyncio task nobody awaited, in a `__del__`, or in a library's `logging` call with
`exc_info`. On a daemon's stderr that breaks the one-event-per-line contract: a log
pipeline splits it into a dozen events with no level. `route_stray_errors` sends each of
them through the program's Logger instead, with the last frames on one `stack` field.

What is ours is said as `internal error: ...` (a bug, tests look for it); what a library
logs at warning level or above is said as `library <level>` with its logger's name.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from agents._log import Logger


def one_line_stack(exc: BaseException | None) -> str | None:
    """The exception's last two frames and its message, for a `stack` field: no
    "Traceback (most recent call last)" header, which log searches take for a crash."""
    if exc is None:
        return None
    frames = traceback.StackSummary.from_list(traceback.extract_tb(exc.__traceback__)[-2:])
    return "".join([*frames.format(), *traceback.format_exception_only(exc)]).strip()


def describe(exc: BaseException | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


class _ToLogger(logging.Handler):
    """A stdlib `logging` handler writing through our Logger."""

    def __init__(self, log: Logger) -> None:
        super().__init__(level=logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not escape from here
            message = str(record.msg)
        exc = record.exc_info[1] if record.exc_info else None
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self.log.log(level, f"library {level}", logger=record.name, detail=message,
                     error=describe(exc), stack=one_line_stack(exc))  # fmt: skip


def asyncio_handler(log: Logger) -> Any:
    """For `loop.set_exception_handler`: 'Task exception was never retrieved' and the like
    are a bug of ours."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        name = task.get_name() if isinstance(task, asyncio.Task) else None
        log.error("internal error: asyncio", detail=context.get("message"), task=name,
                  error=describe(exc), stack=one_line_stack(exc))  # fmt: skip

    return handle


def route_stray_errors(log: Logger) -> Callable[[], None]:
    """Threads, unraisable exceptions and stdlib `logging` records go through `log`.
    Returns the undo: the hooks, handlers and level as they were before."""

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else None
        log.error("internal error: in a thread", thread=name,
                  error=describe(args.exc_value), stack=one_line_stack(args.exc_value))  # fmt: skip

    def unraisable_hook(args: Any) -> None:
        where = None if args.object is None else repr(args.object)[:200]
        log.error("internal error: exception ignored", detail=args.err_msg, object=where,
                  error=describe(args.exc_value), stack=one_line_stack(args.exc_value))  # fmt: skip

    root = logging.getLogger()
    saved = threading.excepthook, sys.unraisablehook, root.handlers[:], root.level
    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook
    root.handlers[:] = [_ToLogger(log)]
    root.setLevel(logging.WARNING)

    def undo() -> None:
        threading.excepthook, sys.unraisablehook, root.handlers[:], level = saved
        root.setLevel(level)

    return undo
