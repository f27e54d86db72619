import pytest

from agents.waitfor.checks.http import (
    json_lookup,
    json_scalar_text,
    parse_json_expectation,
    parse_status,
)
from agents.waitfor.targets import TargetError


@pytest.mark.parametrize(
    ("spec", "accepted", "refused"),
    [
        ("2xx", [200, 204, 299], [199, 300, 503]),
        ("200,204", [200, 204], [201, 404]),
        ("200-399", [200, 302, 399], [400, 199]),
        ("2xx, 301", [250, 301], [302, 404]),
        ("4XX", [404, 410], [500]),
    ],
)
def test_status_spec(spec: str, accepted: list[int], refused: list[int]) -> None:
    _, ok = parse_status(spec, "t")
    assert all(ok(code) for code in accepted)
    assert not any(ok(code) for code in refused)


@pytest.mark.parametrize("spec", ["abc", "2x", "20", "299-200", "6xx", ""])
def test_bad_status_spec(spec: str) -> None:
    with pytest.raises(TargetError, match="option status"):
        parse_status(spec, "t")


def test_json_expectation_forms() -> None:
    assert parse_json_expectation("status", "t") == (["status"], None)
    assert parse_json_expectation(".status:green,yellow", "t") == (["status"], ["green", "yellow"])
    assert parse_json_expectation("nodes.0.ok:true", "t") == (["nodes", 0, "ok"], ["true"])
    with pytest.raises(TargetError, match="needs a field path"):
        parse_json_expectation(":green", "t")


def test_json_lookup() -> None:
    doc = {"a": {"b": [10, {"c": "x"}]}, "0": "key named zero"}
    assert json_lookup(doc, ["a", "b", 1, "c"]) == "x"
    assert json_lookup(doc, ["a", "b", -1, "c"]) == "x"
    assert json_lookup(doc, [0]) == "key named zero"
    missing = json_lookup(doc, ["a", "b", 5])
    assert missing is json_lookup(doc, ["nope"])
    assert missing is not None


@pytest.mark.parametrize(
    ("value", "text"), [("green", "green"), (True, "true"), (None, "null"), (3, "3"), (1.5, "1.5")]
)
def test_json_scalar_text(value: object, text: str) -> None:
    assert json_scalar_text(value) == text
