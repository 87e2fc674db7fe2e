"""Ultralytics integration: the only module of the plugin that touches Ultralytics internals.

``register()`` changes these things, all undone exactly by ``unregister()``:

1. It binds the plugin block names in ``ultralytics.nn.tasks``, whose module namespace ``parse_model`` resolves YAML
   module names in.
2. It wraps ``ultralytics.nn.tasks.parse_model``. Rows naming a plugin block are first built as a stock *stand-in*
   with the same channel semantics (``Conv`` for ``(c1, c2, ...)`` blocks, ``C3`` for ``(c1, c2, n, ...)`` blocks), so
   Ultralytics applies its own input-channel, width (``make_divisible``, ``max_channels``) and depth rules in every
   version; the wrapper reads the resolved ``c1``, ``c2`` and ``n`` back and builds the plugin block in its place.
   Multi-input blocks (``BiFusion``) read the channels of their extra inputs from throw-away ``Conv`` probes appended
   after the last row. The plugin head (``EffiDeHead``) stands in as ``Detect``, so Ultralytics hands it ``nc`` and the
   channels of its inputs as it does for its own heads. Stock YAMLs (no plugin row) go straight to the original
   function. The wrapper replaces ``parse_model`` wherever Ultralytics binds it (also ``ultralytics.nn.parse_model``).
   Before returning a plugin model it checks what Ultralytics would only report as a bare error (``from`` indices,
   repeats, channels, block arguments, the sizes a multi-input layer receives) and names the layer and the module.
3. It wraps ``ultralytics.utils.checks.check_file`` (and the copies other Ultralytics modules imported by value) so
   that bare names of the plugin's YAMLs (``yolov8n-efficientrep.yaml``, ``shapes.yaml``) resolve from any directory;
   a file of that name in the working directory still wins. ``ultralytics.data.utils.check_cls_dataset`` and
   ``check_det_dataset`` are wrapped the same way so the offline datasets (``data=shapes.yaml``, ``data=shapes-cls``)
   are generated on first use, before Ultralytics looks for (and would report "downloading") their images.
4. It adds exactly the plugin's block classes to torch's ``weights_only`` allow-list, for Ultralytics' opt-in restricted
   loading (``ULTRALYTICS_SAFE_LOAD=1``).
5. It wraps ``check_requirements`` only to log which extra to install when an export dependency is missing and
   Ultralytics cannot install it (offline or AutoInstall off).
6. It wraps ``BaseModel.load`` (how training and ``YOLO(...).load()`` transfer weights) to refuse weights that cannot
   be trained from: a fused plugin model, or a ``deploy`` checkpoint (``NotTrainableError``). Either would transfer
   only a few tensors and train silently from scratch.
7. It wraps ``guess_model_task`` so a model config whose last row is a plugin head is a ``detect`` model (Ultralytics
   guesses a config's task from its last module's name; built models are recognised by ``isinstance(m, Detect)``).
8. It wraps ``yaml_model_load`` to refuse, by file name, a model YAML without ``backbone`` and ``head`` rows (an empty
   or comment-only file), which Ultralytics would index into with a bare ``KeyError``.

The ``parse_model`` wrapper also refuses, for stock and plugin YAMLs alike, a model that needs a newer Ultralytics than
the installed one (``UnsupportedVersionError`` naming that release): stock modules the installed release lacks (YOLO11's
``C3k2``/``C2PSA`` before 8.3.0, YOLO26's task heads before 8.4.0) and top-level keys it would ignore silently
(``end2end``, ``reg_max`` before 8.4.0), where Ultralytics would raise a bare ``KeyError`` or build another model.

Fusing needs no patch of Ultralytics: ``RepVGGBlock`` and ``SimConv`` subclass ``RepConv`` and ``Conv``, which
Ultralytics' ``model.fuse()`` handles, and ``install_fuse_contract`` points the ``forward_fuse`` it swaps in at the
units' own ``forward``. Other Ultralytics internals the package relies on outside this module (the ONNX export's node
names, for ``quantize``) have one helper each here, each with a contract test.
Supported Ultralytics versions: ``>=8.1, <8.5``.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import difflib
import functools
import importlib
import inspect
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = (
    "SUPPORTED_ULTRALYTICS",
    "BLOCKS",
    "ModelConfigError",
    "NotTrainableError",
    "RegistrationError",
    "UnknownModuleError",
    "UnsupportedVersionError",
    "check_ultralytics_version",
    "is_registered",
    "register",
    "unregister",
)

SUPPORTED_ULTRALYTICS = ((8, 1), (8, 5))  # [oldest, newest) major.minor
_MARK = "_yolo_efficientrep"  # attribute set on every wrapper this module installs


class ModelConfigError(ValueError):
    """A model YAML row that cannot be built; the message names the layer index and the module."""


class UnknownModuleError(ModelConfigError, KeyError):
    """A model YAML names a module that neither Ultralytics nor the plugin provides (a ``KeyError``, like stock)."""

    __str__ = Exception.__str__  # KeyError would print the message quoted


class NotTrainableError(ValueError):
    """Weights to train from that would not transfer: a fused plugin model or a ``deploy`` checkpoint."""


class RegistrationError(RuntimeError):
    """A name the plugin needs in ``ultralytics.nn.tasks`` is bound to a different class."""


class UnsupportedVersionError(RuntimeError):
    """The installed Ultralytics is outside the supported range, or older than a model YAML needs."""


def check_ultralytics_version() -> str:
    """Return the installed Ultralytics version, or raise ``UnsupportedVersionError`` naming the supported range."""
    import ultralytics  # a partially initialised package is fine: __version__ is its first statement

    version = getattr(ultralytics, "__version__", "0")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    (lo, hi) = SUPPORTED_ULTRALYTICS
    if not lo <= parts < hi:
        raise UnsupportedVersionError(
            f"yolo-efficientrep supports ultralytics>={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}; found ultralytics {version}. "
            f"Install a supported release, e.g. pip install 'ultralytics>={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}'"
        )
    return version


# Fail fast with the supported range before the blocks import anything from Ultralytics.
check_ultralytics_version()

from . import blocks, heads  # noqa: E402
from ._utils import qualname as _qualname  # noqa: E402
from .data import DATASETS, GENERATED_FOLDERS, generate_dataset  # noqa: E402
from .resources import cfg_dir, find_yaml, yaml_names  # noqa: E402

# How each block's YAML row is parsed: "single" (c1, c2, *args), "repeat" (c1, c2, n, *args) and "multi"
# ([c1 of each input], c2, *args), which match stock Conv, C3 and Concat-fed rows.
BLOCKS: dict[str, tuple[type[nn.Module], str]] = {
    "RepVGGBlock": (blocks.RepVGGBlock, "single"),
    "QARepVGGBlock": (blocks.QARepVGGBlock, "single"),
    "QARepVGGBlockV2": (blocks.QARepVGGBlockV2, "single"),
    "SimConv": (blocks.SimConv, "single"),
    "Transpose": (blocks.Transpose, "single"),
    "BottleRep": (blocks.BottleRep, "single"),
    "SimSPPF": (blocks.SimSPPF, "single"),
    "CSPSPPF": (blocks.CSPSPPF, "single"),
    "SimCSPSPPF": (blocks.SimCSPSPPF, "single"),
    "RepBlock": (blocks.RepBlock, "repeat"),
    "BepC3": (blocks.BepC3, "repeat"),
    "BiFusion": (blocks.BiFusion, "multi"),
    "EffiDeHead": (heads.EffiDeHead, "head"),
}
# "head" rows ([P3, P4, P5] -> (nc, *args, ch=[c of each input])) stand in as Detect, fed by Ultralytics its own way
_STAND_IN = {"single": "Conv", "repeat": "C3", "multi": "Conv", "head": "Detect"}

# Stock modules newer than the oldest supported Ultralytics, with the release that added them (YOLO11: 8.3.0, YOLO26:
# 8.4.0). A model YAML naming one that the installed release lacks is refused with that release, not a bare KeyError.
NEWER_STOCK_MODULES = {
    "C3k2": "8.3.0",
    "C3k": "8.3.0",
    "C2PSA": "8.3.0",
    "C2fPSA": "8.3.0",
    "PSABlock": "8.3.0",
    "Segment26": "8.4.0",
    "Pose26": "8.4.0",
    "OBB26": "8.4.0",
}
# Top-level model YAML keys older releases ignore silently (a different model), with the release that reads them.
# Each entry: key -> (release, the value older releases behave as, what the key selects).
NEWER_YAML_KEYS = {
    "end2end": ("8.4.0", False, "YOLO26's NMS-free one-to-one head"),
    "reg_max": ("8.4.0", 16, "the head's DFL bin count"),
}


# ---------------------------------------------------------------------------------------------------------------------
# Contracts with Ultralytics internals used outside this module: one helper each, each with a contract test against
# the installed Ultralytics (tests/test_contracts.py) that names the helper.


def install_fuse_contract(*classes: type[nn.Module]) -> None:
    """Make Ultralytics' ``model.fuse()`` leave plugin units running their own ``forward``.

    ``BaseModel.fuse()`` (8.1 through 8.4) calls ``fuse_convs()`` on every ``RepConv`` and then sets
    ``m.forward = m.forward_fuse``; on every ``Conv`` that still has a ``bn`` it folds the BN itself, deletes ``bn`` and
    makes the same swap. The plugin's ``RepVGGBlock`` family and ``SimConv`` subclass those two classes so that the
    fuse recognises them, but their ``forward`` already follows their state (branches or fused conv), so the swap must
    land on that ``forward`` and not on a stock ``forward_fuse`` that reads the stock classes' attributes. The blocks
    stay unaware of this; it is installed on their classes here, when the integration is imported.

    Args:
        *classes (type[nn.Module]): Unit classes whose ``forward`` follows their fused state.
    """
    for cls in classes:
        cls.forward_fuse = cls.forward


install_fuse_contract(blocks.RepVGGBlock, blocks.SimConv)  # the QARepVGG blocks inherit RepVGGBlock's


def onnx_head_decode_nodes(model: Any) -> list[str]:
    """Names of the detection head's own decode nodes in an ONNX model exported by Ultralytics.

    Relies on how Ultralytics' ONNX export (through ``torch.onnx``, 8.1 through 8.4) names nodes: by module path,
    ``/model.<i>/<Op>_<n>`` for the ops of layer ``i``'s own ``forward`` and ``/model.<i>/<child>/.../<Op>`` for its
    submodules'. The head is the layer with the highest index; its decode is its own ops (sigmoid, box maths, concat)
    and its ``dfl`` submodule's, while its branch convs (``cv2``, ``cv3``, ...) are not part of it.

    Args:
        model (onnx.ModelProto): The exported model.

    Returns:
        (list[str]): The decode nodes' names, in graph order; empty when no node follows the naming (e.g. a graph
        that was not exported from an Ultralytics model).
    """
    names = [n.name for n in model.graph.node]
    layers = [int(m.group(1)) for n in names if (m := re.match(r"^/model\.(\d+)/", n))]
    if not layers:
        return []
    head = f"model.{max(layers)}"
    excluded = []
    for name in names:
        parts = name.split("/")[1:]
        if parts and parts[0] == head and (len(parts) == 2 or parts[1].startswith("dfl")):
            excluded.append(name)
    return excluded


def _tasks():
    """Import ``ultralytics.nn.tasks`` after checking the Ultralytics version."""
    check_ultralytics_version()
    import ultralytics.nn.tasks as tasks

    return tasks


def _is_ours(obj: Any) -> bool:
    return getattr(obj, _MARK, False)


def _same_class(a: Any, b: type) -> bool:
    """True for the identical class, or the same class re-imported (module reload)."""
    return a is b or (isinstance(a, type) and _qualname(a) == _qualname(b))


def is_registered() -> bool:
    """Return whether the plugin is registered in the imported ``ultralytics.nn.tasks``."""
    tasks = sys.modules.get("ultralytics.nn.tasks")
    return tasks is not None and _is_ours(getattr(tasks, "parse_model", None))


def register() -> None:
    """Make stock Ultralytics parse, scale and resolve the plugin's blocks and YAMLs. Idempotent.

    Raises:
        UnsupportedVersionError: The installed Ultralytics is outside ``SUPPORTED_ULTRALYTICS``.
        RegistrationError: A plugin block name is already bound to another class in ``ultralytics.nn.tasks``;
            nothing is changed in that case.
    """
    tasks = _tasks()
    conflicts = [
        f"{name} -> {_qualname(tasks.__dict__[name])}"
        for name, (cls, _) in BLOCKS.items()
        if name in tasks.__dict__ and not _same_class(tasks.__dict__[name], cls)
    ]
    if conflicts:
        autoload_off = os.environ.get("YOLO_EFFICIENTREP_AUTOLOAD", "1").strip().lower() in {"0", "false", "no", "off"}
        alternative = (
            "binding, or do not import yolo_efficientrep and use that implementation instead."
            if autoload_off  # already off: this registration came from an explicit import
            else "binding, or set YOLO_EFFICIENTREP_AUTOLOAD=0 and use that implementation instead."
        )
        raise RegistrationError(
            "yolo-efficientrep cannot register: ultralytics.nn.tasks already binds "
            f"{', '.join(conflicts)} (another plugin or a modified Ultralytics). Nothing was changed; remove the other "
            + alternative
        )
    for name, (cls, _) in BLOCKS.items():
        setattr(tasks, name, cls)
    if not _is_ours(tasks.parse_model):
        _replace_everywhere("parse_model", tasks.parse_model, _wrap_parse_model(tasks.parse_model))
    for module_name, attr, factory in _WRAPPED_FUNCTIONS:
        _wrap_everywhere(module_name, attr, factory)
    if not _is_ours(tasks.BaseModel.load):
        tasks.BaseModel.load = _wrap_load(tasks.BaseModel.load)
    _set_safe_globals(add=True)


def unregister() -> None:
    """Undo ``register()``: restore Ultralytics' own functions and allow-list, and remove the names."""
    tasks = sys.modules.get("ultralytics.nn.tasks")
    if tasks is not None:
        if _is_ours(tasks.parse_model):  # also its re-exports, e.g. ultralytics.nn.parse_model
            _replace_everywhere("parse_model", tasks.parse_model, tasks.parse_model.__wrapped__)
        for name, (cls, _) in BLOCKS.items():
            if _same_class(tasks.__dict__.get(name), cls):
                delattr(tasks, name)
        if _is_ours(tasks.BaseModel.load):
            tasks.BaseModel.load = tasks.BaseModel.load.__wrapped__
    _set_safe_globals(add=False)
    for module_name, attr, _ in _WRAPPED_FUNCTIONS:
        _unwrap_everywhere(module_name, attr)


