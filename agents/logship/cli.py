"""The `logship` command. Its implementation is the subject of its own issue."""

from __future__ import annotations

import sys


def main() -> int:
    sys.stderr.write("logship: not yet implemented\n")
    return 2
