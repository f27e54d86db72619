"""Every long-lived task owned by one supervisor: a task that fails, fails the program.

A bare `asyncio.create_task` whose exception nobody reads is a silent failure: the task is
gone, the program looks alive (its probes answer, it exits 0 on SIGTERM) and does nothing.
A `Supervisor` keeps each task it starts until the task ends; one that ends by an
exception is said once, as `internal error` with the task's name, the cause and its last
frames, and the first such failure sets `failed` (callbacks that are not tasks, such as a
file watcher's, report theirs with `fail()`). What to do then belongs to the program's
lifecycle owner: logship stops reading, commits what was acknowledged and exits 1, so that
the kubelet restarts it and the next run resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agents._log import Logger
from agents._stray import one_line_stack


class Failure:
    """The first failure: which task, and the exception."""

    __slots__ = ("error", "task")

    def __init__(self, task: str, error: BaseException) -> None:
        self.task, self.error = task, error

    def __str__(self) -> str:
        return f"{self.task}: {type(self.error).__name__}: {self.error}"


class Supervisor:
    def __init__(
        self,
        log: Logger,
        *,
        on_failure: Callable[[Failure], None] | None = None,
        quiet: tuple[type[BaseException], ...] = (),
    ) -> None:
        """`quiet`: exceptions that are failures but no bug (a configuration error found
        while running): the program says them itself."""
        self.log = log
        self.on_failure = on_failure
        self.quiet = quiet
        self.failure: Failure | None = None
        self.failed = asyncio.Event()
        self._tasks: dict[asyncio.Task[Any], str] = {}

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as a task owned here; its exception, if any, fails the program."""
        task = asyncio.create_task(coro, name=name)
        self._tasks[task] = name
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        name = self._tasks.pop(task, task.get_name())
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.fail(name, error)

    def fail(self, name: str, error: BaseException) -> None:
        """`name` failed with `error`. Only the first failure is said and acted on: what
        fails after it is most likely its consequence."""
        if self.failure is not None:
            return
        if not isinstance(error, self.quiet):
            self.log.error("internal error: a task failed", task=name,
                           error=f"{type(error).__name__}: {error}",
                           stack=one_line_stack(error))  # fmt: skip
        self.failure = Failure(name, error)
        self.failed.set()
        if self.on_failure is not None:
            self.on_failure(self.failure)

    def guard(self, name: str, callback: Callable[..., None]) -> Callable[..., None]:
        """`callback`, with whatever it raises reported as `name`'s failure (for callbacks
        the event loop calls, where an exception would only reach its exception handler)."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self.fail(name, exc)

        return guarded

    @property
    def running(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    async def cancel(self, tasks: list[asyncio.Task[Any]] | None = None) -> None:
        """Cancel `tasks` (default: all still running) and wait until they have ended."""
        tasks = self.running if tasks is None else tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
