"""Lines → Elasticsearch documents with ECS field names.

Every document has `@timestamp`, `message`, `log.file.path`, `log.offset`, `host.name`,
`agent.*`, the pod's Kubernetes metadata when the Downward API provides it, and the
static fields the user adds. A line that is a JSON object can become fields (at the top
level or under a key); its timestamp field, when configured and parseable, becomes
`@timestamp`.

Without JSON lines, documents are made from a byte template instead of a dict: the
constant part of every document of a read is serialised once, and only each line's
message (JSON-escaped for a whole read at once, by `escape_lines`) and offset are spliced
in (`EventBuilder.render_run`). `build()` makes the same document from a dict, one line
at a time: the JSON-lines path, and the reference the template is tested against.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import accumulate
from operator import add

from agents import __version__
from agents.logship.bulk import Docs
from agents.logship.lines import Line, LineRun

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


# The ASCII control characters JSON strings must escape, but for \n (the line separator
# in `escape_lines`) and \t (replaced on its own: common, and cheaper that way).
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f]")
# Looking for each with `in` (memchr) is ~20x faster than the regex's search over a read's
# worth of lines that holds none of them, which is nearly every read.
_CONTROL_BYTES = tuple(bytes([c]) for c in (*range(0x00, 0x09), *range(0x0B, 0x20)))
_CONTROL_ESCAPES = {bytes([c]): json.dumps(chr(c))[1:-1].encode() for c in range(32)}
# The document keys every event sets itself: static fields of these names are replaced.
_OWN_KEYS = ("@timestamp", "message", "log")


def escape_lines(data: bytes) -> bytes:
    """Lines (each ending in `\\n`) → the same lines as JSON string contents, UTF-8.

    Per line this is what `json.dumps(line_text, ensure_ascii=False)[1:-1]` gives for the
    text `LineSplitter` would decode (a `\\r` before the newline dropped, invalid UTF-8
    replaced by U+FFFD), with the newlines kept as separators; done on all the lines at
    once, as a few passes over the bytes.
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            # A newline never belongs to an invalid sequence: lines are replaced as one by one.
            data = data.decode("utf-8", "replace").encode("utf-8")
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")
    if b'"' in data:
        data = data.replace(b'"', b'\\"')
    if b"\t" in data:
        data = data.replace(b"\t", b"\\t")
    if any(c in data for c in _CONTROL_BYTES):
        data = _CONTROL.sub(lambda m: _CONTROL_ESCAPES[m.group()], data)
    return data


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _percent_safe(data: bytes) -> bytes:
    """Constant bytes to place in a `%` template."""
    return data.replace(b"%", b"%%")


def action_template(index: str, key: str, generation: int) -> bytes:
    """The bulk action line of an event, with `%x` for its offset: `document_id()`'s `_id`."""
    prefix = _json_bytes(f"{key}-{generation}-")[:-1]  # open: the hex offset follows
    return (
        b'{"create":{"_index":' + _percent_safe(_json_bytes(index))
        + b',"_id":' + _percent_safe(prefix) + b'%x"}}\n'
    )  # fmt: skip


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
        # The template's constant head: the base without the keys every event replaces.
        kept = {key: value for key, value in base.items() if key not in _OWN_KEYS}
        self._head = _percent_safe(_json_bytes(kept)[:-1] + b"," if kept else b"{")

    @property
    def templated(self) -> bool:
        """Whether documents come from the byte template (no JSON lines to parse)."""
        return self.json_mode is None

    def template(
        self, *, index: str, key: str, generation: int, path: str, flags: tuple[str, ...],
        now: float,
    ) -> bytes:  # fmt: skip
        """An event's NDJSON as a `%` template: (offset, escaped message, offset)."""
        log_tail = b'},"offset":%d'
        if flags:
            log_tail += b',"flags":' + _percent_safe(_json_bytes(list(flags)))
        return (
            action_template(index, key, generation)
            + self._head
            + b'"@timestamp":' + _json_bytes(iso(now))
            + b',"message":"%s","log":{"file":{"path":' + _percent_safe(_json_bytes(path))
            + log_tail + b"}}\n"
        )  # fmt: skip

    def render_run(
        self, run: LineRun, *, index: str, key: str, generation: int, path: str,
        flags: tuple[str, ...], now: float, max_bytes: int,
    ) -> Docs | None:  # fmt: skip
        """The hot path: a run of lines → their events, without an object per line.

        None when the template does not apply (JSON lines) or a line must be truncated:
        the caller then takes the lines one by one (`render_lines`).
        """
        if not self.templated:
            return None
        raws = run.data.split(b"\n")
        raws.pop()  # what follows the last newline: nothing
        if len(run.data) > max_bytes and max(map(len, raws)) > max_bytes:
            return None
        # Each line starts where the previous one ended: past its bytes and its newline.
        starts = list(map(add, accumulate(map(len, raws), initial=run.offset),
                          range(len(raws) + 1)))  # fmt: skip
        messages = escape_lines(run.data).split(b"\n")
        messages.pop()
        tpl = self.template(index=index, key=key, generation=generation, path=path,
                            flags=flags, now=now)  # fmt: skip
        entries = [tpl % (o, m, o) for o, m in zip(starts[:-1], messages, strict=True)]
        return Docs(key, generation, index, path, entries=entries, starts=starts,
                    action_bytes=_action_bytes(index, key, generation))  # fmt: skip

    def render_lines(
        self, lines: list[Line], *, index: str, key: str, generation: int, path: str,
        flags: tuple[str, ...], now: float,
    ) -> list[Docs]:  # fmt: skip
        """Lines one by one (joined multi-line events, truncated lines, JSON lines, the
        last partial line) → their events; one `Docs` per stretch of adjacent lines."""
        out: list[Docs] = []
        action = action_template(index, key, generation)
        action_bytes = _action_bytes(index, key, generation)
        templates: dict[tuple[str, ...], bytes] = {}
        entries: list[bytes] = []
        starts: list[int] = []
        for line in lines:
            if starts and line.offset != starts[-1]:
                out.append(Docs(key, generation, index, path, entries=entries, starts=starts,
                                action_bytes=action_bytes))  # fmt: skip
                entries, starts = [], []
            line_flags = (*flags, "multiline") if "\n" in line.text else flags
            if self.templated:
                all_flags = (*line_flags, "truncated") if line.truncated else line_flags
                tpl = templates.get(all_flags)
                if tpl is None:
                    tpl = templates[all_flags] = self.template(
                        index=index, key=key, generation=generation, path=path,
                        flags=all_flags, now=now,
                    )  # fmt: skip
                message = json.dumps(line.text, ensure_ascii=False)[1:-1].encode()
                entries.append(tpl % (line.offset, message, line.offset))
            else:
                doc = self.build(line, path, flags=line_flags, now=now).encode()
                entries.append(action % line.offset + doc + b"\n")
            if not starts:
                starts.append(line.offset)
            starts.append(line.end)
        if entries:
            out.append(Docs(key, generation, index, path, entries=entries, starts=starts,
                            action_bytes=action_bytes))  # fmt: skip
        return out

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


def _action_bytes(index: str, key: str, generation: int) -> int:
    """An action line's length less its offset's hex digits, plus the source's newline."""
    return len(action_template(index, key, generation).replace(b"%%", b"%")) - 2 + 1


def _json_object(text: str) -> dict[str, object] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
