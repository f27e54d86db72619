"""Inputs in, one YAML stream out: every document read, every workload injected (or
cleaned with --remove), the rest written back as it was read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from agents.inject.documents import WORKLOADS, join, split
from agents.inject.errors import InjectError
from agents.inject.nodes import plain
from agents.inject.options import Options
from agents.inject.pod import inject, remove

STDIN = "<stdin>"


def read_inputs(paths: Iterable[str], stdin: TextIO) -> list[tuple[str, str]]:
    """→ [(name, text)]: files as given, a directory's *.yaml and *.yml (sorted), `-` (or
    nothing at all) for stdin."""
    inputs: list[tuple[str, str]] = []
    paths = list(paths) or ["-"]
    for given in paths:
        if given == "-":
            inputs.append((STDIN, stdin.read()))
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            if not files:
                raise InjectError(given, "a directory with no *.yaml or *.yml file in it")
            inputs += [(str(f), _read(f)) for f in files]
        else:
            inputs.append((given, _read(path)))
    return inputs


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InjectError(str(path), f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InjectError(str(path), "not UTF-8 text") from None


def rewrite(inputs: list[tuple[str, str]], options: Options, note: Callable[[str], None]) -> str:
    """The inputs as one stream, each workload injected or cleaned. Raises InjectError on
    the first bad document, before anything is written."""
    parts: list[tuple[str, str]] = []
    seen: list[str] = []
    workloads = 0
    for source, text in inputs:
        documents = split(source, text)
        for document in documents:
            document.load()
            if document.data is None:
                continue
            before = plain(document.data)
            for workload in document.workloads():
                workloads += 1
                try:
                    if options.remove:
                        remove(workload)
                    else:
                        inject(workload, options, note)
                except InjectError as exc:
                    raise exc.located(workload.title) from None
            document.changed = plain(document.data) != before
            seen.append(document.describe())
        parts.append((source, "".join(d.render() for d in documents)))
    if not workloads:
        kinds = ", ".join(WORKLOADS)
        found = f"found {', '.join(seen)}" if seen else "it holds no YAML document"
        raise InjectError(
            "",
            f"no workload in the input ({kinds}): {found}",
            ", ".join(source for source, _ in inputs),
        )
    return join(parts)
