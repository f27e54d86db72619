"""File identity: device + inode + a hash of the file's first line.

Offsets are keyed by identity, never by path, so a renamed (rotated) file keeps its
place, and a new file that reuses an inode is recognised by its different first line.
The first line is the part of an append-only log that never changes once written, so
the identity stays the same as the file grows — even for a one-line file (Filebeat's
fingerprint ignores files under 1 KiB).
"""

from __future__ import annotations

import base64
import hashlib
import os

HEAD_LIMIT = 1024  # a first line longer than this is identified by its first 1 KiB


class FileId:
    """Immutable identity; `key` is a short stable string for registries and _ids."""

    __slots__ = ("dev", "head", "ino", "key")

    def __init__(self, dev: int, ino: int, head: str) -> None:
        self.dev, self.ino, self.head = dev, ino, head
        digest = hashlib.blake2b(f"{dev}:{ino}:{head}".encode(), digest_size=10).digest()
        self.key = base64.b32encode(digest).decode().lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileId) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"FileId(dev={self.dev}, ino={self.ino}, head={self.head[:8]}…)"


def head_of(first_bytes: bytes) -> str | None:
    """Hash of the first line, or None while the first line is still being written.

    `first_bytes` is the start of the file, at least HEAD_LIMIT bytes when the file has
    them. A first line without its newline yet is not final: None.
    """
    newline = first_bytes.find(b"\n", 0, HEAD_LIMIT)
    if newline >= 0:
        line = first_bytes[: newline + 1]
    elif len(first_bytes) >= HEAD_LIMIT:
        line = first_bytes[:HEAD_LIMIT]
    else:
        return None
    return hashlib.blake2b(line, digest_size=12).hexdigest()


def identify(fd: int, *, final: bool = False) -> FileId | None:
    """Identity of an open file, or None if its first line is incomplete.

    `final` (at drain, or for a file that will not grow): an incomplete first line is
    taken as it is, so a last partial line can still be shipped.
    """
    info = os.fstat(fd)
    first = os.pread(fd, HEAD_LIMIT, 0)
    head = head_of(first)
    if head is None:
        if not final or not first:
            return None
        head = hashlib.blake2b(first, digest_size=12).hexdigest()
    return FileId(info.st_dev, info.st_ino, head)


def document_id(file_key: str, generation: int, offset: int) -> str:
    """Deterministic Elasticsearch _id of the line starting at `offset`.

    The same line re-sent after a crash gets the same _id, so `create` answers 409 and
    the index keeps one copy. `generation` counts truncations of the file, so new lines
    at offsets an old content already used get new ids.
    """
    return f"{file_key}-{generation}-{offset:x}"
