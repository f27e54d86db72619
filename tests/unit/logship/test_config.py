from dataclasses import FrozenInstanceError, fields
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

import pytest
import yaml

from agents._options import OptionError
from agents.logship.config import OPTIONS, Config, env_name, load_config, parse_size

BASE = ["--path", "/logs/*.log", "--es", "http://es:9200", "--data-dir", "/state"]


def test_minimal_command_line_and_defaults() -> None:
    cfg = load_config(BASE, {})
    assert cfg.paths == ("/logs/*.log",)
    assert cfg.es == ("http://es:9200",)
    assert cfg.data_dir == Path("/state")
    assert cfg.start_at == "beginning"  # startup lines are the point
    assert cfg.compress is True
    assert (cfg.drain_quiet, cfg.drain_timeout) == (1.0, 25.0)
    assert cfg.flush_interval <= 1.0
    assert cfg.max_line_bytes == 1024 * 1024


def test_env_only_configuration_with_the_issue_s_names() -> None:
    env = {
        "LOGSHIP_PATHS": "/logs/**/*.log, /var/log/app.log",
        "LOGSHIP_ES_URLS": "http://es-0:9200 http://es-1:9200",
        "LOGSHIP_DATA_DIR": "/state",
        "LOGSHIP_BATCH_BYTES": "2MiB",
        "LOGSHIP_COMPRESS": "false",
        "LOGSHIP_FIELDS": "service.name=shop",
    }
    cfg = load_config([], env)
    assert cfg.paths == ("/logs/**/*.log", "/var/log/app.log")
    assert cfg.es == ("http://es-0:9200", "http://es-1:9200")
    assert cfg.batch_bytes == 2 * 1024 * 1024
    assert cfg.compress is False
    assert cfg.field == ("service.name=shop",)


def test_every_option_has_an_env_twin_and_a_flag() -> None:
    help_text = __import__("agents.logship.config", fromlist=["x"]).build_parser().format_help()
    for name, *_ in OPTIONS:
        assert env_name(name) in help_text, name


def test_precedence_cli_env_file(tmp_path: Path) -> None:
    file = tmp_path / "logship.yaml"
    file.write_text(
        "paths: [/from/file.log]\nes-urls: [http://file:9200]\ndata_dir: /file\n"
        "batch_docs: 10\nflush_interval: 3s\nmax_in_flight: 7\n"
    )
    cfg = load_config(
        ["--config", str(file), "--batch-docs", "30"], {"LOGSHIP_FLUSH_INTERVAL": "2s"}
    )
    assert cfg.paths == ("/from/file.log",)
    assert cfg.batch_docs == 30  # flag
    assert cfg.flush_interval == 2.0  # env over file
    assert cfg.max_in_flight == 7  # file over default


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            [],
            {},
            "missing required options: --path GLOB (or LOGSHIP_PATHS): the files to ship; --es URL",
        ),
        (
            ["--path", "x"],
            {},
            "missing required options: --es URL (or LOGSHIP_ES_URLS): Elasticsearch; "
            "--data-dir DIR",
        ),
        (["--path", "x", "--es", "es:9200", "--data-dir", "d"], {}, "is not an http(s):// URL"),
        (
            ["--path", "x", "--es", "http://e"],
            {},
            "missing required options: --data-dir DIR (or LOGSHIP_DATA_DIR)",
        ),
        (BASE, {"LOGSHIP_BATCH_BYTES": "lots"}, "LOGSHIP_BATCH_BYTES: expected a size"),
        (BASE, {"LOGSHIP_START_AT": "middle"}, "LOGSHIP_START_AT: expected one of beginning, end"),
        ([*BASE, "--flush-interval", "soon"], {}, "--flush-interval: invalid duration"),
        ([*BASE, "--max-in-flight", "0"], {}, "--max-in-flight: must be at least 1"),
        ([*BASE, "--field", "novalue"], {}, "--field: expected key=value"),
        ([*BASE, "--data-stream", "App"], {}, "--data-stream: expected DATASET.NAMESPACE"),
        ([*BASE, "--dead-letter", "s3"], {}, "--dead-letter: expected file or index:NAME"),
        ([*BASE, "--password", "x"], {}, "--username: needed"),
        ([*BASE, "--api-key", "k", "--bearer-token", "t"], {}, "choose one of"),
        ([*BASE, "--key-file", "k.pem"], {}, "--key-file: needs --cert-file"),
        ([*BASE, "--queue-bytes", "1KiB"], {}, "--queue-bytes: must be at least --batch-bytes"),
        ([*BASE, "--bogus"], {}, "unrecognized arguments: --bogus"),
    ],
)
def test_bad_values_name_the_field(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError) as info:
        load_config(argv, env)
    assert message in str(info.value)


