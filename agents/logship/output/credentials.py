"""The credentials logship sends, kept current while it runs.

Kubernetes updates a mounted Secret in place: each file is a symlink into `..data`, itself a
symlink to a timestamped directory that the kubelet swaps with one atomic rename in the
mount's directory. Elasticsearch passwords and API keys are rotated on a schedule, and the
old ones refused from then on. So the secret files (`--password-file`, `--api-key-file`,
`--bearer-token-file`) and the TLS files (`--ca-file`, `--cert-file`, `--key-file`) are
read again when their directory changes (`App` watches it: the `..data` swap is one
event) and before a 401/403 is retried (`reload()`). A file that cannot be read at that
moment keeps its last value, and says so once; at start a file that cannot be read is a
configuration error.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from agents._options import OptionError

SECRET_FLAGS = {"password": "--password-file", "api_key": "--api-key-file",
                "bearer_token": "--bearer-token-file"}  # fmt: skip
TLS_FLAGS = {"ca_file": "--ca-file", "cert_file": "--cert-file", "key_file": "--key-file"}


def authorization_header(username: str, password: str, api_key: str, token: str) -> str | None:
    """What the official client sends for basic_auth, api_key or bearer_auth (config
    allows at most one of them)."""
    if username:
        pair = f"{username}:{password}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    if api_key:
        return f"ApiKey {api_key}"
    if token:
        return f"Bearer {token}"
    return None


def read_secret(path: Path) -> str:
    """A secret file's text without the line break editors and `echo` leave."""
    return path.read_text(encoding="utf-8").strip()


class Credentials:
    """Where the credentials come from, their current values, and what changed."""

    def __init__(self, config: Any) -> None:
        self.username: str = config.username or ""
        self.files: dict[str, Path] = {
            name: Path(path) for name in SECRET_FLAGS
            if (path := getattr(config, f"{name}_file", None)) is not None
        }  # fmt: skip
        self.values: dict[str, str] = {name: getattr(config, name) or "" for name in SECRET_FLAGS}
        for name, path in self.files.items():
            try:
                self.values[name] = read_secret(path)
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise OptionError(f"{SECRET_FLAGS[name]}: cannot read {path}: {why}") from None
        self.tls_files: dict[str, Path] = {
            name: Path(path) for name in TLS_FLAGS
            if (path := getattr(config, name, None)) is not None
        }  # fmt: skip
        self.unreadable: set[str] = set()  # files that could not be read at the last look
        self._tls_seen = self._tls_contents()

    # --- what is sent ------------------------------------------------------------------

    def authorization(self) -> str | None:
        """The Authorization header the official client sends for these credentials."""
        values = self.values
        return authorization_header(self.username, values["password"], values["api_key"],
                                    values["bearer_token"])  # fmt: skip

    def describe(self) -> str:
        """Who logship says it is, for messages: never a secret."""
        if self.username:
            where = self.files.get("password")
            return f"user {self.username}" + (f" from --password-file {where}" if where else "")
        for name, what in (("api_key", "the API key"), ("bearer_token", "the bearer token")):
            if self.values[name]:
                where = self.files.get(name)
                return what + (f" from {SECRET_FLAGS[name]} {where}" if where else "")
        return "no credentials (anonymous)"

    @property
    def from_files(self) -> bool:
        return bool(self.files or self.tls_files)

    def directories(self) -> set[str]:
        """The directories to watch: where each file's name lives (the Secret's mount)."""
        return {str(path.parent) for path in [*self.files.values(), *self.tls_files.values()]}

    # --- reading again -----------------------------------------------------------------

    def reload(self) -> tuple[bool, bool]:
        """Read every file again → (the Authorization changed, a TLS file changed). A file
        that cannot be read now keeps its last value (`unreadable` names it)."""
        before = self.authorization()
        self.unreadable = set()
        for name, path in self.files.items():
            try:
                self.values[name] = read_secret(path)
            except (OSError, UnicodeDecodeError):
                self.unreadable.add(SECRET_FLAGS[name])
        tls = self._tls_contents()
        tls_changed = bool(self.tls_files) and tls != self._tls_seen and None not in tls.values()
        if tls_changed:
            self._tls_seen = tls
        return self.authorization() != before, tls_changed

    def _tls_contents(self) -> dict[str, bytes | None]:
        contents: dict[str, bytes | None] = {}
        for name, path in self.tls_files.items():
            try:
                with open(path, "rb") as fh:
                    contents[name] = fh.read()
            except OSError:
                contents[name] = None
                self.unreadable.add(TLS_FLAGS[name])
        return contents
