"""URLs that may carry a user and password, read the same way by waitfor and logship.

A password is never shown: `redact()` hides it even in a URL too broken to parse. And a
password with an unencoded '/', '?' or '#' is refused before anything reads the URL:
`http://elastic:12345/cret@es:9200` would otherwise parse as host "elastic", port 12345
(part of the password, then printed in every connection error and used as an address).
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

SPLIT_USERINFO = (
    "an '@' after the host: if it ends user:password, percent-encode the '/', '?' or '#' "
    "in the password (%2F, %3F, %23); an '@' that belongs to the path or query is %40"
)
BAD_PORT = "the port must be a number from 0 to 65535"


def redact(raw: str) -> str:
    """`raw` with anything that may be a password replaced by ***: from the first ':'
    after the scheme's slashes (or after the scheme) up to the last '@'."""
    at = raw.rfind("@")
    if at < 0:
        return raw
    before = raw[:at]
    slashes = before.find("//")
    colon = before.find(":", slashes + 2 if slashes >= 0 else 0)
    if colon < 0:
        return raw
    return f"{raw[: colon + 1]}***{raw[at:]}"


def split_password(raw: str) -> bool:
    """Whether `raw` may be user:password@host with a '/', '?' or '#' in the password:
    an '@' after the end of the authority (the first '/', '?' or '#'), and a ':' before
    that '@'. `http://u:p@ss/x@h` is such a case too (host "ss"): so an '@' in a path or
    query goes %40 whenever a ':' comes before it."""
    _, sep, rest = raw.partition("://")
    if not sep:
        return False
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    cut = min(ends, default=len(rest))
    last_at = rest.rfind("@")
    return last_at > cut and ":" in rest[:last_at]


def split(raw: str) -> tuple[SplitResult, int | None]:
    """urlsplit(raw) and its port; ValueError with a message that quotes nothing of the
    URL (urllib's own quote the port text, which may be part of a password)."""
    if split_password(raw):
        raise ValueError(SPLIT_USERINFO)
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise ValueError("not a URL (an IPv6 address goes in [brackets])") from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError(BAD_PORT) from None
    return parts, port