def _replace_everywhere(attr: str, old: Any, new: Any) -> None:
    """Bind ``new`` wherever an Ultralytics module binds ``old`` as ``attr`` (the source and its re-exports)."""
    for module in _ultralytics_modules():
        if getattr(module, attr, None) is old:
            setattr(module, attr, new)


def _set_safe_globals(add: bool) -> None:
    """Add (or remove) exactly the plugin's block classes to torch's ``weights_only`` allow-list.

    Ultralytics' opt-in restricted loading (``ULTRALYTICS_SAFE_LOAD=1``) unpickles checkpoints with
    ``weights_only=True`` and allow-lists only its own and torch's classes; plugin checkpoints need these too.
    """
    serialization = torch.serialization
    if not hasattr(serialization, "add_safe_globals"):  # torch < 2.4 has no allow-list (nor restricted loading)
        return
    ours = {cls for cls, _ in BLOCKS.values()}
    if add:
        serialization.add_safe_globals(sorted(ours, key=_qualname))
    else:
        kept = [g for g in serialization.get_safe_globals() if (g[0] if isinstance(g, tuple) else g) not in ours]
        serialization.clear_safe_globals()
        serialization.add_safe_globals(kept)


# --------------------------------------------------------------------------------------------------- YAML lookup
def _ultralytics_modules() -> list[Any]:
    return [m for name, m in list(sys.modules.items()) if name.split(".")[0] == "ultralytics" and m is not None]


