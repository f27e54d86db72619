"""inotify read on the event loop, against real files and directories: what is reported,
once per read, for roots that exist, appear later, or hold new subdirectories."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from agents.logship.discovery import Watcher
from agents.logship.inotify import IN_IGNORED, IN_MODIFY, IN_Q_OVERFLOW, Inotify

pytestmark = [pytest.mark.asyncio, pytest.mark.integration]


class Seen:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.overflows = 0

    def notify(self, path: str) -> None:
        self.paths.append(path)

    def overflow(self) -> None:
        self.overflows += 1


@pytest_asyncio.fixture
async def watched() -> AsyncIterator[tuple[Inotify, Seen]]:
    """An inotify reader on this test's loop, and what it reported."""
    seen = Seen()
    inotify = Inotify(asyncio.get_running_loop(), seen.notify, seen.overflow)
    yield inotify, seen
    inotify.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def settle() -> None:
    """Long enough for any event the kernel queued to be read by the loop."""
    await asyncio.sleep(0.2)


async def test_file_changes_in_a_watched_directory_are_reported_by_path(
    tmp_path: Path, watched: tuple[Inotify, Seen]
) -> None:
    inotify, seen = watched
    assert inotify.watch(str(tmp_path), recursive=False) == []
    log = tmp_path / "app.log"
    log.write_text("one\n")  # create, modify, close_write
    await until(lambda: str(log) in seen.paths, "the new file")
    seen.paths.clear()
    log.rename(tmp_path / "app.log.1")  # rotation: both names
    await until(lambda: {str(log), str(tmp_path / "app.log.1")} <= set(seen.paths), "both")
    seen.paths.clear()
    (tmp_path / "app.log.1").unlink()
    await until(lambda: str(tmp_path / "app.log.1") in seen.paths, "the deletion")
    assert seen.overflows == 0


async def test_reading_a_file_is_no_change_and_many_writes_are_one_report(
    tmp_path: Path, watched: tuple[Inotify, Seen]
) -> None:
    inotify, seen = watched
    log = tmp_path / "app.log"
    log.write_text("one\n")
    inotify.watch(str(tmp_path), recursive=False)
    log.read_bytes()  # open, read, close without writing: logship's own access
    await settle()
    assert seen.paths == []
    with log.open("a") as f:  # the loop does not run meanwhile: one read takes them all
        for i in range(500):
            f.write(f"line {i}\n")
            f.flush()
    await until(lambda: seen.paths != [], "the writes")
    await settle()
    assert seen.paths == [str(log)]


async def test_recursive_roots_follow_new_subdirectories(
    tmp_path: Path, watched: tuple[Inotify, Seen]
) -> None:
    inotify, seen = watched
    (tmp_path / "old" / "deep").mkdir(parents=True)
    assert inotify.watch(str(tmp_path), recursive=True) == []
    existing = tmp_path / "old" / "deep" / "a.log"
    existing.write_text("x\n")
    await until(lambda: str(existing) in seen.paths, "a file in an existing subdirectory")
    new_dir = tmp_path / "pod-2"
    new_dir.mkdir()
    await until(lambda: str(new_dir) in seen.paths, "the new directory")
    new_file = new_dir / "b.log"
    new_file.write_text("y\n")
    await until(lambda: str(new_file) in seen.paths, "a file in the new directory")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "c").mkdir()
    await settle()
    moved.rename(tmp_path / "old" / "moved-in")  # a tree moved in is watched too
    await until(lambda: str(tmp_path / "old" / "moved-in") in seen.paths, "the moved tree")
    inner = tmp_path / "old" / "moved-in" / "c" / "d.log"
    inner.write_text("z\n")
    await until(lambda: str(inner) in seen.paths, "a file deep in the moved tree")


