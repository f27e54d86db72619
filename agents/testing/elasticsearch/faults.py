"""Faults: what to break and when, decided with one seeded Random so tests are reproducible."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from agents.testing.elasticsearch.bulk import BulkOp
from agents.testing.elasticsearch.errors import EsError

_ITEM_ERRORS: dict[str, tuple[int, str]] = {
    "es_rejected_execution_exception": (
        429,
        "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, "
        "max_coordinating_and_primary_bytes=107374182]",
    ),
    "cluster_block_exception": (
        429,
        "index [{index}] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
        "watermark, index has read-only-allow-delete block];",
    ),
    "unavailable_shards_exception": (
        503,
        "[{index}][0] primary shard is not active Timeout: [1m], request: "
        "[BulkShardRequest [[{index}][0]] containing [1] requests]",
    ),
    "mapper_parsing_exception": (400, "failed to parse: injected by the stand-in"),
}
_ITEM_DEFAULT_TYPE = {
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
    400: "mapper_parsing_exception",
}
_REQUEST_ERRORS: dict[int, tuple[str, str]] = {
    429: (
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, "
        "max_coordinating_and_primary_bytes=107374182]",
    ),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    500: ("exception", "internal server error injected by the stand-in"),
    401: ("security_exception", "missing authentication credentials for REST request [{path}]"),
    403: (
        "security_exception",
        "action [indices:data/write/bulk] is unauthorized for user [logship] with effective "
        "roles [viewer], this action is granted by the index privileges [create_doc,write,all]",
    ),
}
PROXY_STATUSES = (502, 504)  # ES never sends these; a proxy in front of it does, as HTML


@dataclass
class Rule:
    """Fire for the next `count` matches (None: no limit), each with `probability`."""

    count: int | None = None
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must not be negative, got {self.count}")

    def fires(self, rng: random.Random) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        if self.count is not None:
            self.count -= 1
        return True


def request_error(status: int, path: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of an injected request-level failure."""
    if status in PROXY_STATUSES:
        title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
        return {"Content-Type": "text/html"}, html.encode()
    if status not in _REQUEST_ERRORS:
        raise ValueError(f"no injectable request failure for HTTP {status}")
    error_type, reason = _REQUEST_ERRORS[status]
    body = EsError(status, error_type, reason.format(path=path)).body()
    headers = {"Content-Type": "application/json"}  # the product header is the profile's
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8"'
    return headers, json.dumps(body).encode()


class Faults:
    """The active faults. Every random decision draws from `rng`, in request order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.requests: list[tuple[int, str, Rule]] = []  # (status, scope, rule)
        self.items: list[tuple[str, Rule]] = []  # (error type, rule)
        self.drops: list[tuple[bool, Rule]] = []  # (after processing, rule)
        self.latency = 0.0

    def add_request_failure(self, status: int, rule: Rule, scope: str = "bulk") -> None:
        if status not in _REQUEST_ERRORS and status not in PROXY_STATUSES:
            known = sorted([*_REQUEST_ERRORS, *PROXY_STATUSES])
            raise ValueError(f"status must be one of {known}, got {status}")
        if scope not in ("bulk", "all"):
            raise ValueError(f"scope must be 'bulk' or 'all', got {scope!r}")
        self.requests.append((status, scope, rule))

    def add_item_failure(self, status: int, rule: Rule, error_type: str | None = None) -> None:
        error_type = error_type or _ITEM_DEFAULT_TYPE.get(status)
        if error_type not in _ITEM_ERRORS or _ITEM_ERRORS[error_type][0] != status:
            choices = {t: s for t, (s, _) in _ITEM_ERRORS.items()}
            raise ValueError(f"item failures are one of {choices}, got {status} {error_type}")
        self.items.append((error_type, rule))

    def request_failure(self, is_bulk: bool) -> int | None:
        """The status to answer this request with instead of handling it, if any."""
        for status, scope, rule in self.requests:
            if (is_bulk or scope == "all") and rule.fires(self.rng):
                return status
        return None

    def item_failure(self, op: BulkOp, index: str) -> EsError | None:
        for error_type, rule in self.items:
            if rule.fires(self.rng):
                status, reason = _ITEM_ERRORS[error_type]
                return EsError(status, error_type, reason.format(index=index))
        return None

    def drop(self, after_processing: bool) -> bool:
        return any(after == after_processing and rule.fires(self.rng) for after, rule in self.drops)
