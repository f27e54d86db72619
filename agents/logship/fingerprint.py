"""The fingerprinter: a file's identity is its device, its inode and its first bytes.

Offsets are keyed by identity, never by path, so a renamed (rotated) file keeps its
place, and a new file that reuses an inode is recognised by its different start. The
first line is the part of an append-only log that never changes once written, so the
identity stays the same as the file grows, even for a one-line file (Filebeat's
fingerprint ignores files under 1 KiB).

The head is a hash of the first `length` bytes: the first line with its newline, or its
first HEAD_LIMIT bytes. A first line still being written has no identity yet, except when
it must be shipped as it is (`final`: at drain, the app may have been killed mid-line):
then the head covers the bytes there are, and stays the file's identity when the line is
completed later, in this run or the next, because a file is recognised by whether it still
*starts with* the bytes its head covers (`starts_with`), not by re-hashing its first line.
This module is the only place that computes or compares heads.
"""

from __future__ import annotations

import base64
import hashlib
import os

HEAD_LIMIT = 1024  # a first line longer than this is identified by its first 1 KiB


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class FileId:
    """Immutable identity; `key` is a short stable string for registries and _ids.

    `length` is how many first bytes `head` covers; 0 for an identity recorded before
    lengths were (its head covers the first line, up to HEAD_LIMIT bytes).
    """

    __slots__ = ("dev", "head", "ino", "key", "length")

    def __init__(self, dev: int, ino: int, head: str, length: int = 0) -> None:
        self.dev, self.ino, self.head, self.length = dev, ino, head, length
        key = hashlib.blake2b(f"{dev}:{ino}:{head}".encode(), digest_size=10).digest()
        self.key = base64.b32encode(key).decode().lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileId) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return (
            f"FileId(dev={self.dev}, ino={self.ino}, head={self.head[:8]}…, length={self.length})"
        )


def head_length(first_bytes: bytes, *, final: bool = False) -> int:
    """How many of the file's first bytes its head covers; 0 while there is no identity
    yet (empty, or the first line is incomplete and not `final`)."""
    newline = first_bytes.find(b"\n", 0, HEAD_LIMIT)
    if newline >= 0:
        return newline + 1
    if len(first_bytes) >= HEAD_LIMIT:
        return HEAD_LIMIT
    return len(first_bytes) if final else 0


def head_of(first_bytes: bytes, *, final: bool = False) -> str | None:
    """Hash of the first line, or None while it is still being written (see `head_length`)."""
    length = head_length(first_bytes, final=final)
    return digest(first_bytes[:length]) if length else None


def fingerprint(fd: int, *, final: bool = False) -> FileId | None:
    """Identity of an open file, or None if its first line is incomplete (and not `final`)."""
    info = os.fstat(fd)
    first = os.pread(fd, HEAD_LIMIT, 0)
    length = head_length(first, final=final)
    if not length:
        return None
    return FileId(info.st_dev, info.st_ino, digest(first[:length]), length)


def starts_with(first_bytes: bytes, file_id: FileId) -> bool:
    """Whether a file whose first bytes are `first_bytes` (HEAD_LIMIT of them, when it has
    them) still starts with what identified it as `file_id`: the same file, perhaps grown
    or with its once partial first line completed since."""
    if not file_id.length:  # an identity without a length: its head is the first line
        return head_of(first_bytes) == file_id.head
    return (
        len(first_bytes) >= file_id.length and digest(first_bytes[: file_id.length]) == file_id.head
    )


def document_id(file_key: str, generation: int, offset: int) -> str:
    """Deterministic Elasticsearch _id of the line starting at `offset`.

    The same line re-sent after a crash gets the same _id, so `create` answers 409 and
    the index keeps one copy. `generation` counts truncations of the file, so new lines
    at offsets an old content already used get new ids.
    """
    return f"{file_key}-{generation}-{offset:x}"
