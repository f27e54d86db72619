"""Accept and Content-Type checks the way ES 7.17, 8 and 9 do them
(RestCompatibleVersionHelper), and OpenSearch, which knows no `vnd.elasticsearch` type."""

from __future__ import annotations

import re

from agents.testing.elasticsearch.errors import EsError

_COMPAT = re.compile(r"compatible-with\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_PLAIN_TYPES = {"application/json", "application/x-ndjson"}
_VND_TYPES = {"application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson"}


def compat_version(header: str | None) -> int | None:
    """The `compatible-with=N` of a media type, or None when the header does not ask."""
    if not header:
        return None
    match = _COMPAT.search(header)
    return int(match.group(1)) if match else None


def check_media_types(
    accept: str | None,
    content_type: str | None,
    has_body: bool,
    versions: tuple[int, int] | None,
) -> int | None:
    """Validate Accept/Content-Type like ES does; return the requested version.

    ES accepts `versions` (lowest, major: its own major and the one before); both headers
    must agree when a body is sent. A violation is a 400 `media_type_header_exception`,
    caused by a `status_exception`. With `versions` None (OpenSearch) nothing is checked
    here: an unknown body type is refused by `body_type_supported`.
    """
    if versions is None:
        return None
    lowest, major = versions
    a_version, c_version = compat_version(accept), compat_version(content_type)
    accept_v = major if a_version is None else a_version
    content_v = major if c_version is None else c_version
    problem = None
    if not lowest <= accept_v <= major:
        problem = (
            f"Accept version must be either version {major} or {lowest}, "
            f"but found {accept_v}. Accept={accept}"
        )
    elif has_body and not lowest <= content_v <= major:
        problem = (
            f"Content-Type version must be either version {major} or {lowest}, "
            f"but found {content_v}. Content-Type={content_type}"
        )
    elif has_body and content_v != accept_v:
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            "either one has requested a compatible version and the compatible versions must "
            f"match. Accept={accept}, Content-Type={content_type}"
        )
    elif has_body and (a_version is None) != (c_version is None):
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            f"either one has requested a compatible version. Accept={accept}, "
            f"Content-Type={content_type}"
        )
    if problem is not None:
        raise EsError(
            400,
            "media_type_header_exception",
            "Invalid media-type value on headers [Accept, Content-Type]",
            caused_by=EsError(400, "status_exception", problem),
        )
    return a_version if a_version is not None else c_version


def body_type_supported(content_type: str | None, vnd: bool = True) -> bool:
    """Whether the server would parse a body sent with this Content-Type (else 406);
    `vnd`: it knows the `vnd.elasticsearch` types (Elasticsearch, not OpenSearch)."""
    if not content_type:
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind in _PLAIN_TYPES or (vnd and kind in _VND_TYPES)
