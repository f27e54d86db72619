"""argv + environment → a frozen `Config`. Pure: no I/O beyond reading what it is given.

Every option has an environment twin (`--timeout` ↔ `WAITFOR_TIMEOUT`); a flag on the
command line wins over the variable, the variable over the default.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from agents import __version__
from agents._options import OptionError, env_twin, parse_bool, parse_duration, parse_int, pick
from agents.waitfor.targets import split_targets

DEFAULTS = {
    "timeout": "5m",
    "attempt_timeout": "5s",
    "interval": "1s",
    "min_interval": "25ms",
    "consecutive": "1",
    "resolv_conf": "/etc/resolv.conf",
    "kubeconfig": "",  # KUBECONFIG, else in-cluster, else ~/.kube/config
}


class Config:
    """Everything a run needs, validated; frozen once built.

    Written out rather than a frozen `@dataclass`: `dataclasses` imports `inspect`, which
    nothing else on the already-up path loads: +20 ms on a ~100 ms run, measured.
    """

    targets: tuple[str, ...]
    timeout: float
    attempt_timeout: float
    interval: float
    min_interval: float
    consecutive: int
    any: bool
    invert: bool
    json: bool
    quiet: bool
    resolv_conf: str
    kubeconfig: str
    command: tuple[str, ...]

    __slots__ = (
        "any",
        "attempt_timeout",
        "command",
        "consecutive",
        "interval",
        "invert",
        "json",
        "kubeconfig",
        "min_interval",
        "quiet",
        "resolv_conf",
        "targets",
        "timeout",
    )  # fmt: skip

    def __init__(
        self,
        targets: tuple[str, ...],
        *,
        timeout: float = 300.0,
        attempt_timeout: float = 5.0,
        interval: float = 1.0,
        min_interval: float = 0.025,
        consecutive: int = 1,
        any: bool = False,
        invert: bool = False,
        json: bool = False,
        quiet: bool = False,
        resolv_conf: str = "/etc/resolv.conf",
        kubeconfig: str = "",
        command: tuple[str, ...] = (),
    ) -> None:
        values = dict(locals())
        del values["self"]
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Config is frozen; cannot set {name}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"Config({fields})"


# (dest, flag, kind, help). The env twin is WAITFOR_ + DEST in upper case.
OPTIONS: list[tuple[str, str, str, str]] = [
    ("timeout", "--timeout", "duration", "give up after this long; 0 waits forever"),
    ("attempt_timeout", "--attempt-timeout", "duration", "limit for one check of one target"),
    ("interval", "--interval", "duration", "longest pause between checks of a target"),
    (
        "min_interval",
        "--min-interval",
        "duration",
        "first pauses; their ceiling doubles each second up to --interval",
    ),
    ("consecutive", "--consecutive", "int", "successive successful checks needed"),
    ("any", "--any", "bool", "succeed when any one target is ready, not all"),
    ("invert", "--invert", "bool", "wait until the targets are down instead"),
    ("json", "--json", "bool", "log JSON lines instead of text"),
    ("quiet", "--quiet", "bool", "log only errors"),
    ("resolv_conf", "--resolv-conf", "str", "resolver configuration for dns:// targets"),
    (
        "kubeconfig",
        "--kubeconfig",
        "str",
        "kubeconfig for k8s:// targets (else KUBECONFIG, in a pod its service account, else "
        "~/.kube/config)",
    ),
]


POSITIVE = {"interval", "min_interval", "attempt_timeout"}  # durations where 0 means nothing


def wants_json(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether the user asked for JSON lines, for errors raised before a Config exists."""
    options = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    given = pick("true" if "--json" in options else None, flag="--json", env=env,
                 variable=env_name("json"))  # fmt: skip
    try:
        return given is not None and parse_bool(given[0], name=given[1])
    except OptionError:
        return False


def env_name(dest: str) -> str:
    return env_twin("WAITFOR_", dest)


