import json

import pytest

from agents.logship.events import (
    EventBuilder,
    kubernetes_metadata,
    parse_labels_file,
    parse_timestamp,
)
from agents.logship.lines import Line

POD_ENV = {
    "POD_NAME": "web-7d9f",
    "POD_NAMESPACE": "shop",
    "POD_UID": "1234-abcd",
    "NODE_NAME": "node-3",
    "CONTAINER_NAME": "simple-webapp",
}


def build(builder: EventBuilder, text: str, **kwargs: object) -> dict:  # type: ignore[type-arg]
    line = Line(120, 120 + len(text) + 1, text, truncated=bool(kwargs.pop("truncated", False)))
    return json.loads(builder.build(line, "/var/log/app/app.log", now=0.0, **kwargs))  # type: ignore[arg-type]


def test_ecs_fields_and_kubernetes_metadata() -> None:
    doc = build(EventBuilder(env=POD_ENV, labels={"app": "web"}), "GET /health 200")
    assert doc["message"] == "GET /health 200"
    assert doc["@timestamp"] == "1970-01-01T00:00:00.000Z"
    assert doc["log"] == {"file": {"path": "/var/log/app/app.log"}, "offset": 120}
    assert doc["host"]["name"] == "node-3"
    assert doc["agent"]["type"] == "logship"
    assert doc["kubernetes"] == {
        "pod": {"name": "web-7d9f", "uid": "1234-abcd"},
        "namespace": "shop",
        "node": {"name": "node-3"},
        "labels": {"app": "web"},
    }
    assert doc["container"] == {"name": "simple-webapp"}


def test_no_downward_env_no_kubernetes_fields() -> None:
    doc = build(EventBuilder(env={}), "x")
    assert "kubernetes" not in doc and "container" not in doc
    assert doc["host"]["name"]  # the machine's own name


def test_static_fields_with_dotted_names() -> None:
    doc = build(EventBuilder(env={}, fields={"service.name": "shop", "env": "prod"}), "x")
    assert doc["service"] == {"name": "shop"}
    assert doc["env"] == "prod"


def test_flags_for_truncated_and_multiline() -> None:
    doc = build(EventBuilder(env={}), "x", truncated=True, flags=("multiline",))
    assert doc["log"]["flags"] == ["multiline", "truncated"]


def test_json_lines_at_top_level_with_timestamp() -> None:
    builder = EventBuilder(env={}, json_mode="", timestamp_field="time")
    doc = build(builder, '{"time":"2026-11-21T10:00:00.5+01:00","level":"warn","message":"hi"}')
    assert doc["@timestamp"] == "2026-11-21T09:00:00.500Z"
    assert doc["level"] == "warn"
    assert doc["message"] == "hi"
    assert doc["log"]["offset"] == 120  # our fields are not overwritten by the line's


def test_json_lines_under_a_key() -> None:
    builder = EventBuilder(env={}, json_mode="app")
    doc = build(builder, '{"user":"ann","log":"theirs"}')
    assert doc["app"] == {"user": "ann", "log": "theirs"}
    assert doc["message"] == '{"user":"ann","log":"theirs"}'


@pytest.mark.parametrize("text", ["not json", "[1,2]", "{broken", '"string"', "{}x"])
def test_non_object_lines_stay_messages(text: str) -> None:
    doc = build(EventBuilder(env={}, json_mode=""), text)
    assert doc["message"] == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T10:00:00Z", "2026-11-21T10:00:00.000Z"),
        ("2026-11-21 10:00:00", "2026-11-21T10:00:00.000Z"),
        (1700000000, "2023-11-14T22:13:20.000Z"),
        (1700000000123, "2023-11-14T22:13:20.123Z"),
        ("yesterday", None),
        (True, None),
        (None, None),
        (1e30, None),
    ],
)
def test_parse_timestamp(value: object, expected: str | None) -> None:
    assert parse_timestamp(value) == expected


def test_labels_file_from_the_downward_api() -> None:
    text = 'app="web"\npod-template-hash="7d9f"\nquote="say \\"hi\\""\nbroken line\n'
    assert parse_labels_file(text) == {
        "app": "web",
        "pod-template-hash": "7d9f",
        "quote": 'say "hi"',
    }


def test_kubernetes_metadata_skips_empty_values() -> None:
    assert kubernetes_metadata({"POD_NAME": "", "POD_NAMESPACE": "ns"}, {}) == {
        "kubernetes": {"namespace": "ns"}
    }


def test_data_stream_fields() -> None:
    doc = build(EventBuilder(env={}, data_stream=("app", "prod")), "x")
    assert doc["data_stream"] == {"type": "logs", "dataset": "app", "namespace": "prod"}


def test_non_ascii_is_kept() -> None:
    doc = build(EventBuilder(env={}), "grüße \ufffd")
    assert doc["message"] == "grüße \ufffd"
