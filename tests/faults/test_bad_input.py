"""Bad bytes and bad files: NUL, invalid UTF-8, a lone CR, CRLF, a line of many MiB with
and without its newline, empty files, symlink loops (file and directory), a dangling
link, an unreadable file. A clear log line where the README promises one, no crash, exit 0
at SIGTERM, and every other line exactly once."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.testing.processes import LogshipProcess, StandInProcess
from tests.faults.harness import docs, messages, shipped, sized, stop_cleanly
from tests.helpers import exactly_once, wait_for, write_lines

Shippers = Callable[..., LogshipProcess]
MiB = 1024 * 1024


@sized(dict(reps=2000), dict(reps=25_000))
def test_nul_invalid_utf8_lone_cr_crlf_empty_files_and_symlink_loops(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    logs = tmp / "logs"
    raw, expected = bytearray(), []
    for i in range(size.reps):
        raw += b"nul %d \x00 inside\ninvalid %d \xff\xfe utf8\nlone %d \r cr\ncrlf %d\r\n" % (
            (i,) * 4
        )
        expected += [f"nul {i} \x00 inside", f"invalid {i} \ufffd\ufffd utf8",
                     f"lone {i} \r cr", f"crlf {i}"]  # fmt: skip
    (logs / "bytes.log").write_bytes(bytes(raw))
    (logs / "empty.log").touch()  # stays empty
    (logs / "filled-later.log").touch()
    (logs / "self.log").symlink_to(logs / "self.log")  # a symlink loop
    (logs / "dangling.log").symlink_to(tmp / "nowhere")
    (logs / "sub").mkdir()
    (logs / "sub" / "deep.log").write_text("deep 1\n")
    (logs / "sub" / "up").symlink_to(logs)  # a directory loop: ** meets every file again
    expected.append("deep 1")
    shipper = shippers(es, tmp, "--scan-interval", "300ms", glob="**/*.log").start()
    later = [f"later {i}" for i in range(100)]
    write_lines(logs / "filled-later.log", later)
    expected += later
    shipped(es, len(expected), timeout=120)
    skipped = {e["error"] for e in shipper.logged("skipping a path")}
    assert f"{logs / 'self.log'}: Too many levels of symbolic links" in skipped
    assert f"{logs / 'dangling.log'}: No such file or directory" in skipped
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)
    stored = {d["message"]: d for d in docs(es)}
    assert stored["deep 1"]["log"]["file"]["path"].endswith("deep.log")


def write_slowly(path: Path, data: bytes, chunk: int = 256 * 1024) -> None:
    """Append `data` a chunk at a time, as an app that is still writing the line."""
    with path.open("ab") as fh:
        for start in range(0, len(data), chunk):
            fh.write(data[start : start + chunk])
            fh.flush()
            time.sleep(0.005)


@sized(dict(mib=5), dict(mib=50))
def test_a_line_of_many_mib_is_truncated_and_flagged_with_or_without_newline(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    """ "Lines over --max-line-bytes keep their first bytes and are flagged truncated";
    a last line without its newline is shipped as it is at drain — truncated too."""
    log = tmp / "logs" / "app.log"
    before = [f"before {i}" for i in range(100)]
    after = [f"after {i}" for i in range(100)]
    huge = [b"huge-%d " % n + b"z" * (size.mib * MiB) for n in (1, 2)]
    write_lines(log, before)
    shipper = shippers(es, tmp).start()  # default --max-line-bytes: 1MiB
    write_slowly(log, huge[0] + b"\n")
    write_lines(log, after)
    write_slowly(log, huge[1])  # the app died in the middle of it: no newline
    shipped(es, len(before) + 1 + len(after), timeout=120)
    stop_cleanly(shipper)  # the drain ships the partial last line
    kept = [h[:MiB].decode() for h in huge]
    exactly_once(messages(es), [*before, kept[0], *after, kept[1]])
    for doc in docs(es):
        flags = doc["log"].get("flags", [])
        assert ("truncated" in flags) == doc["message"].startswith("huge-"), doc["message"][:20]


@sized(dict(lines=2000), dict(lines=100_000))
def test_an_unreadable_file_is_reported_once_and_the_rest_ships(
    es: StandInProcess, tmp: Path, shippers: Shippers, size: Any
) -> None:
    secret, log = tmp / "logs" / "secret.log", tmp / "logs" / "app.log"
    write_lines(secret, ["never readable"])
    secret.chmod(0o000)
    shipper = shippers(es, tmp, "--scan-interval", "200ms")
    if os.geteuid() == 0:
        # root reads anything: logship runs as root without the two capabilities that let
        # it (still root, so it can read a checkout only root may enter, as mktemp -d makes)
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: chmod 000 cannot stop root")
        no_dac = "-dac_override,-dac_read_search"
        shipper.args[:0] = [setpriv, f"--bounding-set={no_dac}", f"--inh-caps={no_dac}"]
    expected = [f"line {i}" for i in range(size.lines)]
    write_lines(log, expected[: size.lines // 2])
    shipper.start()
    write_lines(log, expected[size.lines // 2 :])
    shipped(es, len(expected), timeout=120)
    wait_for(lambda: shipper.logged("cannot open"), what="the unreadable file said")
    time.sleep(1.0)  # several rescans: the same problem is not said again each time
    (said,) = shipper.logged("cannot open")
    assert said["path"] == str(secret) and said["error"] == "Permission denied"
    assert said["log.level"] == "warning"
    stop_cleanly(shipper)
    exactly_once(messages(es), expected)
