import typing

import pytest

from agents._options import OptionError
from agents.waitfor.config import OPTIONS, Config, env_name, load_config


def test_defaults() -> None:
    cfg = load_config(["tcp://db:5432"], {})
    assert cfg.targets == ("tcp://db:5432",)
    assert (cfg.timeout, cfg.interval, cfg.attempt_timeout) == (300, 1, 5)
    assert cfg.min_interval == pytest.approx(0.025)
    assert (cfg.consecutive, cfg.any, cfg.invert, cfg.json, cfg.quiet) == (
        1,
        False,
        False,
        False,
        False,
    )
    assert cfg.command == ()


def test_every_option_has_an_env_twin() -> None:
    env = {
        "WAITFOR_TARGETS": "tcp://a:1, 'exec:true'",
        "WAITFOR_TIMEOUT": "10s",
        "WAITFOR_ATTEMPT_TIMEOUT": "2s",
        "WAITFOR_INTERVAL": "500ms",
        "WAITFOR_MIN_INTERVAL": "10ms",
        "WAITFOR_CONSECUTIVE": "3",
        "WAITFOR_ANY": "true",
        "WAITFOR_INVERT": "1",
        "WAITFOR_JSON": "yes",
        "WAITFOR_QUIET": "on",
        "WAITFOR_RESOLV_CONF": "/tmp/resolv.conf",
    }
    cfg = load_config([], env)
    assert cfg.targets == ("tcp://a:1", "exec:true")
    assert (cfg.timeout, cfg.attempt_timeout, cfg.interval) == (10, 2, 0.5)
    assert cfg.min_interval == pytest.approx(0.01)
    assert cfg.consecutive == 3
    assert cfg.any and cfg.invert and cfg.json and cfg.quiet
    assert cfg.resolv_conf == "/tmp/resolv.conf"


def test_flag_wins_over_env() -> None:
    cfg = load_config(["--timeout", "7s", "tcp://a:1"], {"WAITFOR_TIMEOUT": "1h"})
    assert cfg.timeout == 7


def test_env_targets_add_to_cli_targets_without_duplicates() -> None:
    cfg = load_config(["tcp://a:1"], {"WAITFOR_TARGETS": "tcp://a:1 tcp://b:2"})
    assert cfg.targets == ("tcp://a:1", "tcp://b:2")


def test_command_after_double_dash() -> None:
    cfg = load_config(["tcp://a:1", "--", "app", "--timeout", "3"], {})
    assert cfg.command == ("app", "--timeout", "3")
    assert cfg.timeout == 300  # the command's own flags are not ours


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "no targets"),
        (["tcp://a:1", "--"], {}, "nothing after '--'"),
        (["--timeout", "soon", "tcp://a:1"], {}, "--timeout: invalid duration 'soon'"),
        (["tcp://a:1"], {"WAITFOR_TIMEOUT": "soon"}, "WAITFOR_TIMEOUT: invalid duration"),
        (["tcp://a:1"], {"WAITFOR_CONSECUTIVE": "0"}, "WAITFOR_CONSECUTIVE: must be at least"),
        (["tcp://a:1"], {"WAITFOR_ANY": "perhaps"}, "WAITFOR_ANY: expected true or false"),
        (["--interval", "0", "tcp://a:1"], {}, "--interval: must be greater than 0"),
        (["--bogus", "tcp://a:1"], {}, "unrecognized arguments: --bogus"),
        (["tcp://a:1"], {"WAITFOR_TARGETS": "'unterminated"}, "WAITFOR_TARGETS"),
    ],
)
def test_bad_values_name_the_option(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        load_config(argv, env)


def test_targets_and_options_in_any_order() -> None:
    cfg = load_config(["tcp://db:5432", "--timeout", "2m", "http://api/healthz", "--any"], {})
    assert cfg.targets == ("tcp://db:5432", "http://api/healthz")
    assert cfg.timeout == 120 and cfg.any


@pytest.mark.parametrize(
    "name", ["WAITFOR_INTERVAL", "WAITFOR_MIN_INTERVAL", "WAITFOR_ATTEMPT_TIMEOUT"]
)
def test_zero_from_the_environment_blames_the_variable(name: str) -> None:
    with pytest.raises(OptionError, match=f"^{name}: must be greater than 0"):
        load_config(["tcp://a:1"], {name: "0"})


def test_empty_variables_mean_unset() -> None:
    cfg = load_config(["tcp://a:1"], {"WAITFOR_TIMEOUT": "", "WAITFOR_CONSECUTIVE": " "})
    assert (cfg.timeout, cfg.consecutive) == (300, 1)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--json"], {}, True),
        ([], {"WAITFOR_JSON": "yes"}, True),
        ([], {"WAITFOR_JSON": " on "}, True),
        ([], {"WAITFOR_JSON": "maybe"}, False),
        (["tcp://a:1", "--", "app", "--json"], {}, False),  # the command's flag, not ours
    ],
)
def test_wants_json_for_early_errors(argv: list[str], env: dict[str, str], expected: bool) -> None:
    from agents.waitfor.config import wants_json

    assert wants_json(argv, env) is expected


# kind: (the flag's arguments, the value they give, a variable's text, the value it gives)
SAMPLES: dict[str, tuple[list[str], object, str, object]] = {
    "duration": (["7s"], 7.0, "9s", 9.0),
    "int": (["3"], 3, "4", 4),
    "str": (["/a"], "/a", "/b", "/b"),
    "bool": ([], True, "yes", True),  # a bool flag can only switch on
}


@pytest.mark.parametrize(("dest", "flag", "kind"), [option[:3] for option in OPTIONS])
def test_every_option_takes_the_flag_then_the_variable_then_the_default(
    dest: str, flag: str, kind: str
) -> None:
    flag_args, flag_value, env_text, env_value = SAMPLES[kind]
    variable = env_name(dest)

    def load(argv: list[str], env: dict[str, str]) -> object:
        return getattr(load_config(["tcp://a:1", *argv], env), dest)

    default = load([], {})
    against = "no" if kind == "bool" else env_text  # a variable that says otherwise
    assert load([flag, *flag_args], {variable: against}) == flag_value
    assert load([], {variable: env_text}) == env_value != default
    assert load([], {variable: " "}) == default  # blank: unset


def test_config_is_frozen() -> None:
    cfg = load_config(["tcp://a:1"], {})
    with pytest.raises(AttributeError, match="frozen"):
        cfg.timeout = 1  # type: ignore[misc]
    assert cfg.timeout == 300


def test_config_fields_are_typed() -> None:
    hints = typing.get_type_hints(Config)
    assert sorted(hints) == sorted(Config.__slots__)
    cfg = load_config(["tcp://a:1", "--", "app"], {})
    for name, hint in hints.items():
        assert isinstance(getattr(cfg, name), typing.get_origin(hint) or hint), name
