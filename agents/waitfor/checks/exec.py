"""exec:COMMAND — ready when the command exits 0; the escape hatch for anything else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.targets import Target

_OUTPUT_LIMIT = 64 * 1024


class ExecCheck(BaseCheck):
    def __init__(self, argv: tuple[str, ...]) -> None:
        self.argv = argv

    async def probe(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group, so a timeout kills the command's children too.
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            output = b""
            # Drain everything so the command never blocks on a full pipe; keep the tail,
            # where the reason for a failure usually is.
            while chunk := await proc.stdout.read(_OUTPUT_LIMIT):
                output = (output + chunk)[-_OUTPUT_LIMIT:]
            code = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        lines = output.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1].strip() if lines else ""
        if code != 0:
            why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise NotReady(f"{why}" + (f": {last}" if last else ""))
        return "exit status 0" + (f": {last}" if last else "")


def build(target: Target, ctx: BuildContext) -> ExecCheck:
    program = target.command[0]
    if shutil.which(program) is None:
        raise target.error(f"command {program!r} not found or not executable (PATH lookup)")
    return ExecCheck(target.command)
