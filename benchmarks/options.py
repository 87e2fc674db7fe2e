"""``key=value`` command lines for the benchmark scripts, in the ``yolo`` / ``yolo-efficientrep`` dialect."""

from __future__ import annotations

import sys
from typing import Any, Callable

from yolo_efficientrep.cli import UsageError, _bool, _int, _list


def parse_options(argv: list[str] | None, keys: dict[str, Callable[[str], Any]], program: str) -> dict[str, Any]:
    """Parse ``argv`` (default ``sys.argv[1:]``) into typed options; a bad argument exits with status 2 and a hint.

    ``keys`` maps each key to ``bool``, ``int``, ``list`` or ``str``; a bare boolean key means True; lists: ``[a,b]``.
    """
    parsers = {bool: _bool, int: _int, list: _list, str: str}
    argv = sys.argv[1:] if argv is None else argv
    options: dict[str, Any] = {}
    try:
        for token in argv:
            key, sep, value = token.partition("=")
            if key not in keys:
                valid = ", ".join(f"{k}=..." for k in sorted(keys))
                raise UsageError(f"invalid argument '{token}'; valid arguments: {valid}")
            if not sep and keys[key] is not bool:
                raise UsageError(f"'{key}' needs a value, e.g. {key}=...")
            try:
                options[key] = parsers[keys[key]](value if sep else "True")
            except UsageError as e:
                raise UsageError(f"{key}: {e}") from None
    except UsageError as e:
        print(f"{program}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return options
