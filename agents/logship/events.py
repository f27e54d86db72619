"""Lines → Elasticsearch documents with ECS field names.

Every document has `@timestamp`, `message`, `log.file.path`, `log.offset`, `host.name`,
`agent.*`, the pod's Kubernetes metadata when the Downward API provides it, and the
static fields the user adds. A line that is a JSON object can become fields (at the top
level or under a key); its timestamp field, when configured and parseable, becomes
`@timestamp`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from agents import __version__
from agents.logship.lines import Line

# Downward API env var → ECS field. The manifests in k8s/ set exactly these names.
DOWNWARD_ENV = {
    "POD_NAME": ("kubernetes", "pod", "name"),
    "POD_NAMESPACE": ("kubernetes", "namespace"),
    "POD_UID": ("kubernetes", "pod", "uid"),
    "POD_IP": ("kubernetes", "pod", "ip"),
    "NODE_NAME": ("kubernetes", "node", "name"),
    "CONTAINER_NAME": ("container", "name"),
}


def set_path(doc: dict[str, object], path: tuple[str, ...], value: object) -> None:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def parse_labels_file(text: str) -> dict[str, str]:
    """A downwardAPI volume file: one `key="value"` per line, values JSON-quoted."""
    labels: dict[str, str] = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            continue
        value = value.strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.strip('"')
        labels[key.strip()] = value
    return labels


def kubernetes_metadata(env: Mapping[str, str], labels: dict[str, str]) -> dict[str, object]:
    meta: dict[str, object] = {}
    for name, path in DOWNWARD_ENV.items():
        if env.get(name):
            set_path(meta, path, env[name])
    if labels:
        set_path(meta, ("kubernetes", "labels"), labels)
    return meta


def parse_timestamp(value: object) -> str | None:
    """ISO 8601 text or epoch seconds/milliseconds → ISO 8601 UTC, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return iso(seconds)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class EventBuilder:
    """Builds every document of one logship process; the constant part is made once."""

    def __init__(
        self,
        *,
        fields: Mapping[str, str] | None = None,
        json_mode: str | None = None,
        timestamp_field: str | None = None,
        env: Mapping[str, str] | None = None,
        labels: dict[str, str] | None = None,
        data_stream: tuple[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.json_mode = json_mode  # None: off; "": top level; "name": under that key
        self.timestamp_field = timestamp_field
        base: dict[str, object] = {
            "host": {"name": env.get("NODE_NAME") or socket.gethostname()},
            "agent": {"type": "logship", "version": __version__, "name": socket.gethostname()},
            "ecs": {"version": "8.11.0"},
        }
        for key, value in kubernetes_metadata(env, labels or {}).items():
            base[key] = value
        if data_stream is not None:
            base["data_stream"] = {
                "type": "logs",
                "dataset": data_stream[0],
                "namespace": data_stream[1],
            }
        for dotted, value in (fields or {}).items():
            set_path(base, tuple(dotted.split(".")), value)
        self._base_json = json.dumps(base, ensure_ascii=False, separators=(",", ":"))

    def build(
        self, line: Line, path: str, *, flags: tuple[str, ...] = (), now: float | None = None
    ) -> str:
        """One document as JSON text."""
        doc: dict[str, object] = json.loads(self._base_json)
        timestamp: str | None = None
        message: object = line.text
        if self.json_mode is not None:
            parsed = _json_object(line.text)
            if parsed is not None:
                if self.timestamp_field:
                    timestamp = parse_timestamp(parsed.get(self.timestamp_field))
                if self.json_mode:
                    doc[self.json_mode] = parsed
                else:
                    message = parsed.pop("message", line.text)
                    for key, value in parsed.items():
                        if key not in ("@timestamp", "log", "agent", "host"):
                            doc[key] = value
        all_flags = list(flags) + (["truncated"] if line.truncated else [])
        log: dict[str, object] = {"file": {"path": path}, "offset": line.offset}
        if all_flags:
            log["flags"] = all_flags
        doc["@timestamp"] = timestamp or iso(time.time() if now is None else now)
        doc["message"] = message
        doc["log"] = log
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _json_object(text: str) -> dict[str, object] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
