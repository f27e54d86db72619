"""Composable index templates: the built-in logs template, which template a new index or
data stream takes, the mapping it starts with, and ES's checks on putting or removing one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from agents.testing.elasticsearch.errors import EsError, _illegal
from agents.testing.elasticsearch.mapping import IndexMapping
from agents.testing.elasticsearch.model import DataStream

BUILTIN_LOGS_TEMPLATE: dict[str, Any] = {
    "index_patterns": ["logs-*-*"],
    "priority": 100,
    "data_stream": {"hidden": False, "allow_custom_routing": False},
    "composed_of": ["logs@mappings", "logs@settings", "logs@custom", "ecs@mappings"],
    "ignore_missing_component_templates": ["logs@custom"],
    "allow_auto_create": True,
    "_meta": {"description": "default logs template installed by x-pack", "managed": True},
}
_TEMPLATE_FIELDS = {
    "index_patterns", "template", "composed_of", "priority", "version", "_meta",
    "data_stream", "allow_auto_create", "ignore_missing_component_templates", "deprecated",
}  # fmt: skip


def template_for(
    templates: Mapping[str, dict[str, Any]], name: str
) -> tuple[str, dict[str, Any]] | None:
    """The highest-priority index template whose patterns match `name`."""
    matches = [
        (int(body.get("priority") or 0), tname, body)
        for tname, body in templates.items()
        if any(fnmatch.fnmatchcase(name, p) for p in body.get("index_patterns", []))
    ]
    if not matches:
        return None
    _, tname, body = max(matches, key=lambda m: m[0])
    return tname, body


def mapping_from_template(template: Mapping[str, Any] | None) -> IndexMapping:
    """The explicit part of a template's mapping (properties, dynamic, ignore_malformed)."""
    body = (template or {}).get("template") or {}
    mappings = body.get("mappings") or {}
    settings = {
        key if key.startswith("index.") else f"index.{key}": value
        for key, value in _flatten(body.get("settings") or {}).items()
    }
    fields: dict[str, str] = {}

    def walk(properties: Mapping[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = f"{prefix}.{name}" if prefix else name
            fields[path] = spec.get("type", "object")
            walk(spec.get("properties") or {}, path)

    walk(mappings.get("properties") or {}, "")
    return IndexMapping(
        fields=fields,
        dynamic=str(mappings.get("dynamic", "true")).lower(),
        ignore_malformed=str(settings.get("index.mapping.ignore_malformed")).lower() == "true",
    )


def checked_template(
    name: str, body: dict[str, Any], templates: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """The template as stored under `name`, after ES's checks on its shape and priority
    against the `templates` already there."""
    for key in body:
        if key not in _TEMPLATE_FIELDS:
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[1:2] [index_template] unknown field [{key}]",
            )
    patterns = body.get("index_patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise EsError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        )
    priority = int(body.get("priority") or 0)
    for other, other_body in templates.items():
        other_patterns = other_body.get("index_patterns", [])
        if other == name or int(other_body.get("priority") or 0) != priority:
            continue
        if any(_patterns_overlap(p, q) for p in patterns for q in other_patterns):
            raise _illegal(
                f"index template [{name}] has index patterns {_java_list(patterns)} "
                f"matching patterns from existing templates [{other}] with patterns "
                f"({other} => {_java_list(other_patterns)}) that have the same priority "
                f"[{priority}], multiple index templates may not match during index "
                "creation, please use a different priority"
            )
    stored = {**body, "index_patterns": list(patterns)}
    inner = body.get("template")
    if isinstance(inner, dict) and isinstance(inner.get("settings"), dict):
        stored["template"] = {**inner, "settings": nested(normalised_settings(inner["settings"]))}
    return stored


def normalised_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as ES stores them: flat `index.`-prefixed keys, values as strings (lists of
    strings), whether they were given nested or dotted, as numbers or booleans."""
    out: dict[str, Any] = {}
    for key, value in _flatten(settings).items():
        key = key if key.startswith("index.") else f"index.{key}"
        out[key] = [_setting(v) for v in value] if isinstance(value, list) else _setting(value)
    return out


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested objects, as ES shows settings unless `flat_settings=true`."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return root


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def check_removable(
    name: str, templates: Mapping[str, Any], data_streams: Iterable[DataStream]
) -> None:
    """Raise what ES answers to deleting template `name`: missing, or in use by a stream."""
    if name not in templates:
        raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
    using = sorted(s.name for s in data_streams if s.template == name)
    if using:
        raise _illegal(
            f"unable to remove composable templates [{name}] as they are in use by a data "
            f"streams {_java_list(using)}"
        )


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: {"index": {"mapping": {...}}} -> "index.mapping..."."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _java_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _patterns_overlap(a: str, b: str) -> bool:
    """Whether two index patterns can match one name (ES intersects automata; this guesses)."""
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)
