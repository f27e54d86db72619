"""Kubernetes YAML in and out: an input split into its documents, each loaded with
ruamel.yaml's round trip and, when inject changed it, written back in the indentation it
was read in; a document inject did not change is written back exactly as it was read.

The input is split at its `---` lines by hand, not by the YAML library: a line that starts
with `---` and a blank always begins a document (YAML forbids it inside one), and splitting
there lets every untouched document, separator and comment between documents through
byte for byte.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents.inject.errors import InjectError

# kind -> the API groups it is a workload in (a `Job` of another group is someone's CRD)
WORKLOADS: dict[str, tuple[str, ...]] = {
    "Pod": ("",),
    "Deployment": ("apps", "extensions"),
    "StatefulSet": ("apps",),
    "DaemonSet": ("apps", "extensions"),
    "ReplicaSet": ("apps", "extensions"),
    "Job": ("batch",),
    "CronJob": ("batch",),
}
# where each kind keeps its pod template (the Pod is its own: metadata and spec)
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
DEFAULT_TEMPLATE_PATH = ("spec", "template")
_SEPARATOR = re.compile(r"---(?:[ \t]|\r?\n|$)")
_END = re.compile(r"^\.\.\.(?:[ \t].*)?$", re.MULTILINE)  # a document's end marker
DEFAULT_INDENT = (2, 4, 2)  # as in k8s/: mappings by 2, `- ` two in from its key


@dataclass
class Workload:
    """One object with a pod template: the template mapping (`metadata` and `spec`) and
    the names errors use for it."""

    kind: str
    name: str
    template: Any  # a ruamel CommentedMap: {metadata: ..., spec: ...}
    path: str  # the template's field path in the document, "" for a Pod
    title: str  # `deploy.yaml: document #2 Deployment/shop`


@dataclass
class Document:
    """One YAML document of an input, as read, and its loaded data."""

    source: str
    number: int
    separator: str  # the `---` line that opened it, as written; "" for a file's first
    text: str  # everything after the separator, up to the next one (or from a `---` line
    # that opens the document with content on it: `--- !tag`, kept in the text)
    first_line: int  # 1-based line of `text` in its input
    data: Any = None
    indent: tuple[int, int, int] = DEFAULT_INDENT
    changed: bool = False
    _lead: str = field(default="", repr=False)
    _tail: str = field(default="", repr=False)

    @property
    def title(self) -> str:
        return f"{self.source}: document #{self.number}"

    def load(self) -> None:
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        lead = re.match(r"(?:[ \t]*\n)*", self.text)
        self._lead = lead.group(0) if lead else ""  # blank lines the round trip would drop
        end = _END.search(self.text, len(self._lead))  # `...` and what follows it: kept
        self._tail = self.text[end.start() :] if end else ""
        try:
            self.data = _yaml().load(self.text[len(self._lead) : len(self.text) - len(self._tail)])
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "not YAML"
            if mark is None:
                raise InjectError("", f"not YAML: {problem}", self.title) from None
            line = self.first_line + self._lead.count("\n") + mark.line
            where = f"line {line}, column {mark.column + 1}"
            raise InjectError(where, f"not YAML: {problem}", self.title) from None
        except YAMLError as exc:
            raise InjectError("", f"not YAML: {exc}", self.title) from None
        self.indent = guess_indent(self.text)

    def render(self) -> str:
        if not self.changed:
            return self.separator + self.text
        yaml = _yaml()
        yaml.indent(mapping=self.indent[0], sequence=self.indent[1], offset=self.indent[2])
        # a document that starts on its `---` line (`--- !tag` or `--- {...}`) keeps one
        yaml.explicit_start = _SEPARATOR.match(self.text[len(self._lead) :]) is not None
        out = io.StringIO()
        yaml.dump(self.data, out)
        text = out.getvalue()
        if self._tail:
            text += self._tail
        elif not self.text.endswith("\n"):
            text = text.removesuffix("\n")
        return self.separator + self._lead + text

    def workloads(self) -> Iterator[Workload]:
        """Every workload of this document: itself, or the items of a `List`."""
        data = self.data
        if not isinstance(data, dict):
            return
        if data.get("kind") == "List" and isinstance(data.get("items"), list):
            for index, item in enumerate(data["items"]):
                found = _workload(item, f"{self.title} List items[{index}]")
                if found:
                    yield found
            return
        found = _workload(data, self.title)
        if found:
            yield found

    def describe(self) -> str:
        """`Kind/name` of what this document is, for the message saying no workload was
        found."""
        data = self.data
        if isinstance(data, dict):
            return f"{data.get('kind', '?')}/{_name(data)}"
        return type(data).__name__


def _name(obj: Any) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "?")) if isinstance(meta, dict) else "?"


def _workload(obj: Any, title: str) -> Workload | None:
    if not isinstance(obj, dict):
        return None
    kind, api = obj.get("kind"), str(obj.get("apiVersion", ""))
    group = api.rpartition("/")[0]
    if kind not in WORKLOADS or group not in WORKLOADS[kind]:
        return None
    title = f"{title} {kind}/{_name(obj)}"
    path = TEMPLATE_PATHS.get(kind, DEFAULT_TEMPLATE_PATH)
    node = obj
    for depth, key in enumerate(path):
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise InjectError(".".join(path[: depth + 1]), "missing: not a workload", title)
    spec = node.get("spec")
    if not isinstance(spec, dict):
        raise InjectError(".".join((*path, "spec")), "missing: no pod spec", title)
    return Workload(kind, _name(obj), node, ".".join(path), title)


def split(source: str, text: str) -> list[Document]:
    """`text` as its documents: each with the separator line that opened it."""
    documents: list[Document] = []
    separator, body, first = "", [], 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _SEPARATOR.match(line):
            documents.append(Document(source, len(documents) + 1, separator, "".join(body), first))
            rest = line[3:].strip()
            if not rest or rest.startswith("#"):
                separator, body, first = line, [], number + 1
            else:  # `--- !tag` or `--- {...}`: content on the separator line
                separator, body, first = "", [line], number
        else:
            body.append(line)
    documents.append(Document(source, len(documents) + 1, separator, "".join(body), first))
    if documents[0].separator == "" and not documents[0].text and len(documents) > 1:
        documents.pop(0)  # a file that starts with `---`: nothing before it
        for number, document in enumerate(documents, start=1):
            document.number = number
    return documents


def join(parts: list[tuple[str, str]]) -> str:
    """The rendered inputs as one stream: each input after the first opens with `---`
    unless it already does."""
    out = ""
    for index, (_source, text) in enumerate(parts):
        if index and out and not out.endswith("\n"):
            out += "\n"
        if index and not _SEPARATOR.match(text):
            out += "---\n"
        out += text
    return out


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel.yaml's `indent()` takes them, from the first
    nested mapping and the first block sequence in `text`: `containers:\\n- name: x` (as
    kubectl writes) is (2, 2, 0); `containers:\\n    - name: x` (as k8s/ is written) is
    (2, 4, 2)."""
    mapping = sequence = offset = None
    parent: int | None = None  # column of the last `key:` line that opens a block
    for line in text.splitlines():
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(content)
        if parent is not None and column >= parent:
            if content.startswith("- ") or content == "-":  # `- ` may sit under its key
                if sequence is None:
                    rest = content[1:]
                    offset = column - parent
                    sequence = offset + 1 + len(rest) - len(rest.lstrip(" ")) if rest else 2
            elif mapping is None and column > parent:
                mapping = column - parent
        if mapping is not None and sequence is not None:
            break
        parent = None
        key = content
        while key.startswith("- "):  # `- name:` opens a mapping two further in
            column += 2 + len(key[2:]) - len(key[2:].lstrip(" "))
            key = key[2:].lstrip(" ")
        if re.fullmatch(r"[^#'\"{\[][^#]*:\s*(#.*)?", key) and not key.startswith("- "):
            parent = column
    mapping = mapping or DEFAULT_INDENT[0]
    if sequence is None or offset is None:
        return mapping, mapping + 2, mapping
    return mapping, max(sequence, offset + 2), offset


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold: long flow mappings and our own lines stay on one line
    # `null` as kubectl writes it (`creationTimestamp: null`), not ruamel's empty value
    yaml.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml
