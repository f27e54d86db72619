import pytest

from agents._options import (
    OptionError,
    format_duration,
    parse_bool,
    parse_duration,
    parse_int,
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
