import io
import json
from pathlib import Path
from typing import Any

import pytest

from agents._log import Logger
from agents._options import OptionError
from agents.logship.output.elasticsearch import Answer, SendFailed
from agents.logship.output.template import (
    Template,
    TemplateRefused,
    install_template,
    load_template,
)

BODY = {"index_patterns": ["logship-*"], "template": {"settings": {"number_of_replicas": 0}}}


def test_the_template_is_named_after_its_file(tmp_path: Path) -> None:
    path = tmp_path / "logship-app.json"
    path.write_text(json.dumps(BODY))
    assert load_template(path) == Template("logship-app", BODY, path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "cannot read"),
        ("broken.json", "{", "is not JSON"),
        ("list.json", "[]", "must hold a JSON object"),
        ("latin1.json", b"\xff\xfe", "cannot read"),
        ("Upper.json", "{}", "not a template name"),
        ("_hidden.json", "{}", "not a template name"),
        ("a b.json", "{}", "not a template name"),
    ],
)
def test_a_bad_template_file_is_an_option_error_naming_it(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(OptionError, match=message) as raised:
        load_template(path)
    assert str(raised.value).startswith("--template-file: ")


class FakeClient:
    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def put_template(self, name: str, body: dict[str, Any]) -> Answer:
        self.calls.append((name, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def template() -> Template:
    return Template("logship", BODY, Path("/etc/logship/logship.json"))


@pytest.mark.asyncio
async def test_install_retries_until_elasticsearch_answers() -> None:
    client = FakeClient(SendFailed("connection refused"), Answer(503, {}), Answer(429, {}),
                        Answer(200, {"acknowledged": True}))  # fmt: skip
    out = io.StringIO()
    await install_template(client, template(), Logger("t", stream=out), retry_base=0.001)
    assert client.calls == [("logship", BODY)] * 4
    text = out.getvalue()
    assert text.count("index template not installed yet") == 3
    assert "connection refused" in text and "index template installed" in text


@pytest.mark.asyncio
async def test_install_gives_up_on_a_refusal_naming_file_and_reason() -> None:
    body = {"error": {"type": "x_content_parse_exception", "reason": "unknown field [bogus]"}}
    client = FakeClient(Answer(400, body))
    with pytest.raises(TemplateRefused) as raised:
        await install_template(client, template(), Logger("t", stream=io.StringIO()))
    message = str(raised.value)
    assert "/etc/logship/logship.json" in message and "HTTP 400" in message
    assert "x_content_parse_exception: unknown field [bogus]" in message


@pytest.mark.asyncio
async def test_the_same_refusal_repeated_is_said_once() -> None:
    client = FakeClient(*[SendFailed("connection refused")] * 4,
                        Answer(200, {"acknowledged": True}))  # fmt: skip
    out = io.StringIO()
    await install_template(client, template(),
                           Logger("t", stream=out, min_level="debug", json_lines=True),
                           retry_base=0.001)  # fmt: skip
    lines = [line for line in out.getvalue().splitlines() if "not installed yet" in line]
    assert len(lines) == 4
    assert sum('"log.level": "warning"' in line for line in lines) == 1
    assert sum('"log.level": "debug"' in line for line in lines) == 3
