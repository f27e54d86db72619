"""Who still writes a file, seen through the real /proc: writer processes, readers, a
rotated file still held, a process that ended; and whether logship can see at all, from
another uid and from a process namespace of its own (unshare, as a pod without
shareProcessNamespace)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.logship.writers import look_around, writers

HOLD = (
    "import sys, time; f = open(sys.argv[1], sys.argv[2]); print('open', flush=True); "
    "time.sleep(60)"
)
NOBODY = 65534


def file_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()
        if p.stdout is not None:
            p.stdout.close()


def hold(procs: list[subprocess.Popen[str]], path: Path, mode: str, **kw: object) -> int:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode],
                         stdout=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]  # fmt: skip
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline() == "open\n"
    return p.pid


def test_writers_are_the_processes_holding_the_file_for_writing(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    log, other = tmp_path / "app.log", tmp_path / "other.log"
    log.write_text("")
    other.write_text("")
    appender = hold(holders, log, "a")
    hold(holders, log, "r")  # a reader (logship itself, or tail -f) is no writer
    hold(holders, other, "a")  # writes another file
    updater = hold(holders, log, "r+")
    assert writers([file_id(log)]) == {appender, updater}
    # rotation: the app still holds the renamed file, and still writes it
    rotated = tmp_path / "app.log.1"
    ident = file_id(log)
    log.rename(rotated)
    assert writers([ident]) == {appender, updater}
    holders[0].kill()
    holders[0].wait()
    assert writers([ident]) == {updater}
    assert writers([]) == set()


def test_logship_itself_is_never_a_writer(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    with open(log, "a"):
        assert writers([file_id(log)]) == set()


def forked(uid: int, job: Callable[[], object]) -> tuple[int, object]:
    """Run `job` in a forked child as `uid` (no exec: the interpreter under /root is not
    another user's to run); its result comes back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.write(write, json.dumps(job()).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        answer = json.loads(fh.readline())
    os.waitpid(pid, 0)
    return pid, answer


def app_as(uid: int, log: Path) -> int:
    """An app of `uid` that appends to `log`: forked, made `uid`, the file opened, then
    exec'd (sleep) as an app is: exec makes its /proc/PID/fd readable by its uid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.set_inheritable(fd, True)
            os.write(write, b"open\n")
            os.execv("/bin/sleep", ["sleep", "60"])
        finally:
            os._exit(1)
    os.close(write)
    with os.fdopen(read) as fh:
        assert fh.readline() == "open\n"
    return pid


def sight() -> dict[str, object]:
    s = look_around()
    return {"visible": s.visible, "why": s.why}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to look as another uid")
def test_another_uid_sees_processes_but_not_their_files() -> None:
    _, seen = forked(NOBODY, sight)
    assert isinstance(seen, dict) and seen["visible"] is False
    assert "not readable (run as the app's uid;" in str(seen["why"])
    # an app of the same uid: its files are readable, and it is a writer (in a folder
    # the other uid can reach: pytest's tmp_path is under a root-only one)
    shared = Path(tempfile.mkdtemp(prefix="logship-writers-", dir="/tmp"))
    shared.chmod(0o777)
    log = shared / "app.log"
    app = app_as(NOBODY, log)
    try:
        _, seen = forked(NOBODY, sight)
        assert isinstance(seen, dict) and seen["visible"] is True, seen
        _, found = forked(NOBODY, lambda: sorted(writers([file_id(log)])))
        assert found == [app]
    finally:
        os.kill(app, signal.SIGKILL)
        os.waitpid(app, 0)
        shutil.rmtree(shared)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare(1) for a process namespace")  # fmt: skip
def test_a_process_namespace_of_its_own_sees_no_app() -> None:
    probe = ("import json; from agents.logship.writers import look_around; "
             "print(json.dumps(look_around().why))")  # fmt: skip
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                           "-c", probe], capture_output=True, text=True, timeout=60,
                          check=True)  # fmt: skip
    assert json.loads(done.stdout) == (
        "no other process is visible: the app runs in another process namespace "
        "(shareProcessNamespace: true shares it)"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="as root every process's files are readable")
def test_root_in_a_shared_namespace_sees_the_other_processes() -> None:
    sight = look_around()
    assert sight.visible and "other processes visible" in sight.why
