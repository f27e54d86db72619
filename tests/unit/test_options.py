import pytest

from agents._options import (
    OptionError,
    env_twin,
    format_duration,
    parse_bool,
    parse_duration,
    parse_int,
    pick,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30),
        ("2.5", 2.5),
        ("250ms", 0.25),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1m30s", 90),
        ("1h2m3s", 3723),
        (" 10S ", 10),
        ("0", 0),
        (".5s", 0.5),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, name="--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "1m 30s", "-1", "s", "5mm", "nan", "inf"])
def test_parse_duration_rejects_with_name(text: str) -> None:
    with pytest.raises(OptionError, match=r"^WAITFOR_TIMEOUT: "):
        parse_duration(text, name="WAITFOR_TIMEOUT")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("TRUE", True), ("on", True), ("no", False), ("0", False), ("", False)],
)
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text, name="x") is value


def test_parse_bool_rejects() -> None:
    with pytest.raises(OptionError, match="WAITFOR_ANY: expected true or false, got 'maybe'"):
        parse_bool("maybe", name="WAITFOR_ANY")


def test_parse_int_minimum() -> None:
    assert parse_int("3", name="n", minimum=1) == 3
    with pytest.raises(OptionError, match="--consecutive: must be at least 1, got 0"):
        parse_int("0", name="--consecutive", minimum=1)
    with pytest.raises(OptionError, match="whole number"):
        parse_int("1.5", name="--consecutive")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "0.25s"),
        (3.21, "3.21s"),
        (12.34, "12.3s"),
        (20, "20s"),
        (2.0, "2s"),
        (300, "5m0s"),
        (3725, "1h2m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


FILE = {"timeout": "3s"}


@pytest.mark.parametrize(
    ("cli", "env", "file", "expected"),
    [
        ("1s", {"X_TIMEOUT": "2s"}, FILE, ("1s", "--timeout")),  # the flag beats all
        (None, {"X_TIMEOUT": "2s"}, FILE, ("2s", "X_TIMEOUT")),  # the variable beats the file
        (None, {}, FILE, ("3s", "c.yaml: timeout")),  # the file beats the default
        (None, {"X_TIMEOUT": " \t"}, FILE, ("3s", "c.yaml: timeout")),  # blank: unset
        (None, {"X_TIMEOUT": ""}, None, None),  # nothing given: the default
        ("", {"X_TIMEOUT": "2s"}, None, ("", "--timeout")),  # an empty flag is still given
        (False, {"X_TIMEOUT": "true"}, None, (False, "--timeout")),  # so is --no-FLAG
        (None, {"X_TIMEOUT": " 2s "}, None, (" 2s ", "X_TIMEOUT")),  # as written: parsers strip
    ],
)
def test_pick_flag_then_env_then_file_then_default(
    cli: object, env: dict[str, str], file: dict[str, object] | None, expected: object
) -> None:
    found = pick(
        cli, flag="--timeout", env=env, variable="X_TIMEOUT", file=file, key="timeout",
        file_name="c.yaml",
    )  # fmt: skip
    assert found == expected


def test_env_twin() -> None:
    assert env_twin("WAITFOR_", "attempt_timeout") == "WAITFOR_ATTEMPT_TIMEOUT"
    assert env_twin("LOGSHIP_", "es", {"es": "LOGSHIP_ES_URLS"}) == "LOGSHIP_ES_URLS"
    assert env_twin("LOGSHIP_", "paths", {"es": "LOGSHIP_ES_URLS"}) == "LOGSHIP_PATHS"
