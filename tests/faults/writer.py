"""An app that logs: `python writer.py '<json spec>'` appends numbered lines to a file at a
steady rate and rotates it the way logrotate would; on exit it prints what it did as JSON.

The spec: `path`, `prefix`, `count` (lines; 0: until SIGTERM), `rate` (lines/s),
`width` (padding per line), `batch` (lines per write), `rotate` (none, rename,
copytruncate, truncate) and `every` (lines between rotations); for long runs (the soak),
`keep` (rotated copies kept, the older ones deleted as logrotate's `rotate N` does; 0:
all kept), `progress` (a file rewritten every 0.1 s or so with the number of lines
written so far) and `orphan_exit` (stop when the process that started it is gone, so a
killed driver leaves no writer behind). Each line is
`line(prefix, seq, width)`, so a test knows every line that was written. For the truncating
rotations the summary lists, per destroyed content, the first and last sequence number it
held: the lines the README allows to be lost are the tail of those.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time


def line(prefix: str, seq: int, width: int = 0) -> str:
    return f"{prefix} {seq:08d} " + "x" * width


def _report(progress: str, written: int) -> None:
    """The number of lines written, for a reader that polls: replaced atomically."""
    with open(f"{progress}.tmp", "w") as fh:
        fh.write(str(written))
    os.replace(f"{progress}.tmp", progress)


def main(spec: dict) -> dict:  # type: ignore[type-arg]
    path, prefix = spec["path"], spec["prefix"]
    count, rate = int(spec.get("count", 0)), float(spec.get("rate", 1000))
    width, batch = int(spec.get("width", 0)), max(1, int(spec.get("batch", 10)))
    rotate, every = spec.get("rotate", "none"), int(spec.get("every", 0))
    keep, progress = int(spec.get("keep", 0)), spec.get("progress")
    parent = os.getppid() if spec.get("orphan_exit") else None
    reported = 0.0
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    rotations, destroyed = 0, []
    content_from = 0  # first seq of the file's current content
    seq = 0
    started = time.monotonic()
    while not stop and (count == 0 or seq < count):
        n = batch if count == 0 else min(batch, count - seq)
        if every:
            n = min(n, every - (seq - content_from))
        os.write(fd, "".join(line(prefix, s, width) + "\n" for s in range(seq, seq + n)).encode())
        seq += n
        if every and seq - content_from >= every and (count == 0 or seq < count):
            rotations += 1
            if rotate == "rename":  # logrotate's default; the app reopens its log
                os.rename(path, f"{path}.{rotations}")
                os.close(fd)
                fd = os.open(path, flags, 0o644)
            elif rotate in ("copytruncate", "truncate"):
                if rotate == "copytruncate":
                    with open(path, "rb") as src, open(f"{path}.{rotations}", "wb") as dst:
                        dst.write(src.read())
                os.truncate(path, 0)  # the app's O_APPEND descriptor writes at 0 again
                destroyed.append([content_from, seq - 1])
            if keep and rotations > keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}.{rotations - keep}")
            content_from = seq
        now = time.monotonic()
        if progress and now - reported >= 0.1:
            _report(progress, seq)
            reported = now
        if parent is not None and os.getppid() != parent:
            break
        pause = started + seq / rate - now
        if pause > 0:
            time.sleep(pause)
    os.close(fd)
    if progress:
        _report(progress, seq)
    return {"written": seq, "rotations": rotations, "destroyed": destroyed}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
