"""Readiness checks, one module per kind of target, imported only when a target needs it.

Each module has `build(target, ctx) -> Check`: it validates the target's options at
start-up (a bad option is a configuration error, exit 2) and returns an object whose
`probe()` returns a short description of what answered, or raises `NotReady(reason)`.
The runner bounds every probe with the attempt timeout.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing's own flag costs its import at start-up
if TYPE_CHECKING:
    from typing import Protocol

    from agents._log import Logger
    from agents.waitfor.targets import Target


class NotReady(Exception):
    """The target answered, or failed to, in a way that means "not ready yet"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Failed(Exception):
    """A final outcome: the target will never be ready (a Job that failed). waitfor stops
    waiting for it and exits 1 with the reason, rather than time out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


if TYPE_CHECKING:

    class Check(Protocol):
        async def probe(self) -> str: ...

        async def close(self) -> None: ...


class BaseCheck:
    async def close(self) -> None:
        return None


class BuildContext:
    """What a check may need from the run beyond its own target."""

    def __init__(
        self,
        log: Logger,
        resolv_conf: str = "/etc/resolv.conf",
        kubeconfig: str = "",
        attempt_timeout: float = 5.0,
    ) -> None:
        self.log = log
        self.resolv_conf = resolv_conf
        self.kubeconfig = kubeconfig  # k8s://: a kubeconfig file, else in-cluster
        self.attempt_timeout = attempt_timeout


def build_check(target: Target, ctx: BuildContext) -> Check:
    from agents.waitfor.targets import SCHEMES

    module = importlib.import_module(f"agents.waitfor.checks.{SCHEMES[target.scheme]}")
    check: Check = module.build(target, ctx)
    target.options.reject_unknown()
    return check