_PENDING: set[tuple[str, str]] = set()  # wraps deferred because their module was still being imported


def _wrap_everywhere(module_name: str, attr: str, factory) -> None:
    """Wrap ``module.attr`` at its source and in every Ultralytics module that imported it by value.

    When registration runs while ``module`` is itself mid-import (its import led to ``ultralytics.nn.tasks``, as in
    Ultralytics 8.1), the function does not exist yet: the wrap is deferred to ``_complete_pending()``, which the
    plugin's ``parse_model`` and ``check_file`` wrappers call, i.e. before any dataset is checked.
    """
    source = importlib.import_module(module_name)
    original = getattr(source, attr, None)
    if original is None:
        _PENDING.add((module_name, attr))
        return
    _PENDING.discard((module_name, attr))
    if _is_ours(original):
        return
    wrapper = factory(original)
    setattr(wrapper, _MARK, True)
    for module in _ultralytics_modules():
        if getattr(module, attr, None) is original:
            setattr(module, attr, wrapper)


def _complete_pending() -> None:
    """Apply the wraps ``register()`` had to defer (cheap no-op once there are none)."""
    if _PENDING:
        for module_name, attr, factory in _WRAPPED_FUNCTIONS:
            if (module_name, attr) in _PENDING:
                _wrap_everywhere(module_name, attr, factory)


def _unwrap_everywhere(module_name: str, attr: str) -> None:
    """Undo ``_wrap_everywhere``."""
    _PENDING.discard((module_name, attr))
    source = sys.modules.get(module_name)
    wrapper = getattr(source, attr, None)
    if source is None or not _is_ours(wrapper):
        return
    for module in _ultralytics_modules():
        if getattr(module, attr, None) is wrapper:
            setattr(module, attr, wrapper.__wrapped__)


