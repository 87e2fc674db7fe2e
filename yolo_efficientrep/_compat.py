"""Version seam: the few Ultralytics internals the heads and the repository's benchmark rely on, one helper each.

Ultralytics changed ``Detect``'s constructor between the releases this plugin supports (8.1: ``Detect(nc, ch)`` with
``reg_max`` fixed at 16; 8.4: ``Detect(nc, reg_max, end2end, ch)``). Everything that depends on such a difference
lives here, next to a contract test (``tests/test_heads.py``) that fails, naming the helper, on a release that changes
it again. Part of the integration layer: the blocks never import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ("autobackend", "exporting_to", "init_detect", "stock_detect")


def _detect_class():
    from ultralytics.nn.modules import Detect

    return Detect


def init_detect(head: nn.Module, nc: int, reg_max: int, ch: list[int] | tuple[int, ...]) -> None:
    """Run ``Detect.__init__`` on ``head`` (a ``Detect`` subclass) for ``nc`` classes, ``reg_max`` bins and ``ch``.

    Afterwards ``head`` carries every attribute Ultralytics' detection code reads (``nc``, ``nl``, ``reg_max``, ``no``,
    ``stride``, ``dfl``) with ``reg_max`` honoured in every release; its ``cv2``/``cv3`` are stock branches that the
    caller replaces.

    Args:
        head (nn.Module): The module being initialised, an instance of a ``Detect`` subclass.
        nc (int): Number of classes.
        reg_max (int): Ultralytics' DFL bin count: 1 for plain 4-channel distances, ``n > 1`` for ``n`` bins 0..n-1.
        ch (list[int] | tuple[int, ...]): Input channels per level.
    """
    from ultralytics.nn.modules.block import DFL

    detect = _detect_class()
    params = inspect.signature(detect.__init__).parameters
    if "reg_max" in params:
        detect.__init__(head, nc=nc, reg_max=reg_max, ch=tuple(ch))
    else:  # Ultralytics < 8.3.x: reg_max is fixed at 16 inside the constructor
        detect.__init__(head, nc=nc, ch=tuple(ch))
    if head.reg_max != reg_max:
        head.reg_max = reg_max
        head.no = nc + 4 * reg_max
        head.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()


def stock_detect(nc: int, reg_max: int, ch: list[int] | tuple[int, ...]) -> nn.Module:
    """A stock ``Detect`` for ``nc`` classes, ``reg_max`` bins and input channels ``ch``, in any supported release."""
    detect = _detect_class()
    head = detect.__new__(detect)
    init_detect(head, nc, reg_max, ch)
    return head


def autobackend(file: str | Path, device: Any, fp16: bool = False) -> nn.Module:
    """Ultralytics' ``AutoBackend`` runner of an exported model ``file`` on ``device`` (fused, quiet), in any release.

    The first constructor argument was renamed (``weights`` up to 8.2, ``model`` since 8.3); it is passed by the name
    the installed release gives it, and the others by keyword.
    """
    from ultralytics.nn.autobackend import AutoBackend

    first = list(inspect.signature(AutoBackend.__init__).parameters)[1]
    if first not in {"weights", "model"}:
        raise RuntimeError(f"AutoBackend's first argument is '{first}', not 'weights' or 'model': update autobackend()")
    return AutoBackend(**{first: str(file)}, device=device, fp16=fp16, fuse=True, verbose=False)


@contextmanager
def exporting_to(model: nn.Module, path: str | Path) -> Iterator[None]:
    """Make Ultralytics' exporter write ``model``'s exports beside ``path`` and named after its stem.

    The exporter names its output after the model's ``pt_path`` (a checkpoint's path), else its YAML file; a model
    built from a packaged YAML would otherwise export into the working directory. ``pt_path`` is removed afterwards.
    """
    had = hasattr(model, "pt_path")
    old = getattr(model, "pt_path", None)
    model.pt_path = str(path)
    try:
        yield
    finally:
        if had:
            model.pt_path = old
        else:
            del model.pt_path