def test_bad_config_file_names_the_file_and_key(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("paths: [x]\nes: [http://e]\ndata_dir: d\nbatch_docs: many\n")
    with pytest.raises(OptionError, match=r"c\.yaml: batch_docs: expected a whole number"):
        load_config(["--config", str(file)], {})
    file.write_text("pahts: [x]\n")
    with pytest.raises(OptionError, match=r"unknown option 'pahts'"):
        load_config(["--config", str(file)], {})
    file.write_text("- just\n- a list\n")
    with pytest.raises(OptionError, match="must hold a mapping"):
        load_config(["--config", str(file)], {})
    file.write_text("key: [unclosed\n")
    with pytest.raises(OptionError, match="not valid YAML"):
        load_config(["--config", str(file)], {})
    with pytest.raises(OptionError, match="cannot read"):
        load_config(["--config", str(tmp_path / "missing.yaml")], {})


def test_secrets_are_redacted_in_the_dump_and_urls_in_errors() -> None:
    cfg = load_config([*BASE, "--username", "u", "--password", "hunter2"], {})
    assert cfg.as_dict()["password"] == "***"
    assert cfg.password == "hunter2"
    with pytest.raises(OptionError) as info:
        load_config(["--path", "x", "--data-dir", "d", "--es", "ftp://u:hunter2@h"], {})
    assert "hunter2" not in str(info.value)


def test_config_is_read_only() -> None:
    cfg = load_config(BASE, {})
    with pytest.raises(FrozenInstanceError, match="batch_docs"):
        cfg.batch_docs = 1  # type: ignore[misc]
    assert cfg.batch_docs == 2000
    hash(cfg)  # immutable all the way down: the lists are tuples


KIND_TYPES = {"str": str, "secret": str, "path": Path | None, "duration": float, "int": int,
              "size": int, "bool": bool, "list": tuple[str, ...]}  # fmt: skip


def test_config_has_one_typed_field_per_option() -> None:
    assert [f.name for f in fields(Config)] == [name for name, *_ in OPTIONS]
    hints = get_type_hints(Config)
    for name, kind, _, _ in OPTIONS:
        if kind.startswith("choice:"):
            assert get_origin(hints[name]) is Literal, name
            assert list(get_args(hints[name])) == kind.split(":", 1)[1].split("|"), name
        else:
            expected = Path if name == "data_dir" else KIND_TYPES[kind]  # data_dir: required
            assert hints[name] == expected, name


def test_every_value_has_its_field_s_type(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("exclude: ['*.gz']\nfields: [a=b]\ntemplate_file: t.json\n")
    cfg = load_config([*BASE, "--config", str(file)], {"LOGSHIP_INSECURE": "yes"})
    for name, hint in get_type_hints(Config).items():
        value = getattr(cfg, name)
        if get_origin(hint) is Literal:
            assert value in get_args(hint), name
        elif get_origin(hint) is tuple:
            assert isinstance(value, tuple), name
            assert all(isinstance(item, str) for item in value), name
        else:
            assert isinstance(value, hint), name


def test_repr_hides_credentials() -> None:
    cfg = load_config(
        ["--path", "x", "--data-dir", "d", "--es", "https://u:hunter2@es:9200"],
        {"LOGSHIP_API_KEY": "s3cret"},
    )
    assert "hunter2" not in repr(cfg) and "s3cret" not in repr(cfg)
    assert "hunter2" not in str(cfg.as_dict())
    assert cfg.as_dict(redact=False)["es"] == ("https://u:hunter2@es:9200",)


# (option, the flag's argv, the variable's text, the file's value, and the value each gives)
SOURCES = [
    ("batch_docs", ["--batch-docs", "30"], "20", 10, 30, 20, 10),
    ("flush_interval", ["--flush-interval", "3s"], "2s", "1s", 3.0, 2.0, 1.0),
    ("batch_bytes", ["--batch-bytes", "3KiB"], "2KiB", "1KiB", 3072, 2048, 1024),
    ("insecure", ["--insecure"], "false", True, True, False, True),
    ("start_at", ["--start-at", "end"], "beginning", "end", "end", "beginning", "end"),
    ("index", ["--index", "a-%Y"], "b", "c", "a-%Y", "b", "c"),
    ("bearer_token", ["--bearer-token", "t1"], "t2", "t3", "t1", "t2", "t3"),
    ("template_file", ["--template-file", "f.json"], "e.json", "y.json",
     Path("f.json"), Path("e.json"), Path("y.json")),
    ("exclude", ["--exclude", "*.gz"], "*.zip, *.tmp", ["*.bak"],
     ("*.gz",), ("*.zip", "*.tmp"), ("*.bak",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "flag_argv", "env_text", "file_value", "from_flag", "from_env", "from_file"),
    SOURCES,
    ids=[case[0] for case in SOURCES],
)
def test_flag_then_variable_then_file_then_default(
    tmp_path: Path, name: str, flag_argv: list[str], env_text: str, file_value: object,
    from_flag: object, from_env: object, from_file: object,
) -> None:  # fmt: skip
    file = tmp_path / "c.yaml"
    variable = env_name(name)
    default = next(d for n, _, d, _ in OPTIONS if n == name)

    def load(argv: list[str], env: dict[str, str], in_file: dict[str, object]) -> object:
        file.write_text(yaml.safe_dump({"data_dir": "/state", **in_file}))
        return getattr(load_config([*BASE[:4], "--config", str(file), *argv], env), name)

    assert load(flag_argv, {variable: env_text}, {name: file_value}) == from_flag
    assert load([], {variable: env_text}, {name: file_value}) == from_env
    assert load([], {variable: " "}, {name: file_value}) == from_file  # blank: unset
    assert load([], {variable: ""}, {}) == (tuple(default) if name == "exclude" else default)


@pytest.mark.parametrize(
    ("text", "size"),
    [("65536", 65536), ("64KiB", 65536), ("5MB", 5 * 1024**2), ("1g", 1024**3), ("1.5k", 1536)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text, name="x") == size


def test_booleans_can_be_switched_off_on_the_command_line() -> None:
    assert load_config([*BASE, "--no-compress"], {}).compress is False
    assert load_config([*BASE, "--no-compress"], {"LOGSHIP_COMPRESS": "true"}).compress is False


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "json"),
        (["--log-format", "text"], {}, "text"),
        (["--log-format=text"], {}, "text"),
        ([], {"LOGSHIP_LOG_FORMAT": "text"}, "text"),
        (["--log-format", "json"], {"LOGSHIP_LOG_FORMAT": "text"}, "json"),  # flag wins
        ([], {"LOGSHIP_LOG_FORMAT": "  "}, "json"),  # blank: unset
        (["--path", "text"], {}, "json"),  # "text" as another option's value
        (["--log-format"], {}, "json"),  # no value: the parser will say so, in JSON
    ],
)
def test_the_format_of_errors_said_before_the_config_exists(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    from agents.logship.cli import log_format_before_config

    assert log_format_before_config(argv, env) == expected


def test_help_shows_defaults_with_their_units_and_the_choices() -> None:
    from agents.logship.config import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "LOGSHIP_MAX_LINE_BYTES, default 1MiB)" in text
    assert "LOGSHIP_FLUSH_INTERVAL, default 0.1s)" in text
    assert "default beginning; one of beginning|end)" in text
    assert 'one of ""|java|python' in text
    assert "default on)" in text  # --compress


def test_a_yaml_error_is_one_line_with_its_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "logship.yaml"
    bad.write_text("paths: [a\nes: b: c\n")
    with pytest.raises(OptionError) as info:
        load_config(["--config", str(bad)], {})
    assert str(info.value) == (f"--config: {bad} is not valid YAML: line 2, column 3: "
                               "expected ',' or ']', but got ':'")  # fmt: skip
