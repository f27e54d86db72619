"""Linux inotify read on the event loop: directory watches, no threads.

watchdog runs two threads per observer and builds an event object for each write the app
makes; at 10,000 lines/s that, and handing each path over to the event loop, cost ~50%
of a core. Here the kernel's events are read on the loop itself when the inotify file
descriptor is readable: one read returns every pending event, the kernel merges repeats
of the same event that were not read yet, and a path changed several times in one read
is reported once.

Only directories are watched (a file's events come with its name from its directory):
each root, and with `recursive` every directory below it, including those created or
moved in later. What cannot be watched is returned as a problem; the periodic rescan
covers it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Callable

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# What changes a file or a directory's list of files; opens and reads without writes
# (logship's own) are not asked for.
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
        | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)  # fmt: skip
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
READ_BYTES = 64 * 1024
# After each read, the descriptor is left alone this long: a file written 10,000 times a
# second would otherwise wake the loop for each write. Meanwhile the kernel queues the
# events and merges repeats, so one read takes them all; a change is seen <= 10 ms later.
PAUSE = 0.01


class InotifyUnavailable(OSError):
    """No inotify here (not Linux, or the per-user instance limit is reached)."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def _why(code: int) -> str:
    if code == errno.ENOSPC:
        return "the inotify watch limit is reached (fs.inotify.max_user_watches)"
    return os.strerror(code)


class Inotify:
    """Watches directories; calls `notify(path)` on the loop for each path that changed
    (a file, or a directory created or moved in), and `overflow()` when the kernel's
    queue overflowed and events were lost."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        notify: Callable[[str], None],
        overflow: Callable[[], None],
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        try:
            self._lib = _libc()
            fd = self._lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError) as exc:  # no libc symbol: not Linux
            raise InotifyUnavailable(errno.ENOSYS, f"no inotify here ({exc})") from None
        if fd < 0:
            code = ctypes.get_errno()
            raise InotifyUnavailable(code, f"cannot start inotify: {os.strerror(code)}")
        self.fd = fd
        self.loop, self.notify, self.overflow = loop, notify, overflow
        # The loop calls _readable: what it raises would only reach the loop's exception
        # handler, and the watch would end in silence.
        self.on_error = on_error
        self.dirs: dict[int, str] = {}  # watch descriptor -> directory
        self.wds: dict[str, int] = {}  # and back
        self.recursive: dict[str, bool] = {}  # each root -> are its subdirectories watched
        loop.add_reader(fd, self._readable)

    # --- watches ---------------------------------------------------------------------------

    def watch(self, root: str, recursive: bool) -> list[str]:
        """Watch `root` (and, if `recursive`, every directory below it); → problems."""
        self.recursive[root] = self.recursive.get(root, False) or recursive
        problem = self._add(root)
        if problem or not recursive:
            return [problem] if problem else []
        return self._add_below(root)

    def watching(self, directory: str) -> bool:
        return directory in self.wds

    def _add(self, directory: str) -> str | None:
        wd = self._lib.inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            return f"{directory}: cannot watch ({_why(ctypes.get_errno())}); relying on the rescan"
        # A directory moved within a recursive root is added again under its new name: the
        # same inode, so the same wd, and its old name is forgotten.
        old = self.dirs.get(wd)
        if old is not None and old != directory and self.wds.get(old) == wd:
            del self.wds[old]
        self.dirs[wd] = directory
        self.wds[directory] = wd
        return None

    def _add_below(self, top: str) -> list[str]:
        problems: list[str] = []
        for parent, subdirs, _ in os.walk(top, onerror=None, followlinks=False):
            for name in subdirs:
                problem = self._add(os.path.join(parent, name))
                if problem:
                    problems.append(problem)
                    if "watch limit" in problem:
                        return problems  # every further one would fail the same way
        return problems

    def _under_recursive_root(self, directory: str) -> bool:
        return any(
            deep and (directory == root or directory.startswith(root.rstrip(os.sep) + os.sep))
            for root, deep in self.recursive.items()
        )

    # --- events ----------------------------------------------------------------------------

    def _readable(self) -> None:
        self.loop.remove_reader(self.fd)
        self.loop.call_later(PAUSE, self._resume)
        try:
            self._read()
        except Exception as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)

    def _resume(self) -> None:
        if self.fd >= 0:
            self.loop.add_reader(self.fd, self._readable)

    def _read(self) -> None:
        changed: dict[str, None] = {}  # in order, once each
        lost = False
        while True:
            try:
                data = os.read(self.fd, READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                return
            if not data:
                break
            offset = 0
            while offset + HEADER.size <= len(data):
                wd, mask, _, length = HEADER.unpack_from(data, offset)
                offset += HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & IN_Q_OVERFLOW:
                    lost = True
                    continue
                directory = self.dirs.get(wd)
                if directory is None:
                    continue
                if mask & IN_IGNORED:  # the directory is gone, or unmounted
                    del self.dirs[wd]
                    if self.wds.get(directory) == wd:
                        del self.wds[directory]
                    continue
                if not name:  # the watched directory itself moved or was deleted
                    changed[directory] = None
                    continue
                path = os.path.join(directory, os.fsdecode(name))
                if mask & IN_ISDIR:
                    if mask & (IN_CREATE | IN_MOVED_TO):
                        if self._under_recursive_root(path):
                            self._add(path)
                            self._add_below(path)
                        changed[path] = None
                    continue
                changed[path] = None
            if len(data) < READ_BYTES // 2:
                break  # drained (a full buffer may have more behind it)
        if lost:
            self.overflow()
        for path in changed:
            self.notify(path)

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