def _wrap_check_file(original):
    @functools.wraps(original)
    def check_file(file, *args, **kwargs):
        _complete_pending()
        shipped = find_yaml(file)
        if shipped is not None:
            return original(str(shipped), *args, **kwargs)
        try:
            return original(file, *args, **kwargs)
        except FileNotFoundError as e:
            if not str(file).endswith((".yaml", ".yml")):
                raise
            name = Path(str(file)).name
            scaled = re.fullmatch(r"(yolo[a-z]*\d+)([a-z])(-.+\.ya?ml)", name)  # e.g. yolov8q-efficientrep.yaml
            base = Path(str(file)).with_name(f"{scaled[1]}{scaled[3]}") if scaled else None
            base_path = find_yaml(base.name) if base and not base.exists() else base
            scales = []
            if base_path is not None and base_path.is_file():
                import yaml

                with contextlib.suppress(Exception):  # an unreadable file: the generic message below
                    scales = [str(k) for k in (yaml.safe_load(base_path.read_text()) or {}).get("scales") or {}]
            if scales:
                raise FileNotFoundError(
                    f"'{file}': '{scaled[2]}' is not one of the scales of {base.name} ({', '.join(scales)}), "
                    f"e.g. {scaled[1]}{scales[0]}{scaled[3]}"
                ) from None
            kind = "models" if name.startswith("yolo") else None  # a model name gets model names as suggestions
            names = yaml_names(kind)
            close = difflib.get_close_matches(str(file), names, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            shipped = "model YAMLs" if kind else "YAMLs"
            raise FileNotFoundError(f"{e}.{hint} {shipped} shipped by yolo-efficientrep: {', '.join(names)}") from None

    return check_file


def _wrap_check_cls_dataset(original):
    """Generate the plugin's folder datasets (``data=shapes-cls``) under ``datasets_dir`` on first use."""

    @functools.wraps(original)
    def check_cls_dataset(dataset, *args, **kwargs):
        name = str(dataset)
        if name in GENERATED_FOLDERS and not Path(name).exists():
            root = Path(sys.modules[original.__module__].DATASETS_DIR) / name
            if not root.is_dir():
                generate_dataset(name, root)
        return original(dataset, *args, **kwargs)

    return check_cls_dataset


def _shipped_dataset(dataset: Any) -> Path | None:
    """The plugin's dataset YAML that ``dataset`` names (``shapes.yaml``, bare ``shapes`` or its path), or None."""
    name = str(dataset)
    if not name.endswith((".yaml", ".yml")):
        name += ".yaml"  # Ultralytics reads a bare dataset name as <name>.yaml
    path = find_yaml(name)
    if path is None and Path(name).is_file():
        path = Path(name).resolve()
    datasets = (cfg_dir() / "datasets").resolve()
    return path if path is not None and path.resolve().parent == datasets and path.stem in DATASETS else None


def _wrap_check_det_dataset(original):
    """Generate a missing shipped dataset (``data=shapes.yaml``...) before Ultralytics looks for its images.

    Left to itself, Ultralytics runs the YAML's ``download:`` script (which generates it too) between "images not
    found" and "Dataset download success" lines, for data that is generated offline.
    """

    @functools.wraps(original)
    def check_det_dataset(dataset, *args, **kwargs):
        shipped = _shipped_dataset(dataset)
        if shipped is not None:
            import yaml

            data = yaml.safe_load(shipped.read_text())
            root = Path(sys.modules[original.__module__].DATASETS_DIR) / data["path"]
            if not (root / data["val"]).exists():
                generate_dataset(shipped.stem, root)
        return original(dataset, *args, **kwargs)

    return check_det_dataset


# Packages of the plugin's ``export`` extra, by the distribution names Ultralytics checks for.
EXPORT_EXTRA = ("onnx", "onnxslim", "onnxruntime", "openvino", "nncf")


def _wrap_check_requirements(original):
    """When Ultralytics cannot install an export dependency itself (offline, AutoInstall off), name the extra."""

    @functools.wraps(original)
    def check_requirements(requirements=(), *args, **kwargs):
        satisfied = original(requirements, *args, **kwargs)
        if satisfied is False:
            from importlib.metadata import PackageNotFoundError, version

            wanted = [requirements] if isinstance(requirements, str) else list(requirements or ())
            names = {re.match(r"[A-Za-z0-9_-]+", str(r)).group(0).lower() for r in wanted if isinstance(r, str)}
            missing = []
            for name in sorted(names & set(EXPORT_EXTRA)):
                try:
                    version(name)
                except PackageNotFoundError:
                    missing.append(name)
            if missing:
                logging.getLogger("ultralytics").warning(
                    f"yolo-efficientrep: {', '.join(missing)} missing; install the export dependencies with "
                    "pip install '.[export]' in a clone of yolo-efficientrep (not on PyPI yet)"
                )
        return satisfied

    return check_requirements


def _wrap_guess_model_task(original):
    """Tell Ultralytics that a model config ending in a plugin head (``EffiDeHead``) is a detection model.

    A config needing a newer Ultralytics is refused here already (``_check_release``): older releases guess no task
    for heads they do not know (YOLO26's ``Segment26``...) and fail before the model is parsed.

    Stock Ultralytics guesses the task of a config from its last module's name ("detect" in it); a built model is
    recognised by ``isinstance(head, Detect)``, which the plugin heads already satisfy.
    """

    @functools.wraps(original)
    def guess_model_task(model, *args, **kwargs):
        cfg = model if isinstance(model, dict) else None
        if cfg is None and isinstance(model, (str, Path)) and Path(model).suffix in {".yaml", ".yml"}:
            with contextlib.suppress(Exception):
                cfg = sys.modules[original.__module__].yaml_model_load(model)
        if cfg is not None and _no_rows_error(cfg) is None:  # e.g. Segment26 on 8.1: no task guessed, a bare KeyError
            _check_release(cfg, [*cfg["backbone"], *cfg["head"]], sys.modules[original.__module__])
        with contextlib.suppress(Exception):
            if BLOCKS[cfg["head"][-1][-2]][1] == "head":
                return "detect"
        return original(model, *args, **kwargs)

    return guess_model_task


def _untrainable(model: Any) -> str | None:
    """Why ``model`` cannot be trained from (``None`` when it can): fused plugin blocks, or a deploy checkpoint."""
    if not isinstance(model, nn.Module):
        return None
    units = (blocks.RepVGGBlock, blocks.SimConv)  # the QARepVGG blocks subclass RepVGGBlock
    fused = [name for name, m in model.named_modules() if isinstance(m, units) and m.fused]
    if fused:
        return (
            f"the model is fused: its rep blocks were collapsed into single convs by fuse() ({len(fused)} of them, "
            f"e.g. {fused[0]}), so almost no tensor would transfer and training would silently start from scratch. "
            "Train from the unfused checkpoint that training wrote (last.pt / best.pt); note that predict and val "
            "fuse a model in memory, so load the checkpoint again, e.g. YOLO('best.pt'), before training"
        )
    cfg = getattr(model, "yaml", None)
    rows = [*cfg.get("backbone", []), *cfg.get("head", [])] if isinstance(cfg, dict) else []
    names = {row[2] for row in rows if isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[2], str)}
    ours = tuple(cls for cls, _ in BLOCKS.values())
    if names & set(BLOCKS) and not any(isinstance(m, ours) for m in model.modules()):
        return (
            "these weights come from a yolo-efficientrep deploy checkpoint: its YAML names plugin blocks but its "
            "layers were rewritten as fused stock modules for inference, so almost no tensor would transfer and "
            "training would silently start from scratch. Deploy checkpoints are for predict, val and export; train "
            "from the training checkpoint it was made from"
        )
    return None


