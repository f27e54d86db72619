import io
from pathlib import Path

import pytest

from agents._log import Logger
from agents._options import OptionError
from agents.waitfor.checks import BuildContext, build_check
from agents.waitfor.targets import TargetError, parse_target, split_targets

CTX = BuildContext(log=Logger("waitfor", stream=io.StringIO()))


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("tcp://db:5432", "db", 5432),
        ("tcp://127.0.0.1:80", "127.0.0.1", 80),
        ("tcp://[::1]:5432", "::1", 5432),
        ("TCP://DB.Example:1", "db.example", 1),
        ("postgres://db", "db", 5432),
        ("postgresql://u@db:6000/app", "db", 6000),
        ("mysql://db", "db", 3306),
        ("redis://:pw@cache", "cache", 6379),
        ("rediss://cache", "cache", 6379),
        ("amqp://mq", "mq", 5672),
        ("amqps://mq", "mq", 5671),
        ("https://es", "es", 443),
        ("http://es:9200/_cluster/health", "es", 9200),
    ],
)
def test_host_and_port(raw: str, host: str, port: int) -> None:
    target = parse_target(raw)
    assert (target.host, target.port) == (host, port)


def test_ipv6_address_keeps_brackets_for_display() -> None:
    assert parse_target("tcp://[::1]:5432").address == "[::1]:5432"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("db", "not a URI"),
        ("localhost", "not a URI: expected scheme://host:port, host:port or exec:COMMAND"),
        ("db:5432x", "unknown scheme 'db'"),
        ("htp://api:80", "unknown scheme 'htp' (did you mean http://? known: "),
        ("postgress://db:5432", "(did you mean postgres://?"),
        ("mysq://db:3306", "(did you mean mysql://?"),
        ("gopher://x:70", "unknown scheme 'gopher'"),
        ("tcp://db", "missing port"),
        ("tcp://:5432", "missing host"),
        ("tcp://db:99999", "invalid URI"),
        ("tcp://db:0", "out of range"),
        ("tcp://db:http", "invalid URI"),
        ("file://etc/passwd", "three slashes"),
        ("unix://", "missing path"),
        ("dns://", "missing name"),
        ("dns://name:53", "takes no port"),
        ("exec:", "needs a command"),
        ("exec:echo 'unterminated", "cannot split command"),
    ],
)
def test_malformed_targets_name_the_problem(raw: str, problem: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(raw)
    assert problem in str(info.value)


def test_options_come_from_the_fragment() -> None:
    target = parse_target("http://api/health?verbose=1#status=200,204&header=X-A:1&header=X-B:2")
    assert target.query == "verbose=1"  # the URL's own query is left to the URL
    assert target.options.list("status") == ["200", "204"]
    assert target.options.all("header") == ["X-A:1", "X-B:2"]


def test_non_http_schemes_take_options_from_the_query_too() -> None:
    target = parse_target("dns://myservice?type=SRV&min=2")
    assert target.options.str("type") == "SRV"
    assert target.options.int("min", 1) == 2
    assert target.query == ""


def test_option_names_are_case_and_underscore_insensitive() -> None:
    target = parse_target("file:///x#Non_Empty=true")
    assert target.options.bool("non-empty") is True


def test_unknown_option_is_rejected_with_the_known_ones() -> None:
    target = parse_target("file:///x#nonempty&colour=blue")
    target.options.bool("nonempty")
    with pytest.raises(TargetError, match=r"unknown option 'colour'.*knows: nonempty"):
        target.options.reject_unknown()


def test_bad_typed_option_names_option_and_target() -> None:
    target = parse_target("dns://x#min=lots")
    with pytest.raises(TargetError, match=r"target 'dns://x#min=lots': option min: expected a"):
        target.options.int("min", 1)


def test_option_given_twice_is_an_error() -> None:
    target = parse_target("http://x#method=GET&method=POST")
    with pytest.raises(TargetError, match="given 2 times"):
        target.options.str("method")


def test_password_is_redacted_in_display() -> None:
    target = parse_target("postgres://app:s3cr%40t@db:5432/app")
    assert target.password == "s3cr@t"
    assert "s3cr" not in target.display
    assert target.display == "postgres://app:***@db:5432/app"


def test_sensitive_options_and_headers_are_redacted() -> None:
    raw = "http://api/x?token=abc&page=2#header=Authorization:Bearer%20zzz&header=X-Trace:1"
    display = parse_target(raw).display
    assert "abc" not in display and "zzz" not in display
    assert "page=2" in display and "X-Trace:1" in display


def test_unparseable_uri_error_does_not_leak_password() -> None:
    with pytest.raises(TargetError) as info:
        parse_target("redis://user:hunter2@cache:notaport")
    assert "hunter2" not in str(info.value)


def test_exec_target_splits_like_a_shell() -> None:
    target = parse_target("exec:pg_isready -h 'my db' -p 5432")
    assert target.command == ("pg_isready", "-h", "my db", "-p", "5432")
    assert target.display == "exec:pg_isready -h 'my db' -p 5432"


def test_dns_name_forms() -> None:
    assert parse_target("dns://myservice").host == "myservice"
    assert parse_target("dns:myservice").host == "myservice"
    assert parse_target("dns://myservice.").host == "myservice."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://a:1 tcp://b:2", ["tcp://a:1", "tcp://b:2"]),
        ("tcp://a:1,tcp://b:2", ["tcp://a:1", "tcp://b:2"]),
        ("tcp://a:1, tcp://b:2\n", ["tcp://a:1", "tcp://b:2"]),
        ("http://x#status=200,204,dns://y", ["http://x#status=200,204", "dns://y"]),
        ("dns://y#values=10.0.0.1,fe80::1", ["dns://y#values=10.0.0.1,fe80::1"]),
        ("'exec:pg_isready -h db' tcp://a:1", ["exec:pg_isready -h db", "tcp://a:1"]),
        ("tcp://a:1,exec:true", ["tcp://a:1", "exec:true"]),
        ("  ", []),
    ],
)
def test_split_targets(text: str, expected: list[str]) -> None:
    assert split_targets(text) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "postgress://app:SECRET@db:5432/x",  # typo in the scheme
        "redis//:SECRET@db:6379",  # not a URI at all
        "postgres://app:se/cret-SECRET@db:5432/x",  # unencoded "/" in the password
        "postgres://app:12/SECRET@db:5432/x",  # ... that even looks like a port
        "redis:/:SECRET@db:6379",
        "redis://user:SECRET@cache:notaport",
    ],
)
def test_passwords_never_reach_error_messages(raw: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(raw)
    assert "SECRET" not in str(info.value)
    assert "***" in str(info.value)


def test_unencoded_slash_in_password_is_explained() -> None:
    with pytest.raises(
        TargetError, match=r"percent-encode the ./., .\?. or .#. in the password \(%2F"
    ):
        parse_target("postgres://app:12/cret@db:5432/x")
    target = parse_target("postgres://app:12%2Fcret@db:5432/x")
    assert (target.host, target.password) == ("db", "12/cret")


@pytest.mark.parametrize(
    "raw",
    [
        "tcp://a..b:1",
        "http://a..b/",
        "postgres://.a",
        "tcp://-a:1",
        f"tcp://{'a' * 64}.b:1",
        "tcp://a_b%20c:1",
    ],
)
def test_invalid_host_names_are_configuration_errors(raw: str) -> None:
    with pytest.raises(TargetError, match="invalid host name"):
        parse_target(raw)


@pytest.mark.parametrize(
    "raw",
    ["tcp://bücher.example:80", "tcp://my_svc.ns.svc:1", "tcp://db.:5432", "tcp://[fe80::1]:1"],
)
def test_valid_unusual_hosts(raw: str) -> None:
    parse_target(raw)


def test_nul_byte_in_path_is_refused() -> None:
    with pytest.raises(TargetError, match="NUL byte"):
        parse_target("file:///tmp/a%00b")


def test_api_keys_in_a_urls_own_query_are_masked() -> None:
    display = parse_target(
        "http://api/x?key=AIzaSECRET&sig=SIGSECRET&page=2#ca=/etc/ca.pem"
    ).display
    assert "SECRET" not in display
    assert "page=2" in display and "ca=/etc/ca.pem" in display


def test_quotes_inside_a_target_survive_the_env_splitter() -> None:
    text = r'http://x/#body="status":\s*"UP" ' + "'exec:pg_isready -h db'"
    assert split_targets(text) == [r'http://x/#body="status":\s*"UP"', "exec:pg_isready -h db"]


@pytest.mark.parametrize("text", ["'unterminated", "tcp://a:1 'exec:x", "x'exec:y z'"])
def test_env_splitter_rejects_unbalanced_quotes(text: str) -> None:
    with pytest.raises(OptionError, match="WAITFOR_TARGETS"):
        split_targets(text)


def test_a_password_file_fills_the_password_and_names_its_problems(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-file\r\n")
    target = parse_target(f"amqp://guest@mq:5672#password_file={secret}")
    assert target.password == "s3cret-from-file"
    assert "s3cret" not in target.display
    with pytest.raises(TargetError, match=r"password-file: cannot read .*/missing: No such file"):
        parse_target(f"redis://cache:6379#password_file={tmp_path}/missing")
    with pytest.raises(TargetError, match="a password in the URI and a password-file"):
        parse_target(f"redis://:pw@cache:6379#password_file={secret}")
    with pytest.raises(TargetError, match="unknown option 'password-file'"):
        build_check(parse_target(f"tcp://db:5432#password_file={secret}"), CTX)


def test_without_reading_files_a_password_file_is_named_not_read(tmp_path: Path) -> None:
    """As `pod-agents inject` parses a target whose file exists only in the pod."""
    target = parse_target(f"redis://cache:6379#password-file={tmp_path}/in-the-pod",
                          read_files=False)  # fmt: skip
    assert (target.password_file, target.password) == (f"{tmp_path}/in-the-pod", None)
    with pytest.raises(TargetError, match="a password in the URI and a password-file"):
        parse_target(f"redis://:pw@cache:6379#password-file={tmp_path}/x", read_files=False)


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("db:5432", "tcp://db:5432"),
        ("127.0.0.1:8080", "tcp://127.0.0.1:8080"),
        ("[::1]:6379", "tcp://[::1]:6379"),
        ("my-db.shop.svc.cluster.local:5432", "tcp://my-db.shop.svc.cluster.local:5432"),
        ("redis:6379", "tcp://redis:6379"),  # a compose service named redis, as wait-for-it
    ],
)
def test_host_and_port_alone_is_a_tcp_target(raw: str, display: str) -> None:
    target = parse_target(raw)
    assert (target.scheme, target.display) == ("tcp", display)


def test_an_unknown_scheme_far_from_every_known_one_gets_no_guess() -> None:
    with pytest.raises(TargetError) as caught:
        parse_target("gopher://x:70")
    assert "did you mean" not in str(caught.value)
