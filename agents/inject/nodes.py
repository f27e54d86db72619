"""Putting values into a round-tripped YAML tree, and taking them out, so that the text
around them comes back as it was.

ruamel.yaml keeps a comment with the entry before it. An entry added at the end of a
mapping or sequence would therefore take over the comments that follow the collection
(and, on the next run, lose them when it is taken out); an entry added anywhere else
leaves every comment with the entry it followed. So nothing is ever appended: `insert`
places each entry before an existing one.
"""

from __future__ import annotations

import json
from typing import Any

FLOW_SEQUENCES = {"drop"}  # `drop: [ALL]`, as written by hand


def to_node(value: Any, key: str = "") -> Any:
    """Plain data as ruamel nodes: small all-scalar mappings in flow style
    (`{cpu: 10m, memory: 48Mi}`), the rest in block style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        node = CommentedMap((k, to_node(v, k)) for k, v in value.items())
        if 0 < len(value) <= 3 and all(_scalar(v) for v in value.values()):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(to_node(v) for v in value)
        if key in FLOW_SEQUENCES and all(_scalar(v) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def insert_key(
    mapping: Any,
    key: str,
    value: Any,
    *,
    after: tuple[str, ...] = (),
    before: tuple[str, ...] = (),
) -> None:
    """Add `key` just after the first of `after` that is not the mapping's last key, else
    before the first of `before` it has, else before its last key: never after the last
    (see the module's docstring)."""
    keys = list(mapping)
    position = next((keys.index(k) + 1 for k in after if k in keys[:-1]), None)
    if position is None:
        position = next((keys.index(k) for k in before if k in keys), max(len(keys) - 1, 0))
    mapping.insert(position, key, to_node(value, key))


def insert_items(sequence: Any, index: int, values: list[Any]) -> None:
    for offset, value in enumerate(values):
        sequence.insert(index + offset, to_node(value))


def delete_named(sequence: Any, names: set[str]) -> None:
    for index in reversed(range(len(sequence))):
        item = sequence[index]
        if isinstance(item, dict) and item.get("name") in names:
            del sequence[index]


def plain(node: Any) -> str:
    """A tree's data (not its comments or styles) as one string, key order included:
    equal strings mean nothing was changed."""
    return json.dumps(node, default=str, ensure_ascii=False)
