"""Files the plugin ships: model and dataset YAMLs under ``cfg/``, found by bare name."""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ("cfg_dir", "find_yaml", "yaml_names")

_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def cfg_dir() -> Path:
    """Return the directory holding the plugin's YAMLs.

    A wheel carries it inside the package (``yolo_efficientrep/cfg``); a source checkout or an editable install keeps
    it at the repository's top level (``cfg/``).
    """
    for candidate in (_PACKAGE / "cfg", _PACKAGE.parent / "cfg"):
        if (candidate / "models").is_dir():
            return candidate
    raise FileNotFoundError(f"yolo-efficientrep's cfg directory is missing (looked in {_PACKAGE} and its parent)")


@functools.cache
def _index() -> dict[str, Path]:
    """Map each shipped YAML's file name to its path."""
    return {p.name: p for p in sorted(cfg_dir().rglob("*.yaml"))}


def yaml_names(kind: str | None = None) -> list[str]:
    """List the shipped YAML file names, optionally only those under ``cfg/<kind>`` ("models" or "datasets")."""
    return [name for name, path in _index().items() if kind is None or path.parent.name == kind]


def find_yaml(file: str | os.PathLike) -> Path | None:
    """Return the shipped YAML a bare file name refers to, or None.

    Only bare names (no directory part) that do not exist relative to the working directory qualify, so a user's own
    file of the same name always wins.

    Args:
        file (str | os.PathLike): The name or path being looked up.

    Returns:
        (Path | None): The plugin's file, or None when the name is not the plugin's to resolve.
    """
    if not isinstance(file, (str, os.PathLike)):
        return None
    name = str(file).strip()
    if not name or "://" in name or os.path.basename(name) != name or os.path.exists(name):
        return None
    return _index().get(name)
