"""The data dir under attack: a registry truncated, garbage or empty between two runs, a
tmp file left by an interrupted write, the disk full. logship keeps shipping, says so,
recovers, and the index holds every line exactly once."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.logship.registry import FILENAME
from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import (
    App,
    messages,
    sent_items,
    shipped,
    sized,
    stop_cleanly,
    wait_quietly,
)
from tests.faults.writer import line
from tests.helpers import exactly_once, registry, wait_for, write_lines

Shippers = Callable[..., LogshipProcess]
DAMAGES = ["truncated", "garbage", "empty", "interrupted-tmp", "newer-tmp"]


def run_once(es: StandInProcess, tmp: Path, shippers: Shippers, total: int) -> LogshipProcess:
    shipper = shippers(es, tmp).start()
    shipped(es, total, timeout=120)
    stop_cleanly(shipper)
    return shipper


@pytest.mark.parametrize("damage", DAMAGES)
@sized(dict(lines=2000), dict(lines=200_000))
def test_a_damaged_registry_or_a_left_over_tmp_file_between_runs(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any, damage: str
) -> None:
    log = tmp / "logs" / "app.log"
    saved, tmp_file = tmp / "data" / FILENAME, tmp / "data" / f"{FILENAME}.tmp"
    first = [line("first", s, 40) for s in range(size.lines)]
    write_lines(log, first)
    run_once(es, tmp, shippers, len(first))
    good = saved.read_bytes()
    resume_at = log.stat().st_size
    if damage == "newer-tmp":  # a later state whose rename a crash interrupted
        middle = [line("middle", s, 40) for s in range(size.lines // 2)]
        write_lines(log, middle)
        run_once(es, tmp, shippers, len(first) + len(middle))
        first += middle
        resume_at = log.stat().st_size
        tmp_file.write_bytes(saved.read_bytes())
        saved.write_bytes(good)
    elif damage == "interrupted-tmp":  # half written, never renamed
        tmp_file.write_bytes(good[: len(good) // 2])
    else:
        saved.write_bytes({"truncated": good[: len(good) // 2], "empty": b"",
                           "garbage": b"\x00\xff\xfe garbage {{{" * 50}[damage])  # fmt: skip
    second = [line("second", s, 40) for s in range(size.lines // 2)]
    write_lines(log, second)
    sent_before = sent_items(es)
    shipper = run_once(es, tmp, shippers, len(first) + len(second))
    exactly_once(messages(es), first + second)
    warnings = shipper.logged("registry")
    (opened,) = shipper.logged("file opened")
    if damage in ("truncated", "garbage", "empty"):
        # "logship then starts every file again from its beginning, with a warning, and
        # Elasticsearch skips what it has"
        (warning,) = warnings
        assert warning["log.level"] == "warning" and "registry damaged" in warning["error"]
        assert opened["offset"] == 0
        assert list((tmp / "data").glob(f"{FILENAME}.damaged-*")), "the damaged copy is gone"
    else:  # resumed where the newest complete state says, nothing sent again
        if damage == "interrupted-tmp":
            (warning,) = warnings
            assert "ignored an interrupted write" in warning["error"]
        else:
            assert not warnings
        assert opened["offset"] == resume_at
        assert sent_items(es) - sent_before == len(second)
    assert not tmp_file.exists()
    assert registry(tmp)[str(log)]["offset"] == log.stat().st_size


@pytest.fixture
def small_data_dir(tmp: Path) -> Iterator[Path]:
    """tmp/data on a 64 KiB tmpfs, so that it can be filled up."""
    data = tmp / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(data)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full disk: {mounted.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def fill(directory: Path) -> Path:
    """Use up every byte of `directory`'s filesystem; the file that did it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="No space left"):
        (directory / "probe").write_bytes(b"x" * 4096)
    return filler


@sized(
    dict(lines=8000, rate=1000, full_for=2.0, catch_up=60),
    dict(lines=180_000, rate=1500, full_for=60.0, catch_up=300),
)
def test_a_full_data_dir_does_not_stop_shipping_and_the_registry_is_saved_once_freed(
    es: StandInProcess, tmp: Path, shippers: Shippers, small_data_dir: Path, size: Any
) -> None:
    log = tmp / "logs" / "app.log"
    shipper = shippers(es, tmp).start()
    app = App(log, count=size.lines, rate=size.rate, width=40)
    wait_for(lambda: (small_data_dir / FILENAME).exists(), what="a first registry save")
    filler = fill(small_data_dir)
    wait_for(lambda: shipper.logged("registry not saved: will retry"), what="the error said")
    (first, *_) = shipper.logged("registry not saved: will retry")
    assert first["log.level"] == "error" and first["error"] == os.strerror(errno.ENOSPC)
    stuck_at = registry(tmp)[str(log)]["offset"]
    es.control("fail_items", status=400, count=1)  # one event for the (full) dead letter
    wait_for(lambda: shipper.logged("dead letter not written: retrying"), what="a dead letter")
    before = es.count()
    wait_for(lambda: es.count() > before + size.rate, timeout=30, what="shipping to go on")
    wait_quietly(size.full_for)  # the disk stays full a while longer
    assert registry(tmp)[str(log)]["offset"] == stuck_at  # nothing could be saved
    filler.unlink()
    expected = app.expected()
    shipped(es, len(expected) - 1, timeout=size.catch_up)
    wait_for(lambda: registry(tmp)[str(log)]["offset"] == log.stat().st_size,
             what="the registry saved again")  # fmt: skip
    wait_for(lambda: shipper.logged("registry saved again"), what="the recovery said")
    # Said once when it started failing, not once a second while the disk stayed full.
    assert len(shipper.logged("registry not saved: will retry")) <= 3  # first + a minute
    stop_cleanly(shipper)
    letters = (small_data_dir / "dead-letter.ndjson").read_text().splitlines()
    (dead,) = [json.loads(x) for x in letters]
    lost_to_the_dead_letter = json.loads(dead["document"])["message"]
    assert dead["status"] == 400
    exactly_once(messages(es), [m for m in expected if m != lost_to_the_dead_letter])
    assert lost_to_the_dead_letter in expected
