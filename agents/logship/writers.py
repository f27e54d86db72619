"""Who still writes logship's files: the processes holding them open for writing, seen
through /proc (issue 12's drain waits for them instead of for a quiet timer).

logship can see them when it shares the app's process namespace (a pod with
`shareProcessNamespace: true`, compose's `pid: "service:app"`) and may read their
`/proc/PID/fd` (the same uid, or CAP_SYS_PTRACE). `look_around()` says once whether it
can, and why not; `writers()` answers, for a set of files (device, inode), which
processes have one of them open for writing: a file renamed by rotation counts as long
as the app still holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

FileId = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True)
class Sight:
    visible: bool
    why: str  # one line for the log: what logship sees, or why it sees nothing


def _pids(proc: str) -> list[int]:
    try:
        return [int(name) for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return []


def _ours(proc: str) -> set[int]:
    """This process and its ancestors: never the app."""
    mine: set[int] = set()
    pid = os.getpid()
    while pid > 0 and pid not in mine:
        mine.add(pid)
        try:
            with open(f"{proc}/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return mine


def look_around(proc: str = "/proc") -> Sight:
    """Whether another process's open files can be read here, and why not if not."""
    others = [pid for pid in _pids(proc) if pid not in _ours(proc)]
    if not others:
        return Sight(False, "no other process is visible: the app runs in another process "
                            "namespace (shareProcessNamespace: true shares it)")  # fmt: skip
    refused = 0
    for pid in others:
        try:
            os.listdir(f"{proc}/{pid}/fd")
        except PermissionError:
            refused += 1
        except OSError:
            continue  # gone meanwhile
        else:
            return Sight(True, f"{len(others)} other processes visible, their open files readable")
    return Sight(False, f"{refused} other processes visible but their open files are not "
                        "readable (run as the app's uid; or the app has exited, leaving "
                        "the pod's pause process)")  # fmt: skip


def _writing(proc: str, pid: int, fd: str) -> bool:
    """The fd was opened for writing (O_WRONLY or O_RDWR), from /proc/PID/fdinfo/FD."""
    try:
        with open(f"{proc}/{pid}/fdinfo/{fd}") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    except (OSError, ValueError, IndexError):
        pass
    return False


def writers(files: Iterable[FileId], proc: str = "/proc") -> set[int]:
    """The processes (other than logship) with one of `files` open for writing. What
    cannot be read (a process that went away, a refused fd table) is not counted."""
    wanted = set(files)
    found: set[int] = set()
    if not wanted:
        return found
    mine = _ours(proc)
    for pid in _pids(proc):
        if pid in mine:
            continue
        try:
            fds = os.listdir(f"{proc}/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{proc}/{pid}/fd/{fd}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in wanted and _writing(proc, pid, fd):
                found.add(pid)
                break
    return found