def _wrap_load(original):
    """Refuse to transfer weights that would not transfer (see ``_untrainable``)."""

    @functools.wraps(original)
    def load(self, weights, *args, **kwargs):
        source = (weights.get("ema") or weights.get("model")) if isinstance(weights, dict) else weights
        problem = _untrainable(source)
        if problem:
            raise NotTrainableError(f"yolo-efficientrep: cannot train from or load these weights: {problem}")
        return original(self, weights, *args, **kwargs)

    setattr(load, _MARK, True)
    return load


def _no_rows_error(d: Any) -> ModelConfigError | None:
    """The error for a model config without ``backbone`` and ``head`` rows (an empty or comment-only YAML), or None."""
    if isinstance(d, dict) and isinstance(d.get("backbone"), list) and isinstance(d.get("head"), list):
        return None
    file = d.get("yaml_file", "") if isinstance(d, dict) else ""
    return ModelConfigError(
        f"model YAML {file!r} has no 'backbone' and 'head' rows (is the file empty or only comments?); a model "
        "YAML needs nc, backbone and head, e.g. yolov8-efficientrep.yaml"
    )


def _wrap_yaml_model_load(original):
    """Refuse a model YAML without rows where it is read, before Ultralytics indexes it (a bare ``KeyError``)."""

    @functools.wraps(original)
    def yaml_model_load(path, *args, **kwargs):
        d = original(path, *args, **kwargs)
        error = _no_rows_error(d)
        if error is not None:
            raise error
        return d

    return yaml_model_load


# (module, function, wrapper factory): what register() wraps and unregister() restores
_WRAPPED_FUNCTIONS = (
    ("ultralytics.utils.checks", "check_file", _wrap_check_file),
    ("ultralytics.utils.checks", "check_requirements", _wrap_check_requirements),
    ("ultralytics.data.utils", "check_cls_dataset", _wrap_check_cls_dataset),
    ("ultralytics.data.utils", "check_det_dataset", _wrap_check_det_dataset),
    ("ultralytics.nn.tasks", "guess_model_task", _wrap_guess_model_task),
    ("ultralytics.nn.tasks", "yaml_model_load", _wrap_yaml_model_load),
)


# -------------------------------------------------------------------------------------------------- model parsing
def _resolve_arg(value: Any) -> Any:
    """Resolve one extra YAML argument of a plugin row: plugin block names, literals and fractions like '2/3'."""
    if not isinstance(value, str):
        return value
    if value in BLOCKS:
        return BLOCKS[value][0]
    with contextlib.suppress(ValueError, SyntaxError):
        return ast.literal_eval(value)
    try:
        return float(Fraction(value.replace(" ", "")))
    except ZeroDivisionError:
        raise ValueError(f"'{value}' divides by zero") from None
    except ValueError:
        return value  # e.g. an activation name, resolved by the block itself


# Classes a block's ``block`` argument may name: units built as ``block(c_in, c_out, act=..., deploy=...)``.
_UNITS = ("RepVGGBlock", "QARepVGGBlock", "QARepVGGBlockV2", "SimConv")
_POSITIVE = {"s": "stride", "d": "dilation", "k": "kernel size", "g": "groups"}  # integer arguments that must be >= 1


