"""What `pod-agents inject` was asked to do, as a frozen `Options`, checked before any input
is read: every target by waitfor's own parser, every glob, URL and pass-through option.

Nothing here reads the inputs or the environment (waitfor's parser reads a target's
`#password-file=` if this machine has that file; one it has not is fine: it is read in the
container).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from agents import __version__
from agents._options import OptionError, parse_duration
from agents.inject.errors import InjectError

NATIVE_SINCE = (1, 29)  # SidecarContainers: beta and on by default from 1.29
DEFAULT_KUBE_VERSION = "1.29"
AUTH_MODES = ("basic", "api-key", "bearer")
GLOB_CHARS = "*?["
WAITFOR_IMAGE = f"pod-agents/waitfor:{__version__}"
LOGSHIP_IMAGE = f"pod-agents/logship:{__version__}"
WAIT_SECRET_DIR = "/etc/waitfor"  # noqa: S105 (--wait-secret NAME is mounted in it)
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Validated flags. `sidecar` is the mode that applies (a `--kube-version` before
    1.29 made it `colocated` whatever was asked)."""

    remove: bool = False
    waits: tuple[str, ...] = ()
    waitfor_args: tuple[str, ...] = ()
    waitfor_image: str = WAITFOR_IMAGE
    wait_secrets: tuple[str, ...] = ()
    ships: tuple[str, ...] = ()
    container: str | None = None
    es: tuple[str, ...] = ()
    es_secret: str | None = None
    es_auth: str = "basic"
    sidecar: str = "native"
    kube_version: tuple[int, int] = NATIVE_SINCE
    drain_timeout: str = "25s"
    logship_args: tuple[str, ...] = ()
    logship_image: str = LOGSHIP_IMAGE
    share_process_namespace: bool = True

    @property
    def drain_seconds(self) -> float:
        return parse_duration(self.drain_timeout, name="--drain-timeout")

    def secret_read_by(self, target: str) -> tuple[str, str] | None:
        """(the --wait-secret, its key) that `target`'s #password-file= names, if any."""
        return secret_of(target, self.wait_secrets)


def parse_kube_version(text: str) -> tuple[int, int]:
    """`1.28`, `v1.30`, `1.31.2` → (major, minor)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", text.strip())
    if not match:
        raise InjectError("--kube-version", f"expected MAJOR.MINOR such as 1.29, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def log_dir(glob: str) -> str:
    """The directory a glob's files are under: its path up to the first component with a
    wildcard, less the file name (`/var/log/shop/*.log` → `/var/log/shop`,
    `/var/log/**/app.log` → `/var/log`)."""
    parts = glob.split("/")[:-1]
    for index, part in enumerate(parts):
        if any(c in part for c in GLOB_CHARS):
            parts = parts[:index]
            break
    return "/".join(parts) or "/"


def check_glob(glob: str) -> None:
    if not glob.startswith("/"):
        raise InjectError(
            "--ship",
            f"{glob!r} is not absolute: give the path the app writes to, "
            "such as /var/log/app/*.log",
        )
    if posixpath.normpath(glob) != glob or "/../" in f"{glob}/":
        raise InjectError("--ship", f"{glob!r}: write it plainly: no '..', '.' or '//' in it")
    if log_dir(glob) == "/":
        raise InjectError("--ship", f"{glob!r}: the files must be in a directory below /")


def check_es_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not one)
    except ValueError as exc:
        raise InjectError("--es", f"cannot read {_redact(url)!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InjectError("--es", f"{_redact(url)!r} is not an http(s)://HOST[:PORT] URL")
    if parts.password is not None:
        raise InjectError(
            "--es",
            f"{_redact(url)!r} has a password in it: credentials go in a Secret "
            "(--es-secret NAME), never in the manifest",
        )


def _redact(url: str) -> str:
    from agents._urls import redact

    return redact(url)


def check_target(target: str, wait_secrets: tuple[str, ...]) -> None:
    """A `--wait` target as waitfor itself parses it; a password in it is refused (it would
    sit in the manifest and in `ps`), and a #password-file= must be in a Secret inject
    mounts (--wait-secret): nothing else is mounted in the waitfor containers."""
    from agents.waitfor.targets import TargetError, parse_target

    try:
        parsed = parse_target(target, read_files=False)
    except TargetError as exc:
        raise InjectError("--wait", str(exc)) from None
    if parsed.password is not None and parsed.password_file is None:
        raise InjectError(
            "--wait",
            f"target {parsed.display!r}: a password in the target would sit in the manifest: "
            f"give it as #password-file={WAIT_SECRET_DIR}/SECRET/KEY with --wait-secret SECRET",
        )
    if parsed.password_file is not None and not secret_file(parsed.password_file, wait_secrets):
        raise InjectError(
            "--wait",
            f"target {parsed.display!r}: password-file {parsed.password_file} is in no Secret "
            f"inject mounts: add --wait-secret SECRET and give "
            f"#password-file={WAIT_SECRET_DIR}/SECRET/KEY (KEY: the Secret's key)",
        )


def secret_of(target: str, secrets: tuple[str, ...]) -> tuple[str, str] | None:
    """(the Secret, its key) that `target`'s #password-file= names, if one of `secrets`."""
    from agents.waitfor.targets import TargetError, parse_target

    try:
        path = parse_target(target, read_files=False).password_file
    except TargetError:
        return None
    return secret_file(path, secrets) if path else None


