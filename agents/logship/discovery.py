"""Which files to ship: globs (with `**`) minus excludes, noticed fast, checked often.

The periodic rescan is the source of truth (it works on every filesystem); inotify events
only make it sooner, and tell harvesters their file grew.
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import os
import stat
import sys
from collections.abc import Callable, Iterable

from agents.logship.inotify import Inotify, InotifyUnavailable

_MAGIC = set("*?[")
# A file opened or closed without writing did not change: logship's own reads cause these,
# and waking the scanner for them would reopen a file right after closing it as inactive.
_READ_ONLY = {"opened", "closed_no_write"}


def static_root(pattern: str) -> tuple[str, bool]:
    """The deepest directory of `pattern` without wildcards, and whether files below it
    may sit at any depth (a wildcard in a directory part, or `**`)."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if _MAGIC & set(part):
            return os.sep.join(fixed) or os.sep, True
        fixed.append(part)
    return os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else "."), False


def scan(patterns: Iterable[str], excludes: Iterable[str]) -> tuple[list[str], list[str]]:
    """→ (regular files matching a pattern and no exclude, problems worth a log line)."""
    excludes = list(excludes)
    found: set[str] = set()
    problems: list[str] = []
    for pattern in patterns:
        for path in glob.iglob(pattern, recursive=True):
            if any(fnmatch.fnmatch(path, ex) for ex in excludes):
                continue
            try:
                info = os.stat(path)
            except OSError as exc:  # a dangling link, a symlink loop, a vanished file
                problems.append(f"{path}: {exc.strerror}")
                continue
            if stat.S_ISREG(info.st_mode):
                found.add(path)
    return sorted(found), problems


class Watcher:
    """Each pattern's static root, watched: by inotify read on the event loop where Linux
    has it (`agents.logship.inotify`), by watchdog's threads elsewhere. `notify(path)` and
    `overflow()` (events were lost: look at everything) are called on the loop."""

    def __init__(
        self,
        patterns: Iterable[str],
        notify: Callable[[str], None],
        loop: asyncio.AbstractEventLoop,
        *,
        overflow: Callable[[], None] | None = None,
        backend: str = "auto",  # or "inotify", "watchdog", "poll" (no watching at all)
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.roots: dict[str, bool] = {}
        for pattern in patterns:
            root, recursive = static_root(pattern)
            self.roots[root] = self.roots.get(root, False) or recursive
        self.notify, self.loop = notify, loop
        self.overflow = overflow or (lambda: None)
        self.backend = backend
        self.on_error = on_error  # an exception in a callback the loop makes (inotify's)
        self.inotify: Inotify | None = None
        self.observer: object | None = None
        self._said: set[str] = set()  # problems already returned by refresh()
        self._pending: set[str] = set()  # paths on their way from watchdog's thread

    def start(self) -> list[str]:
        """Start watching; returns problems (inotify limits, missing dirs) — polling covers."""
        if self.backend == "poll":
            return []
        if self.backend != "watchdog":
            try:
                self.inotify = Inotify(self.loop, self.notify, self.overflow,
                                       on_error=self.on_error)  # fmt: skip
            except InotifyUnavailable as exc:
                if self.backend == "inotify" or sys.platform.startswith("linux"):
                    return [f"{exc}; relying on the rescan"]
        if self.inotify is None:
            return self._start_watchdog()
        problems: list[str] = []
        for root, recursive in self.roots.items():
            if not os.path.isdir(root):
                problems.append(f"{root}: not a directory (yet); watched once it is one")
                continue
            problems += self.inotify.watch(root, recursive)
        self._said.update(problems)
        return problems

    def refresh(self) -> list[str]:
        """After a scan: watch the roots that have become directories since, or again
        after they were deleted and made anew; → problems not said before."""
        problems: list[str] = []
        if self.inotify is None:
            return problems
        for root, recursive in self.roots.items():
            if not self.inotify.watching(root) and os.path.isdir(root):
                problems += self.inotify.watch(root, recursive)
        new = [p for p in problems if p not in self._said]
        self._said.update(new)
        return new

    def _start_watchdog(self) -> list[str]:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:
            return [f"watchdog unavailable ({exc}); relying on the rescan"]

        hop = self._from_thread

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in _READ_ONLY:
                    return
                if not event.is_directory or event.event_type == "created":
                    hop(str(event.src_path))
                    dest = getattr(event, "dest_path", "")
                    if dest:
                        hop(str(dest))

        problems: list[str] = []
        observer = Observer()
        for root, recursive in self.roots.items():
            if not os.path.isdir(root):
                problems.append(f"{root}: not a directory (yet); the rescan will find files")
                continue
            try:
                observer.schedule(Handler(), root, recursive=recursive)
            except OSError as exc:
                problems.append(f"{root}: cannot watch ({exc.strerror}); relying on the rescan")
        try:
            observer.start()
        except OSError as exc:
            return [*problems, f"cannot start watching ({exc.strerror}); relying on the rescan"]
        self.observer = observer
        return problems

    def _from_thread(self, path: str) -> None:
        """From watchdog's thread: one hop to the loop per path until the loop has taken it
        (a live file's every write is an event)."""
        if path in self._pending:
            return
        self._pending.add(path)
        try:
            self.loop.call_soon_threadsafe(self._deliver, path)
        except RuntimeError:  # the loop is closing
            self._pending.discard(path)

    def _deliver(self, path: str) -> None:
        self._pending.discard(path)  # first: a change from now on schedules another call
        self.notify(path)

    def stop(self) -> None:
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None
        observer = self.observer
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join(5)  # type: ignore[attr-defined]
            self.observer = None


def path_problems(globs: tuple[str, ...] | list[str]) -> list[tuple[str, str, str | None]]:
    """Globs that name a directory, or match no file yet: said once at start (the second
    is fine when the app has not written yet, and logship watches for it)."""
    problems = []
    for pattern in globs:
        if not glob.has_magic(pattern) and os.path.isdir(pattern):
            problems.append((pattern, "names a directory, not files",
                             f"--path '{pattern.rstrip('/')}/*.log'"))  # fmt: skip
        elif not any(os.path.isfile(p) for p in glob.iglob(pattern, recursive=True)):
            problems.append((pattern, "matches no file yet: watching for files that appear",
                             None))  # fmt: skip
    return problems
