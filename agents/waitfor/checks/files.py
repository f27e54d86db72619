"""file:///path (exists, optionally non-empty) and unix:///path (a socket that accepts)."""

from __future__ import annotations

import os
import socket
import stat

from agents.waitfor.checks import BaseCheck, BuildContext, NotReady
from agents.waitfor.targets import Target


class FileCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.path = target.path
        self.nonempty = target.options.bool("nonempty")

    async def probe(self) -> str:
        import asyncio

        # In a thread: a stat on a hung network volume must not freeze the deadline.
        return await asyncio.to_thread(self.probe_now, 0)

    def probe_now(self, limit: float) -> str:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise NotReady(f"{self.path} does not exist") from None
        except OSError as exc:
            raise NotReady(f"cannot stat {self.path}: {exc.strerror}") from None
        if self.nonempty and stat.S_ISREG(info.st_mode) and info.st_size == 0:
            raise NotReady(f"{self.path} is empty")
        if self.nonempty and stat.S_ISDIR(info.st_mode) and not os.listdir(self.path):
            raise NotReady(f"directory {self.path} is empty")
        return f"{self.path} exists ({info.st_size} bytes)"


class UnixCheck(BaseCheck):
    def __init__(self, target: Target) -> None:
        self.path = target.path

    async def probe(self) -> str:
        import asyncio

        from agents.waitfor.checks._net import close_stream, describe_oserror

        try:
            _, writer = await asyncio.open_unix_connection(self.path)
        except FileNotFoundError:
            raise NotReady(f"socket {self.path} does not exist") from None
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise NotReady(describe_oserror(exc, self.path)) from None
        await close_stream(writer)
        return f"connected to {self.path}"

    def probe_now(self, limit: float) -> str:
        """Blocking, for the first look before any event loop exists (see cli)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(limit)
            try:
                sock.connect(self.path)
            except OSError as exc:
                raise NotReady(str(exc)) from None
        return f"connected to {self.path}"


def build(target: Target, ctx: BuildContext) -> FileCheck | UnixCheck:
    return FileCheck(target) if target.scheme == "file" else UnixCheck(target)
