"""Print logship's options as the Markdown table of docs/logship.md, from the code's own table,
so the documentation cannot drift from the options that exist."""

from __future__ import annotations

from agents.logship.config import OPTIONS, default_text, env_name, flag


def shown_default(kind: str, default: object) -> str:
    text = default_text(kind, default)
    return f"`{text}`" if text else "—"


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