@dataclass
class _PluginRow:
    """A YAML row naming a plugin block, and how to build it from its stand-in."""

    i: int
    f: int | list[int]
    n: int
    name: str
    args: list[Any]
    probes: list[int] = field(default_factory=list)  # absolute indices of extra inputs (multi-input blocks)

    @property
    def cls(self) -> type[nn.Module]:
        return BLOCKS[self.name][0]

    @property
    def kind(self) -> str:
        return BLOCKS[self.name][1]

    def error(self, message: str) -> ModelConfigError:
        return ModelConfigError(
            f"model YAML layer {self.i} ({self.name}, row {[self.f, self.n, self.name, self.args]}): {message}"
        )

    def stand_in(self) -> list[Any]:
        """Return the stock row Ultralytics builds in this row's place."""
        if self.kind == "head":
            if not isinstance(self.f, list) or not self.f:
                raise self.error(f"'from' must be a list of input layers, e.g. [15, 18, 21], got {self.f!r}")
            if self.n != 1:
                raise self.error(f"repeats must be 1 for a detection head, got {self.n}")
            if not self.args:
                raise self.error("the first argument must be the number of classes, e.g. nc")
            return [self.f, 1, _STAND_IN["head"], [self.args[0]]]
        if not self.args or isinstance(self.args[0], bool) or not isinstance(self.args[0], (int, float)):
            raise self.error("the first argument must be the output channels c2, a number")
        if not math.isfinite(self.args[0]) or self.args[0] <= 0:
            raise self.error(f"the output channels c2 must be a positive number, got {self.args[0]}")
        multi = self.kind == "multi"
        if multi != isinstance(self.f, list):
            want = "a list of input layers, e.g. [-1, 6, 4]" if multi else "a single input layer"
            raise self.error(f"'from' must be {want}, got {self.f!r}")
        if multi:
            if self.n != 1:
                raise self.error(f"repeats must be 1 for a multi-input block, got {self.n}")
            self.probes = [x if x >= 0 else self.i + x for x in self.f[1:]]
        return [self.f[0] if multi else self.f, self.n, _STAND_IN[self.kind], [self.args[0]]]

    def _keyword(self, key: str, value: Any, scale: str, scales: list[str]) -> Any:
        """Resolve one keyword argument; a mapping keyed by scale letters, e.g. ``{m: 2/3, l: 1/2}``, picks a value."""
        if isinstance(value, dict):  # no block takes a mapping: it is always per-scale
            unknown = sorted(str(k) for k in value if str(k) not in scales)
            if unknown or not value:
                raise self.error(
                    f"'{key}' maps scale letters {sorted(map(str, value))}, but {', '.join(map(repr, unknown))} "
                    f"{'is' if len(unknown) == 1 else 'are'} not scales of this model (its scales: {', '.join(scales)})"
                    if unknown
                    else f"'{key}' is an empty mapping; give a value, or one per scale like {{n: 1/2, m: 2/3}}"
                )
            if scale not in value:
                raise self.error(f"'{key}' gives values for scales {sorted(value)} but not for scale '{scale}'")
            value = value[scale]
        try:
            return _resolve_arg(value)
        except ValueError as e:
            raise self.error(f"{key}: {e}") from None

    def _check_arguments(self, arguments: dict[str, Any]) -> None:
        """Refuse argument values the block would accept but that cannot work (or would mean something else)."""
        for name, what in _POSITIVE.items():
            value = arguments.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise self.error(f"{what} {name}={value!r} must be a positive integer")
        e = arguments.get("e", 0.5)
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            raise self.error(f"the hidden-channel ratio e={arguments['e']!r} must be a number in (0, 1], e.g. 1/2")
        block = arguments.get("block")
        if block is not None:
            units = [*_UNITS, "BottleRep"] if self.name == "RepBlock" else list(_UNITS)
            name = block if isinstance(block, str) else getattr(block, "__name__", repr(block))
            if not (isinstance(block, type) and name in units and _same_class(block, BLOCKS[name][0])):
                close = difflib.get_close_matches(str(name), units, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else ""
                choices = ", ".join(units)
                raise self.error(f"block={name} is not a rep unit {self.name} can stack: choose {choices}{hint}")

    def build(
        self, stand_in: nn.Module, probe_c1: list[int], act: Any = None, scale: str = "", scales: list[str] = ()
    ) -> tuple[nn.Module, list[Any]]:
        """Build the plugin block with the channels and repeats Ultralytics resolved for the stand-in."""
        copies = 1
        if self.kind == "head":
            lead = [stand_in.nc]
        elif self.kind == "repeat":
            c1, c2, n = stand_in.cv1.conv.in_channels, stand_in.cv3.conv.out_channels, len(stand_in.m)
            lead = [c1, c2, n]
        else:
            first = stand_in
            if isinstance(stand_in, nn.Sequential):
                first, copies = stand_in[0], len(stand_in)
            c1, c2 = first.conv.in_channels, first.conv.out_channels
            lead = [[c1, *probe_c1] if self.kind == "multi" else c1, c2]
        extra = list(self.args[1:])
        kwargs = extra.pop() if extra and isinstance(extra[-1], dict) else {}
        kwargs = {k: self._keyword(k, v, scale, scales) for k, v in kwargs.items()}
        try:
            extra = [_resolve_arg(a) for a in extra]
        except ValueError as e:
            raise self.error(str(e)) from None
        args = [*lead, *extra]
        if self.kind == "head":  # the input channels, as Ultralytics hands them to Detect
            kwargs["ch"] = [branch[0].conv.in_channels for branch in stand_in.cv2]
        signature = inspect.signature(self.cls)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise self.error(
                f"arguments {args + ([kwargs] if kwargs else [])} do not fit {self.name}{signature}: {e}"
            ) from None
        self._check_arguments(bound.arguments)
        if act is not None and "act" in signature.parameters and "act" not in bound.arguments:
            kwargs["act"] = act  # every block copies it, so each owns its activation
        try:
            modules = [self.cls(*([c2, *args[1:]] if k else args), **kwargs) for k in range(copies)]
        except (TypeError, ValueError, RuntimeError) as e:
            raise self.error(f"{type(e).__name__}: {e}") from e
        module = modules[0] if copies == 1 else nn.Sequential(*modules)
        module.np = sum(p.numel() for p in module.parameters())
        module.i, module.f, module.type = self.i, self.f, _qualname(self.cls)
        return module, args + ([kwargs] if kwargs else [])


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _check_release(d: dict, rows: list[Any], tasks) -> None:
    """Refuse a model YAML that needs a newer Ultralytics than the installed one, naming the release it needs.

    Stock modules count as missing when ``ultralytics.nn.tasks`` does not bind them; top-level keys when the installed
    release predates the one that reads them and the YAML asks for something other than what older releases do.

    Raises:
        UnsupportedVersionError: Lists every such module (with its layer) and key, and the release that has them all.
    """
    import ultralytics

    installed = ultralytics.__version__
    needs: list[tuple[str, str]] = []  # (release, what)
    for i, row in enumerate(rows):
        name = row[2] if isinstance(row, (list, tuple)) and len(row) == 4 else None
        if isinstance(name, str) and name in NEWER_STOCK_MODULES and name not in tasks.__dict__:
            since = NEWER_STOCK_MODULES[name]
            needs.append((since, f"{name} (layer {i}, added in ultralytics {since})"))
    for key, (since, old_value, what) in NEWER_YAML_KEYS.items():
        if key in d and d[key] != old_value and _release(installed) < _release(since):
            needs.append((since, f"'{key}: {d[key]}' ({what}, read since ultralytics {since})"))
    if needs:
        release = max((r for r, _ in needs), key=_release)
        file = Path(str(d.get("yaml_file", ""))).name or "this model config"
        raise UnsupportedVersionError(
            f"yolo-efficientrep: model YAML {file!r} needs ultralytics>={release}, but ultralytics {installed} is "
            f"installed, which lacks {'; '.join(what for _, what in needs)}. Upgrade with pip install "
            f"'ultralytics>={release},<{SUPPORTED_ULTRALYTICS[1][0]}.{SUPPORTED_ULTRALYTICS[1][1]}'"
        )


def _resolve_names(rows: list[list[Any]], tasks) -> dict[int, _PluginRow]:
    """Check every row's module name and collect the plugin rows.

    Raises:
        UnknownModuleError: A name neither Ultralytics nor the plugin provides.
        RegistrationError: A plugin name now bound in ``tasks`` to another class.
    """
    plugin = {}
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ModelConfigError(f"model YAML layer {i}: rows must be [from, repeats, module, args], got {row!r}")
        f, n, name, args = row
        if not isinstance(name, str):
            continue  # already a class: left to Ultralytics
        if name in BLOCKS:
            bound = tasks.__dict__.get(name)
            if not _same_class(bound, BLOCKS[name][0]):
                raise RegistrationError(
                    f"model YAML layer {i} ({name}): ultralytics.nn.tasks.{name} is bound to {_qualname(bound)}, not "
                    f"yolo-efficientrep's {_qualname(BLOCKS[name][0])}; another plugin replaced it after registration"
                )
            if not isinstance(args, list):
                raise ModelConfigError(f"model YAML layer {i} ({name}): args must be a list, got {args!r}")
            plugin[i] = _PluginRow(i, f, n, name, list(args))
        elif name.startswith("nn."):
            if not isinstance(getattr(torch.nn, name[3:], None), type):
                raise UnknownModuleError(f"model YAML layer {i}: unknown module '{name}' (not in torch.nn)")
        elif not name.startswith("torchvision.ops.") and name not in tasks.__dict__:
            known = [k for k, v in tasks.__dict__.items() if isinstance(v, type) and issubclass(v, nn.Module)]
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownModuleError(
                f"model YAML layer {i}: unknown module '{name}'{hint} Plugin blocks: {', '.join(BLOCKS)}"
            )
    return plugin


class _Capture(logging.Filter):
    """Hold back the records a logger emits from this thread, to re-emit them (some rewritten) later."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True  # another thread's log passes untouched
        self.records.append(record)
        return False


@contextlib.contextmanager
def _held_back(logger: logging.Logger, active: bool) -> Iterator[_Capture]:
    """Hold back ``logger``'s records while ``active``; if the block fails, release them as they were."""
    capture = _Capture()
    if active:
        logger.addFilter(capture)
    try:
        yield capture
    except BaseException:
        logger.removeFilter(capture)
        for record in capture.records:  # the layer table up to the failing layer still helps
            logger.handle(record)
        raise
    finally:
        logger.removeFilter(capture)


def _emit_table(logger, records, n_rows, n_probes, lines: dict[int, str]) -> None:
    """Re-emit Ultralytics' layer table with the plugin rows' lines in place of their stand-ins' and no probe lines."""
    header = next((k for k, r in enumerate(records) if "arguments" in r.getMessage()), None)
    layer_records = records[header + 1 : header + 1 + n_rows + n_probes] if header is not None else []
    exact = len(layer_records) == n_rows + n_probes
    for k, record in enumerate(records):
        row = k - header - 1 if exact else -1
        if row >= n_rows:
            continue  # a probe
        if row in lines:
            record.msg, record.args = lines[row], ()
        logger.handle(record)
    if not exact:  # an Ultralytics release that logs differently: keep its lines, add ours
        for line in lines.values():
            logger.info(line)


def _yaml_activation(spec: Any) -> tuple[Any, str | None]:
    """Resolve a model YAML's ``activation:`` for the plugin blocks and for Ultralytics' stock ``Conv``.

    Returns:
        (tuple): What plugin rows get as ``act`` (``None``: their own default), and the spec handed on to Ultralytics
        (``None``: the key is dropped, i.e. its default), always in the ``nn.X(literal args)`` form it evaluates.
    """
    if spec is None or spec is True:
        return None, None
    if spec is False:
        return False, "nn.Identity()"
    if not isinstance(spec, str):
        raise ModelConfigError(
            f"model YAML 'activation: {spec!r}': expected true, false or a torch.nn activation such as nn.SiLU(), "
            "nn.LeakyReLU(0.1), ReLU() or relu"
        )
    try:
        cls, args, kwargs = blocks.parse_activation(spec)
    except ValueError as e:
        raise ModelConfigError(f"model YAML 'activation: {spec}': {e}") from None
    if getattr(nn, cls.__name__, None) is not cls:
        raise ModelConfigError(f"model YAML 'activation: {spec}': {cls.__name__} is not in torch.nn")
    call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return cls(*args, **kwargs), f"nn.{cls.__name__}({call})"


def _row_error(i: int, row: Any, message: str) -> ModelConfigError:
    name = row[2] if isinstance(row, (list, tuple)) and len(row) == 4 else "?"
    return ModelConfigError(f"model YAML layer {i} ({name}, row {list(row)}): {message}")


def _check_rows(rows: list[list[Any]]) -> None:
    """Check every row's ``from`` and ``repeats`` (a plugin model's rows; stock models are left to Ultralytics)."""
    for i, row in enumerate(rows):
        f, n = row[0], row[1]
        entries = f if isinstance(f, list) else [f]
        if not entries or any(isinstance(x, bool) or not isinstance(x, int) for x in entries):
            raise _row_error(i, row, f"'from' must be a layer index or a list of them, got {f!r}")
        for x in entries:
            if x == -1:
                continue
            at = i + x if x < 0 else x
            if at >= len(rows):
                raise _row_error(i, row, f"'from' {x} names a layer that does not exist (the model has {len(rows)})")
            if at < 0:
                raise _row_error(i, row, f"'from' {x} points before the first layer (layer {i} {x} = {at})")
            if at >= i:
                raise _row_error(i, row, f"'from' {x} is not an earlier layer; layer {i} reads layers 0 to {i - 1}")
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 1 or n != int(n):
            raise _row_error(i, row, f"repeats must be a whole number >= 1, got {n!r}")


def _check_sizes(layers: list[nn.Module], ch: int, rows: list[list[Any]], imgsz: int = 64) -> None:
    """Run a small image through every layer but the head and name the first whose inputs disagree in size.

    Ultralytics' own stride probe would fail there too, with only a ``torch.cat`` message. Any other failure ends the
    check quietly and is left to Ultralytics, which reports it in its own way.
    """
    from ultralytics.nn.modules import Concat as concat

    y: list[torch.Tensor] = []
    x = torch.zeros(1, ch, imgsz, imgsz)
    modes = [m.training for m in layers]
    try:
        with torch.no_grad():
            for i, m in enumerate(layers[:-1]):
                m.eval()
                f = rows[i][0]
                x = x if f == -1 else y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
                if isinstance(x, list) and all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in x):
                    _check_input_sizes(i, rows[i], m, x, concat, imgsz)
                x = m(x)
                y.append(x)
    except ModelConfigError:
        raise
    except Exception:  # noqa: BLE001 - not ours to report (see the docstring)
        return
    finally:
        for m, mode in zip(layers, modes):
            m.train(mode)


