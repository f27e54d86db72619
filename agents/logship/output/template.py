"""`--template-file`: the index template logship installs before it ships anything.

The file holds the body of `PUT /_index_template/<name>` as JSON; the name is the file's
stem (`logship.json` installs the template `logship`). It is read when logship starts, so
a missing or malformed file is a configuration error at once. The installation itself is
retried like a bulk request while Elasticsearch gives no answer, 429 or 5xx; any other 4xx
means Elasticsearch refuses this template (a bad body, a pattern clash, no privilege to
manage templates, credentials it does not know — which logship reads only at start, so
only a restart can cure them) and no retry will change that: `TemplateRefused`, which
logship reports naming the file and the reason before it exits 2.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agents._backoff import Backoff
from agents._log import Logger
from agents._options import OptionError
from agents.logship.output.elasticsearch import Answer, SendFailed

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


def is_refusal(status: int) -> bool:
    """A final no: a 4xx other than 408 (timeout) and 429 (too many requests)."""
    return 400 <= status < 500 and status not in (408, 429)


def refusal_reason(body: object) -> str:
    """`type: reason` from an Elasticsearch error body, else the body as text (shortened)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind, reason = error.get("type", ""), error.get("reason", "")
            return f"{kind}: {reason}" if kind else str(reason)
        if isinstance(error, str):
            return error
    return str(body)[:300]


async def install_template(
    client: TemplateClient,
    template: Template,
    log: Logger,
    *,
    retry_base: float = 0.1,
    retry_cap: float = 30.0,
) -> None:
    """PUT the template until Elasticsearch takes it; TemplateRefused if it never will."""
    backoff = Backoff(retry_base, retry_cap)
    while True:
        try:
            answer = await client.put_template(template.name, template.body)
        except SendFailed as exc:
            why: object = exc
        else:
            if 200 <= answer.status < 300:
                log.info("index template installed", template=template.name,
                         path=str(template.path))  # fmt: skip
                return
            if is_refusal(answer.status):
                raise TemplateRefused(
                    f"--template-file: Elasticsearch refused {template.path} "
                    f"(template {template.name!r}, HTTP {answer.status}): "
                    f"{refusal_reason(answer.body)}"
                )
            why = f"HTTP {answer.status} {refusal_reason(answer.body)}"
        delay = backoff.next()
        log.warning("index template not installed yet: nothing is shipped before it is",
                    template=template.name, error=str(why), retry_in=round(delay, 3))  # fmt: skip
        await asyncio.sleep(delay)
