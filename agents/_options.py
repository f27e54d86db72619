"""What the CLIs share about options: where a value comes from (`pick`, `env_twin`) and
how it is parsed (durations, booleans, whole numbers).

Errors are `OptionError` with a message naming the option (or env var) and the value,
so a CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TYPE_CHECKING = False  # typing's own flag costs its import at waitfor's start-up
if TYPE_CHECKING:
    from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class OptionError(ValueError):
    """A user-supplied value is invalid; the message says which and why."""


def env_twin(prefix: str, name: str, renamed: Mapping[str, str] | None = None) -> str:
    """The environment variable that stands for option `name`: `LOGSHIP_` and `batch_bytes`
    give `LOGSHIP_BATCH_BYTES`, unless `renamed` spells it otherwise."""
    if renamed and name in renamed:
        return renamed[name]
    return prefix + name.upper()


def pick(
    cli: object,
    *,
    flag: str,
    env: Mapping[str, str],
    variable: str,
    file: Mapping[str, object] | None = None,
    key: str = "",
    file_name: str = "",
) -> tuple[Any, str] | None:
    """→ (the raw value an option takes, the spelling to blame if it is bad), or None when
    none is given and the default applies.

    The command line (`cli`: None when the flag is absent) wins over the environment
    `variable`, the variable over `key` in the configuration `file`, the file over the
    default. A blank variable counts as unset: a manifest that templates it in empty
    means "not set", not "set to nothing".
    """
    if cli is not None:
        return cli, flag
    value = env.get(variable, "")
    if value.strip():
        return value, variable
    if file is not None and key in file:
        return file[key], f"{file_name}: {key}"
    return None


def parse_duration(text: str, *, name: str) -> float:
    """`250ms`, `30s`, `5m`, `1h`, `1m30s`, or a bare number of seconds → seconds."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        pos, value = 0, 0.0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                break
            number, unit = float(match.group(1)), match.group(2)
            value += number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise OptionError(
                f"{name}: invalid duration {text!r} (use e.g. 250ms, 30s, 5m, 1m30s)"
            ) from None
    if value < 0 or value != value or value == float("inf"):
        raise OptionError(f"{name}: duration must be a finite number >= 0, got {text!r}")
    return value


def parse_bool(text: str, *, name: str) -> bool:
    raw = text.strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise OptionError(f"{name}: expected true or false, got {text!r}")


def parse_int(text: str, *, name: str, minimum: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise OptionError(f"{name}: expected a whole number, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise OptionError(f"{name}: must be at least {minimum}, got {value}")
    return value


def format_duration(seconds: float) -> str:
    """Short human form: 0.25s, 3.2s, 5m0s, 1h2m."""
    if seconds < 60:
        if seconds == int(seconds):
            return f"{int(seconds)}s"
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m"


def user_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression a user gave (an option), compiled without the warnings
    Python's `re` gives for odd but legal patterns (`[[`: "possible nested set"): a bad
    one raises re.error, which the caller turns into its option's error."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return re.compile(pattern)
