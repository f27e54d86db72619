"""`--template-file`: the index template logship installs before it ships anything.

The file holds the body of `PUT /_index_template/<name>` as JSON; the name is the file's
stem (`logship.json` installs the template `logship`). It is read when logship starts, so
a missing or malformed file is a configuration error at once. The installation follows
the policy of `answers`, like a bulk request: retried while Elasticsearch gives no answer,
401/403 (a privilege or a Secret can be fixed meanwhile), 429 or 5xx; a 400 or 413 means
Elasticsearch refuses this template (a bad body, a pattern clash) and no retry will change
that: `TemplateRefused`, which logship reports naming the file and the reason before it
exits 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents._log import Logger
from agents._options import OptionError
from agents.logship.output.answers import (
    RETRY_BASE,
    RETRY_CAP,
    Kind,
    Retry,
    ask,
    classify,
    reload_credentials,
)
from agents.logship.output.elasticsearch import Answer, SendFailed

_BAD_NAME_CHARS = set(' ,"*\\<|>/?#')


class TemplateRefused(Exception):
    """Elasticsearch answered the template with a final no; the message names file and reason."""


@dataclass(frozen=True)
class Template:
    name: str
    body: dict[str, Any]
    path: Path | None  # None: logship's own (the data stream template for OpenSearch)


class TemplateClient(Protocol):
    async def put_template(self, name: str, body: dict[str, Any]) -> Answer: ...


class StreamClient(TemplateClient, Protocol):
    met: bool
    dialect: Any  # output.cluster.Dialect

    async def meet(self) -> Answer | None: ...
    async def get_templates(self) -> Answer: ...


def load_template(path: Path) -> Template:
    """Read and check the template file; OptionError names the flag, the file and the fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OptionError(f"--template-file: cannot read {path}: {reason}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise OptionError(f"--template-file: {path} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise OptionError(f"--template-file: {path} must hold a JSON object (the template body)")
    name = path.stem
    if not name or name.startswith("_") or name != name.lower() or set(name) & _BAD_NAME_CHARS:
        raise OptionError(
            f"--template-file: the template is named after the file, and {name!r} is not a "
            "template name Elasticsearch accepts (lower case, no leading _, none of "
            "' ,\"*\\<|>/?#')"
        )
    return Template(name, body, path)


async def install_template(
    client: TemplateClient,
    template: Template,
    log: Logger,
    *,
    retry_base: float = RETRY_BASE,
    retry_cap: float = RETRY_CAP,
) -> None:
    """PUT the template until the server takes it; TemplateRefused if it never will."""
    retry = Retry(log, base=retry_base, cap=retry_cap)
    while True:
        reply = await ask(lambda: client.put_template(template.name, template.body))
        if reply.ok:
            path = str(template.path) if template.path else None
            log.info("index template installed", template=template.name, path=path)
            return
        if reply.kind is Kind.REJECTED:
            which = (f"--template-file: the server refused {template.path}" if template.path
                     else "--data-stream: the server refused the data stream template")  # fmt: skip
            raise TemplateRefused(
                f"{which} (template {template.name!r}, HTTP {reply.status}): "
                f"{reply.reason.removeprefix(str(reply.status)).strip()}"
            )
        if reload_credentials(client, log, reply):
            continue
        why = reply.reason if reply.kind is Kind.UNREACHABLE else f"HTTP {reply.reason}"
        await retry.pause("index template not installed yet: nothing is shipped before it is",
                          why, template=template.name, level=retry.changed(why))  # fmt: skip


async def ensure_data_stream_template(
    client: StreamClient,
    stream: str,
    log: Logger,
    *,
    retry_base: float = RETRY_BASE,
    retry_cap: float = RETRY_CAP,
) -> None:
    """With --data-stream: make sure the stream's name makes a data stream. Elasticsearch
    has a built-in `logs-*-*` template for that; OpenSearch has none ("Data streams": an
    index template with `data_stream: {}` comes first), so there logship installs
    `logship-<stream>` (the name as its only pattern) unless a template already matches.
    A template that matches without `data_stream`, or templates logship may not read
    (403), are the user's choice: said once, and shipping goes on. Nothing is shipped
    before this is settled; no answer, 401, 429 and 5xx are retried as for bulk requests."""
    retry = Retry(log, base=retry_base, cap=retry_cap)
    while not client.met:  # which server this is decides whether anything is needed
        try:
            answer = await client.meet()
        except SendFailed as exc:
            why = str(exc)
            await retry.pause("cannot learn which server this is yet: nothing is shipped "
                              "before its data stream is set up", why,
                              level=retry.changed(why))  # fmt: skip
            continue
        if answer is not None and not client.met:
            reply = classify(answer)
            if not reload_credentials(client, log, reply):
                await retry.pause("cannot learn which server this is yet: nothing is "
                                  "shipped before its data stream is set up",
                                  f"GET / {reply.reason}",
                                  level=retry.changed(reply.reason))  # fmt: skip
    if client.dialect.builtin_data_streams:
        return
    while True:
        reply = await ask(client.get_templates)
        if reply.ok:
            break
        if reply.status == 403 or reply.kind is Kind.REJECTED:
            log.warning("cannot read the index templates: make sure one with data_stream: {} "
                        "matches the stream, or its documents go to a plain index",
                        stream=stream, error=reply.reason)  # fmt: skip
            return
        if reload_credentials(client, log, reply):
            continue
        await retry.pause("data stream template not checked yet: nothing is shipped before "
                          "it is", reply.reason, stream=stream,
                          level=retry.changed(reply.reason))  # fmt: skip
    found = _matching_template(reply.body, stream)
    if found is not None:
        name, body = found
        if "data_stream" in body:
            log.info("data stream template found", stream=stream, template=name)
        else:
            log.warning("an index template matches the stream without data_stream: its "
                        "documents go to a plain index", stream=stream,
                        template=name)  # fmt: skip
        return
    body = {"index_patterns": [stream], "data_stream": {}, "priority": 200,
            "_meta": {"description": "installed by logship for --data-stream"}}  # fmt: skip
    await install_template(client, Template(f"logship-{stream}", body, None), log,
                           retry_base=retry_base, retry_cap=retry_cap)  # fmt: skip


def _matching_template(body: Any, name: str) -> tuple[str, dict[str, Any]] | None:
    """The template a new index or stream `name` would take: the highest priority of
    those whose patterns match (the server refuses two of equal priority that could)."""
    import fnmatch

    entries = body.get("index_templates", []) if isinstance(body, dict) else []
    best: tuple[int, str, dict[str, Any]] | None = None
    for entry in entries:
        template = entry.get("index_template") or {}
        patterns = template.get("index_patterns") or []
        if isinstance(patterns, str):
            patterns = [patterns]
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            priority = int(template.get("priority") or 0)
            if best is None or priority > best[0]:
                best = (priority, str(entry.get("name", "")), template)
    return None if best is None else (best[1], best[2])
