"""Errors in Elasticsearch's shape (`EsError`), and parsing the version the stand-in claims."""

from __future__ import annotations

import re
from typing import Any


class EsError(Exception):
    """An Elasticsearch exception: `type`, `reason`, extra fields and an optional cause."""

    def __init__(
        self,
        status: int,
        type: str,
        reason: str,
        *,
        caused_by: EsError | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {type}: {reason}")
        self.status, self.type, self.reason = status, type, reason
        self.caused_by, self.extra = caused_by, extra

    def cause(self) -> dict[str, Any]:
        """The error object as it appears in a bulk item or as `error` of a response."""
        obj: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            obj["caused_by"] = self.caused_by.cause()
        return obj

    def body(self) -> dict[str, Any]:
        """The request-level response body: `{"error": {"root_cause": [...], ...}, "status"}`."""
        root = {"type": self.type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [root], **self.cause()}, "status": self.status}


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of "8.15.0"; ValueError for anything else."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?(?:-[\w.]+)?", version)
    if match is None:
        raise ValueError(f"not an Elasticsearch version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def _illegal(reason: str, status: int = 400) -> EsError:
    return EsError(status, "illegal_argument_exception", reason)