async def test_a_flat_root_reports_new_subdirectories_but_not_their_files(
    tmp_path: Path, watched: tuple[Inotify, Seen]
) -> None:
    inotify, seen = watched
    inotify.watch(str(tmp_path), recursive=False)
    (tmp_path / "sub").mkdir()
    await until(lambda: str(tmp_path / "sub") in seen.paths, "the subdirectory")
    (tmp_path / "sub" / "x.log").write_text("x\n")
    await settle()
    assert str(tmp_path / "sub" / "x.log") not in seen.paths


async def test_a_root_that_appears_later_is_watched_after_the_next_refresh(tmp_path: Path) -> None:
    seen = Seen()
    root = tmp_path / "logs"
    watcher = Watcher([f"{root}/*.log"], seen.notify, asyncio.get_running_loop())
    try:
        problems = watcher.start()
        assert problems == [f"{root}: not a directory (yet); watched once it is one"]
        root.mkdir()
        assert watcher.refresh() == []
        (root / "app.log").write_text("x\n")
        await until(lambda: str(root / "app.log") in seen.paths, "the file in the late root")
        assert watcher.refresh() == []  # once watched, not again
    finally:
        watcher.stop()


async def test_overflow_and_forgotten_watches_from_the_kernels_own_bytes(tmp_path: Path) -> None:
    """The kernel's records, written to a pipe the watcher reads instead: an overflow is
    reported as such, an event for a watch already removed (IN_IGNORED) is not."""
    seen = Seen()
    loop = asyncio.get_running_loop()
    inotify = Inotify(loop, seen.notify, seen.overflow)
    loop.remove_reader(inotify.fd)
    os.close(inotify.fd)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    inotify.fd = read_end
    loop.add_reader(read_end, inotify._readable)
    inotify.dirs[7], inotify.wds[str(tmp_path)] = str(tmp_path), 7

    def record(wd: int, mask: int, name: bytes = b"") -> bytes:
        padded = name + b"\0" * (-len(name) % 16 or (16 if name else 0))
        return struct.pack("iIII", wd, mask, 0, len(padded)) + padded

    try:
        os.write(write_end, record(7, IN_MODIFY, b"a.log") + record(-1, IN_Q_OVERFLOW))
        await until(lambda: seen.overflows == 1, "the overflow")
        assert seen.paths == [str(tmp_path / "a.log")]
        os.write(write_end, record(7, IN_IGNORED) + record(7, IN_MODIFY, b"b.log"))
        await settle()
        assert seen.paths == [str(tmp_path / "a.log")]
        assert not inotify.watching(str(tmp_path))
    finally:
        inotify.close()
        os.close(write_end)


async def test_a_root_deleted_and_made_again_is_watched_again_after_a_refresh(
    tmp_path: Path,
) -> None:
    seen = Seen()
    root = tmp_path / "logs"
    root.mkdir()
    watcher = Watcher([f"{root}/*.log"], seen.notify, asyncio.get_running_loop())
    try:
        assert watcher.start() == []
        assert watcher.inotify is not None
        root.rmdir()
        await until(lambda: not watcher.inotify.watching(str(root)), "the watch to go")
        root.mkdir()
        assert watcher.refresh() == []
        (root / "app.log").write_text("x\n")
        await until(lambda: str(root / "app.log") in seen.paths, "the file in the new root")
    finally:
        watcher.stop()


async def test_a_directory_renamed_inside_a_recursive_root_goes_by_its_new_name(
    tmp_path: Path, watched: tuple[Inotify, Seen]
) -> None:
    inotify, seen = watched
    (tmp_path / "a" / "inner").mkdir(parents=True)
    inotify.watch(str(tmp_path), recursive=True)
    (tmp_path / "a").rename(tmp_path / "b")
    await until(lambda: str(tmp_path / "b") in seen.paths, "the new name")
    inner = tmp_path / "b" / "inner" / "x.log"
    inner.write_text("x\n")
    await until(lambda: str(inner) in seen.paths, "a file under the new name")
    assert not inotify.watching(str(tmp_path / "a"))
    assert not inotify.watching(str(tmp_path / "a" / "inner"))
