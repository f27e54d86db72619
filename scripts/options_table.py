"""Print logship's options as the README's Markdown table, from the code's own table,
so the documentation cannot drift from the options that exist."""

from __future__ import annotations

from pathlib import Path

from agents.logship.config import OPTIONS, env_name, flag


def shown_default(kind: str, default: object) -> str:
    if default in (None, "", []) or kind == "secret":
        return "—"
    if kind == "size" and isinstance(default, int):
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if default % size == 0:
                return f"`{default // size}{unit}`"
    if kind == "duration" and isinstance(default, float):
        return f"`{default:g}s`"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, Path):
        return f"`{default}`"
    return f"`{default}`"


def main() -> None:
    print("| flag | env | YAML key | default | meaning |")
    print("|---|---|---|---|---|")
    for name, kind, default, text in OPTIONS:
        cli = "--path GLOB" if name == "paths" else flag(name)
        if kind == "bool":
            cli = f"{flag(name)} / --no-{flag(name)[2:]}"
        print(
            f"| `{cli}` | `{env_name(name)}` | `{name}` | {shown_default(kind, default)} | {text} |"
        )


if __name__ == "__main__":
    main()
