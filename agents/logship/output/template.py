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
    reload_credentials,
)
from agents.logship.output.elasticsearch import Answer

_BAD_NAME_CHARS = set(' ,"*\\<|>/?#')


class TemplateRefused(Exception):
    """Elasticsearch answered the template with a final no; the message names file and reason."""


@dataclass(frozen=True)
class Template:
    name: str
    body: dict[str, Any]
    path: Path


class TemplateClient(Protocol):
    async def put_template(self, name: str, body: dict[str, Any]) -> Answer: ...


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
    """PUT the template until Elasticsearch takes it; TemplateRefused if it never will."""
    retry = Retry(log, base=retry_base, cap=retry_cap)
    while True:
        reply = await ask(lambda: client.put_template(template.name, template.body))
        if reply.ok:
            log.info("index template installed", template=template.name,
                     path=str(template.path))  # fmt: skip
            return
        if reply.kind is Kind.REJECTED:
            raise TemplateRefused(
                f"--template-file: Elasticsearch refused {template.path} "
                f"(template {template.name!r}, HTTP {reply.status}): "
                f"{reply.reason.removeprefix(str(reply.status)).strip()}"
            )
        if reload_credentials(client, log, reply):
            continue
        why = reply.reason if reply.kind is Kind.UNREACHABLE else f"HTTP {reply.reason}"
        await retry.pause("index template not installed yet: nothing is shipped before it is",
                          why, template=template.name, level=retry.changed(why))  # fmt: skip