def secret_file(path: str, secrets: tuple[str, ...]) -> tuple[str, str] | None:
    """`/etc/waitfor/SECRET/KEY` → (SECRET, KEY) when SECRET is one of `secrets`."""
    head, _, key = path.rpartition("/")
    parent, _, secret = head.rpartition("/")
    if parent == WAIT_SECRET_DIR and secret in secrets and _SECRET_KEY.fullmatch(key):
        return secret, key
    return None


def check_waitfor_args(target: str, args: tuple[str, ...]) -> None:
    """`[target, *args]` as waitfor's own option parser takes it, with exactly one target."""
    from agents.waitfor.config import load_config

    _refuse_exits("--waitfor-arg", args)
    try:
        config = quietly(load_config, [target, *args], {})
    except OptionError as exc:
        raise InjectError("--waitfor-arg", f"waitfor refuses {list(args)}: {exc}") from None
    extra = [t for t in config.targets if t != target]
    if extra:
        raise InjectError(
            "--waitfor-arg",
            f"{extra[0]!r} is not a waitfor option (targets go in --wait; one option per "
            "--waitfor-arg, as --waitfor-arg=--timeout=5m)",
        )


def _refuse_exits(flag: str, args: tuple[str, ...]) -> None:
    """--help and --version make a parser print and exit: nothing a container runs."""
    for arg in args:
        name = arg.split("=", 1)[0]
        if arg == "-h" or (
            len(name) > 3 and ("--help".startswith(name) or "--version".startswith(name))
        ):
            raise InjectError(flag, f"{arg!r} would print and exit, not run")