def _check_input_sizes(i, row, m, x, concat, imgsz) -> None:
    f = row[0]
    sizes = [tuple(t.shape[-2:]) for t in x]
    shown = ", ".join(f"{h}x{w} (from {j})" for (h, w), j in zip(sizes, f))
    if concat is not None and isinstance(m, concat) and len(set(sizes)) > 1:
        raise _row_error(
            i, row, f"its inputs disagree in size: {shown} for a {imgsz}x{imgsz} image; check the strides of the "
            "layers feeding it (e.g. a Transpose kernel other than its stride, or a wrong 'from')"
        )  # fmt: skip
    if isinstance(m, blocks.BiFusion):
        (h0, w0), (h1, w1), (h2, w2) = sizes
        if (2 * h0, 2 * w0) != (h1, w1) or ((h2 - 1) // 2 + 1, (w2 - 1) // 2 + 1) != (h1, w1):
            raise _row_error(
                i, row, f"BiFusion takes [higher, current, lower] levels, sized H/2, H and 2H; got {shown} for a "
                f"{imgsz}x{imgsz} image (inputs in the wrong order or at the wrong strides?)"
            )  # fmt: skip


_BUILD_LOCK = threading.RLock()  # one plugin model built at a time: its log is held back and Conv.default_act is global


def _unshare_activations(layers: list[nn.Module]) -> None:
    """Give every module its own activation instance (stock ``Conv`` shares ``Conv.default_act`` across the model)."""
    seen, shared = set(), []
    for layer in layers:
        for m in layer.modules():
            act = m.__dict__.get("_modules", {}).get("act")
            if isinstance(act, nn.Module):
                (shared.append(m) if id(act) in seen else seen.add(id(act)))
    for m in shared:
        m.act = copy.deepcopy(m.act)


def _wrap_parse_model(original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def parse_model(d, *args, **kwargs):
        # Signature-agnostic: whatever Ultralytics passes goes through; only ch and verbose are read.
        bound = signature.bind(d, *args, **kwargs)
        bound.apply_defaults()
        ch, verbose = bound.arguments.get("ch", 3), bound.arguments.get("verbose", True)
        _complete_pending()
        tasks = sys.modules[original.__module__]
        error = _no_rows_error(d)  # a config given as a dict
        if error is not None:
            raise error
        rows = [*d["backbone"], *d["head"]]
        _check_release(d, rows, tasks)
        plugin = _resolve_names(rows, tasks)
        if not plugin:
            return original(d, *args, **kwargs)
        with _BUILD_LOCK:
            build = lambda cfg, _ch, _verbose: original(cfg, *args, **kwargs)  # noqa: E731 - same arguments
            return _parse_plugin_model(build, d, ch, verbose, rows, plugin)

    setattr(parse_model, _MARK, True)
    return parse_model


def _parse_plugin_model(original, d, ch, verbose, rows, plugin):
    """Build a model YAML that has plugin rows: stand-ins through Ultralytics' parser, then the plugin blocks."""
    n_backbone = len(d["backbone"])
    scales = [str(k) for k in d.get("scales") or {}]
    if scales and d.get("scale") and str(d["scale"]) not in scales:
        raise ModelConfigError(
            f"model YAML {d.get('yaml_file', '')!r}: scale '{d['scale']}' is not one of its scales "
            f"({', '.join(scales)})"
        )
    _check_rows(rows)
    act, stock_act = _yaml_activation(d.get("activation"))

    stock_rows = [row.stand_in() if (row := plugin.get(i)) else rows[i] for i in range(len(rows))]
    probes = [p for row in plugin.values() for p in row.probes]
    d_stand_in = {**d, "backbone": stock_rows[:n_backbone], "head": stock_rows[n_backbone:]}
    d_stand_in["head"] += [[p, 1, "Conv", [8, 1]] for p in probes]
    d_stand_in.pop("activation", None)
    if stock_act is not None:
        d_stand_in["activation"] = stock_act

    logger = logging.getLogger("ultralytics")
    with _held_back(logger, verbose) as held:
        seq, _ = original(d_stand_in, ch, verbose)
    layers = list(seq)
    probe_c1 = iter(m.conv.in_channels for m in layers[len(rows) :])
    layers = layers[: len(rows)]

    scale = str(d.get("scale") or (scales[0] if scales else ""))  # Ultralytics' own fallback: the first scale
    lines = {}
    for i, row in plugin.items():
        layers[i], args = row.build(layers[i], [next(probe_c1) for _ in row.probes], act, scale, scales)
        n_ = args[2] if row.kind == "repeat" else len(layers[i]) if isinstance(layers[i], nn.Sequential) else 1
        shown = [a.__name__ if isinstance(a, type) else a for a in args]
        lines[i] = f"{i:>3}{str(row.f):>20}{n_:>3}{layers[i].np:10.0f}  {layers[i].type:<45}{str(shown):<30}"
    if verbose:
        _emit_table(logger, held.records, len(rows), len(probes), lines)

    _unshare_activations(layers)
    _check_sizes(layers, ch, rows)

    # The stand-ins of multi-input rows saw only their first input, so rebuild the save list from the real rows.
    save = sorted(x % i for i, (f, *_) in enumerate(rows) for x in ([f] if isinstance(f, int) else f) if x != -1)
    return nn.Sequential(*layers), save
