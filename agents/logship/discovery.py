"""Which files to ship: globs (with `**`) minus excludes, noticed fast, checked often.

The periodic rescan is the source of truth (it works on every filesystem); watchdog's
inotify events only make it sooner, and tell harvesters their file grew.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Callable, Iterable

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
    """watchdog on each pattern's static root; calls `notify(path)` from its thread."""

    def __init__(self, patterns: Iterable[str], notify: Callable[[str], None]) -> None:
        self.roots: dict[str, bool] = {}
        for pattern in patterns:
            root, recursive = static_root(pattern)
            self.roots[root] = self.roots.get(root, False) or recursive
        self.notify = notify
        self.observer: object | None = None

    def start(self) -> list[str]:
        """Start watching; returns problems (inotify limits, missing dirs) — polling covers."""
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:  # pragma: no cover - a broken install
            return [f"watchdog unavailable ({exc}); relying on the rescan"]

        notify = self.notify

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in _READ_ONLY:
                    return
                if not event.is_directory or event.event_type == "created":
                    notify(str(event.src_path))
                    dest = getattr(event, "dest_path", "")
                    if dest:
                        notify(str(dest))

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

    def stop(self) -> None:
        observer = self.observer
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join(5)  # type: ignore[attr-defined]
            self.observer = None