HELP_EPILOG = """\
targets (options after #; docs/waitfor.md has them all):
  host:port, tcp://host:port        a TCP connection is accepted
  http://host[:port]/path           the response matches: #status=2xx #body=RE #json=PATH:V
                                    (https:// with #ca=, #cert=, #key=, #insecure)
  dns://name                        the name has records: #type=A|AAAA|SRV|... #min=N
  file:///path, unix:///path        the path exists / the socket accepts a connection
  postgres://[user@]host[:port][/db]  the server accepts connections, as pg_isready
                                    (postgresql:// too); #table=NAME exists, #query=SQL
                                    returns a row (waitfor logs in)
  mysql://[user[:pw]@]host[:port][/db]  the server completes its handshake (mariadb://
                                    too); #table=NAME exists, #query=SQL returns a row
  redis://[:pw@]host[:port][/db]    PING answers PONG (rediss:// with TLS); #key=NAME
                                    exists, #value=REGEX its value matches
  amqp://host[:port]                the broker answers the protocol header (amqps://)
  grpc://host:port                  the gRPC health service answers SERVING
                                    (#service=NAME; grpcs:// with TLS)
  k8s://job/NAME                    the Job completed (failed: exit 1 at once)
  k8s://pods?selector=L&min=N       N pods Ready (k8s://pod/NAME: that one)
  k8s://service/NAME                ready endpoints (#min=N)
  k8s://deployment/NAME, k8s://statefulset/NAME   rolled out (#namespace=NS on all)
  exec:COMMAND ARGS...              the command exits 0
  A password can come from a file (a mounted Secret): #password-file=/path.

examples:
  waitfor db:5432 http://api:8080/healthz
  waitfor --timeout 2m postgres://db:5432 redis://cache:6379 -- /app/server --port 8080
  waitfor 'http://elasticsearch:9200/_cluster/health#json=status:green,yellow'
  WAITFOR_TARGETS="dns://myservice tcp://mydb:5432" waitfor

exit codes:
  0        ready (with --invert: down)
  124      timed out; the last line names each target not ready and why
  2        usage or configuration error (a bad option, target or variable)
  126/127  the command after -- is not executable / was not found
  130/143  stopped by SIGINT/SIGTERM while waiting
  1        a target that can never be ready (a failed Job), or any other failure
  other    after --: the command's own exit code

WAITFOR_TARGETS adds targets, separated by whitespace or commas; every option has its
WAITFOR_* twin."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise OptionError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="waitfor",
        usage="waitfor [OPTIONS] TARGET... [-- COMMAND [ARGS...]]",
        description=(
            "Wait until every TARGET is ready, then exit 0 or exec COMMAND (which then is "
            "the process: its signals and exit code are its own)."
        ),
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    for dest, flag, kind, text in OPTIONS:
        env = env_name(dest)
        if kind == "bool":
            parser.add_argument(
                flag, dest=dest, action="store_const", const="true", help=f"{text} (env {env})"
            )
        else:
            default = DEFAULTS[dest]
            shown = f"env {env}, default {default}" if default else f"env {env}"
            parser.add_argument(flag, dest=dest, metavar=kind.upper(), help=f"{text} ({shown})")
    parser.add_argument("--version", action="version", version=f"waitfor {__version__}")
    return parser


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
        if not command:
            raise OptionError("nothing after '--': give the command to run when ready")
    # Targets and options in any order: args: ["tcp://db:5432", "--timeout", "2m", "http://api"]
    parsed = build_parser().parse_intermixed_args(argv)
    values: dict[str, object] = {}
    for dest, flag, kind, _ in OPTIONS:
        given = pick(getattr(parsed, dest), flag=flag, env=env, variable=env_name(dest))
        raw, name = given or (DEFAULTS.get(dest, "false"), flag)
        if kind == "duration":
            values[dest] = parse_duration(raw, name=name)
            if dest in POSITIVE and values[dest] == 0:
                raise OptionError(f"{name}: must be greater than 0")
        elif kind == "int":
            values[dest] = parse_int(raw, name=name, minimum=1)
        elif kind == "bool":
            values[dest] = parse_bool(raw, name=name)
        else:
            values[dest] = raw
    if not values["kubeconfig"] and env.get("KUBECONFIG"):
        values["kubeconfig"] = env["KUBECONFIG"]  # kubectl's variable, as kubectl reads it
    targets = list(parsed.targets)
    if env.get("WAITFOR_TARGETS", "").strip():
        targets += [t for t in split_targets(env["WAITFOR_TARGETS"]) if t not in targets]
    if not targets:
        raise OptionError("no targets: give at least one TARGET or set WAITFOR_TARGETS")
    return Config(targets=tuple(targets), command=tuple(command), **values)  # type: ignore[arg-type]