def quietly(function, *args):  # type: ignore[no-untyped-def]
    """Call a program's option parser without letting it print (argparse's usage lines)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return function(*args)
        except SystemExit:
            raise OptionError("its parser exited") from None


def check_logship_args(args: tuple[str, ...]) -> None:
    """What can be told without a pod: no --help/--version, no --config (a file inside the
    container that inject cannot see), no credential values."""
    _refuse_exits("--logship-arg", args)
    for arg in args:
        name = arg.split("=", 1)[0]
        if len(name) > 4 and "--config".startswith(name):
            raise InjectError(
                "--logship-arg",
                f"{arg!r}: a file inside the container, which inject cannot check; "
                "pass the options themselves",
            )
        for secret in ("--password", "--api-key", "--bearer-token"):
            if name == secret or (len(name) > 4 and secret.startswith(name)):
                raise InjectError(
                    "--logship-arg",
                    f"{name}: credentials only by reference: --es-secret NAME mounts a Secret "
                    f"as files ({secret}-file)",
                )


def build(
    *,
    remove: bool = False,
    waits: list[str] | None = None,
    waitfor_args: list[str] | None = None,
    waitfor_image: str | None = None,
    wait_secrets: list[str] | None = None,
    ships: list[str] | None = None,
    container: str | None = None,
    es: list[str] | None = None,
    es_secret: str | None = None,
    es_auth: str | None = None,
    sidecar: str | None = None,
    kube_version: str | None = None,
    drain_timeout: str | None = None,
    logship_args: list[str] | None = None,
    logship_image: str | None = None,
    share_process_namespace: bool = True,
) -> tuple[Options, list[str]]:
    """Flags as parsed → (Options, notes for stderr). Raises InjectError naming the flag."""
    waits_t, ships_t, es_t = tuple(waits or ()), tuple(ships or ()), tuple(es or ())
    waitfor_t, logship_t = tuple(waitfor_args or ()), tuple(logship_args or ())
    notes: list[str] = []
    if remove:
        given = [
            flag
            for flag, value in (
                ("--wait", waits_t),
                ("--ship", ships_t),
                ("--es", es_t),
                ("--es-secret", es_secret),
                ("--wait-secret", wait_secrets),
                ("--waitfor-arg", waitfor_t),
                ("--logship-arg", logship_t),
            )
            if value
        ]
        if given:
            raise InjectError("--remove", f"takes out what inject added: not with {given[0]}")
        return Options(remove=True), notes
    if not waits_t and not ships_t:
        raise InjectError(
            "", "nothing to inject: give --wait TARGET and/or --ship GLOB (or --remove)"
        )
    secrets_t = tuple(dict.fromkeys(wait_secrets or ()))
    for name in secrets_t:
        if not (_SUBDOMAIN.fullmatch(name) and len(name) <= 253):
            raise InjectError("--wait-secret", f"{name!r} is not a Secret name")
    for target in waits_t:
        check_target(target, secrets_t)
        check_waitfor_args(target, waitfor_t)
    read = {found[0] for target in waits_t if (found := secret_of(target, secrets_t))}
    for name in secrets_t:
        if name not in read:
            raise InjectError(
                "--wait-secret",
                f"{name!r}: no --wait target reads it: give the target "
                f"#password-file={WAIT_SECRET_DIR}/{name}/KEY",
            )
    if waitfor_t and not waits_t:
        raise InjectError("--waitfor-arg", "options for waitfor, but no --wait TARGET")
    version = parse_kube_version(kube_version or DEFAULT_KUBE_VERSION)
    mode = sidecar or "native"
    if ships_t:
        for glob in ships_t:
            check_glob(glob)
        if not es_t:
            raise InjectError("--es", "required with --ship: where logship sends the lines")
        for url in es_t:
            check_es_url(url)
        if es_secret is not None and not (
            _SUBDOMAIN.fullmatch(es_secret) and len(es_secret) <= 253
        ):
            raise InjectError("--es-secret", f"{es_secret!r} is not a Secret name")
        if es_auth and not es_secret:
            raise InjectError("--es-auth", "needs --es-secret: the Secret holding the credential")
        check_logship_args(logship_t)
        if mode == "native" and version < NATIVE_SINCE:
            mode = "colocated"
            notes.append(
                f"--kube-version {version[0]}.{version[1]}: native sidecars need 1.29 "
                "(SidecarContainers on by default): logship goes into containers, co-located"
            )
    else:
        for flag, value in (
            ("--es", es_t),
            ("--es-secret", es_secret),
            ("--logship-arg", logship_t),
        ):
            if value:
                raise InjectError(flag, "options for logship, but no --ship GLOB")
    drain = drain_timeout or "25s"
    try:
        parse_duration(drain, name="--drain-timeout")
    except OptionError as exc:
        raise InjectError("--drain-timeout", str(exc).split(": ", 1)[-1]) from None
    options = Options(
        waits=waits_t,
        waitfor_args=waitfor_t,
        waitfor_image=waitfor_image or WAITFOR_IMAGE,
        wait_secrets=secrets_t,
        ships=ships_t,
        container=container,
        es=es_t,
        es_secret=es_secret,
        es_auth=es_auth or "basic",
        sidecar=mode,
        kube_version=version,
        drain_timeout=drain,
        logship_args=logship_t,
        logship_image=logship_image or LOGSHIP_IMAGE,
        share_process_namespace=share_process_namespace,
    )
    return options, notes
