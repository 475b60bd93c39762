"""Read a ``.env`` file's ``NAME=value`` lines, for ``python -m hanko_tornado check`` (no python-dotenv needed).

The common subset of the format: ``#`` comments, blank lines, an optional
``export``, values in single or double quotes (taken as written) or bare (a
`` #`` ends them).  A missing or unreadable file is no settings at all.
"""

from __future__ import annotations

import pathlib

__all__ = ["read_env_file"]


def read_env_file(path: str | pathlib.Path) -> dict[str, str]:
    """The ``NAME=value`` pairs of the file at ``path``; ``{}`` when it cannot be read."""
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or name.startswith("#"):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values
