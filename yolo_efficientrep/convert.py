"""Official YOLOv6 v3.0 checkpoints -> Ultralytics checkpoints of the plugin's YOLOv6 YAMLs.

``convert_yolov6("yolov6n.pt")`` reads a checkpoint written by meituan/YOLOv6 (a released ``.pt`` or a training
checkpoint, releases 0.3.0 and 0.4.x) **without YOLOv6 installed and without running anything from the file**, finds
what it holds, copies every tensor into ``yolov6n-efficientrep.yaml`` (N/S) or ``yolov6m-cspbep.yaml`` (M/L) built by
stock Ultralytics, and writes an Ultralytics checkpoint that ``YOLO(path)`` predicts, validates, exports, tracks and
fine-tunes from.

Reading: YOLOv6 pickles its whole ``nn.Module``, so its checkpoints name classes such as
``yolov6.layers.common.RepVGGBlock``. The unpickler here maps every ``yolov6.*`` class to an inert ``nn.Module``
stand-in that only holds the pickled tensors, and refuses every other global except torch's tensor and storage
rebuilds, ``torch.nn`` module classes, ``collections.OrderedDict`` and a few inert data types (sets, numpy scalars in
training metadata). A pickle that calls ``os.system`` or any other function is refused before it runs.

What is accepted, all detected from the tensors (never from the file name): YOLOv6 v3.0 P5 models N, S, M, L; both
release layouts (0.3.0 ``SimConv``/``Conv_C3``/``ConvWrapper`` keys and 0.4.x ``ConvBNReLU.block`` keys); training
form and deploy form (``rbr_reparam``, BN folded into biased convs); the three head classes YOLOv6 trains with (plain
``effidehead``, anchor-aided ``fuse_ab`` whose ``_ab`` branches are dropped, ``distill_ns`` whose DFL training branch is
dropped); float16 or float32; any number of classes; a training checkpoint with ``ema`` (taken when present, as YOLOv6
does) or a bare ``state_dict``.

Exactness: training-form tensors are copied as they are (BN by BN, branch by branch). A deploy-form unit, whose branches
YOLOv6 already summed, goes into the 3x3 branch with a BN that only adds the bias (mean 0, weight 1,
``running_var + eps == 1``) while the 1x1 and identity branches start at exactly zero, so the converted model computes
the same function and can still be fine-tuned. A ``ConvWrapper`` conv bias (0.3.0's L) moves into its BN's mean, and a
BN ``eps`` other than Ultralytics' moves into its variance; both are exact.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import re
import types
from copy import deepcopy
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import blocks
from .heads import EffiDeHead
from .integration import check_ultralytics_version

__all__ = ("ConvertError", "YOLOv6Checkpoint", "convert_yolov6", "read_yolov6")

LOGGER = logging.getLogger("ultralytics")
SCALES = {16: "n", 32: "s", 48: "m", 64: "l"}  # stem width -> YOLOv6 v3.0 scale
FAMILIES = {"n": "yolov6-efficientrep", "s": "yolov6-efficientrep", "m": "yolov6-cspbep", "l": "yolov6-cspbep"}
SUPPORTED = (
    "YOLOv6 v3.0 P5 detection models N, S, M and L as released by meituan/YOLOv6 0.3.0 or 0.4.x (training or deploy "
    "form, any head class, any nc), or their bare state_dict"
)


class ConvertError(ValueError):
    """A file that is not a supported YOLOv6 checkpoint, or an output that cannot be written; nothing was written."""


# ---------------------------------------------------------------------------------------------------------------------
# Reading without YOLOv6 and without executing the file


class YOLOv6StandIn(nn.Module):
    """Inert stand-in for a pickled ``yolov6.*`` module: holds its tensors and sub-modules, computes nothing."""

    yolov6_class = "yolov6"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, *args: Any, **kwargs: Any):
        """Refuse to run: the stand-in only carries the checkpoint's tensors."""
        raise RuntimeError(f"{self.yolov6_class} is a stand-in read from a YOLOv6 checkpoint; convert it first")


class _Inert:
    """Placeholder for metadata the converter never reads (numpy scalars/dtypes, pickled bound methods)."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _inert_getattr(obj: Any, name: str) -> _Inert:
    # YOLOv6's fused ConvModules pickle ``forward = self.forward_fuse`` through builtins.getattr; never look it up.
    return _Inert()


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles spell bytes (e.g. inside numpy scalars) as _codecs.encode(str, "latin1"): data only.
    if not isinstance(text, str) or encoding not in {"latin1", "latin-1"}:
        raise pickle.UnpicklingError(f"refused to load global '_codecs.encode' called with {type(text).__name__}")
    return text.encode("latin1")


_STAND_INS: dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    path = f"{module}.{name}"
    if path not in _STAND_INS:
        _STAND_INS[path] = type(name, (YOLOv6StandIn,), {"yolov6_class": path, "__module__": __name__})
    return _STAND_INS[path]


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "getattr"): _inert_getattr,
    ("_codecs", "encode"): _latin1_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
}
for _name in ("_rebuild_parameter_with_state", "_rebuild_tensor"):
    if hasattr(torch._utils, _name):
        _ALLOWED[("torch._utils", _name)] = getattr(torch._utils, _name)
_INERT_DATA = {
    (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("scalar", "_reconstruct")
} | {("numpy", "dtype"), ("numpy", "ndarray")}
_RENAMED = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol-2 pickles written by Python 2 names


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = _RENAMED.get(module, module)
        if module == "yolov6" or module.startswith("yolov6."):
            return _stand_in(module, name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) in _INERT_DATA:
            return _Inert
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith("torch.nn.modules."):
            obj = getattr(getattr(torch.nn.modules, module.split(".")[3], None), name, None)
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                return obj
        if module == "ultralytics" or module.startswith("ultralytics."):
            raise pickle.UnpicklingError(
                f"refused to load global '{module}.{name}': this is an Ultralytics checkpoint, not a YOLOv6 one; "
                f"load it with YOLO(...) directly"
            )
        raise pickle.UnpicklingError(
            f"refused to load global '{module}.{name}': a YOLOv6 checkpoint holds only tensors, torch.nn modules and "
            f"yolov6 classes, so this file may run code when unpickled"
        )


_restricted_pickle = types.ModuleType("yolo_efficientrep_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = lambda f, **kwargs: _RestrictedUnpickler(f, **kwargs).load()
_restricted_pickle.__name__ = "pickle"


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except pickle.UnpicklingError as e:
        if "refused to load global" in str(e):
            raise ConvertError(f"'{path}': {e}; nothing was written") from None
        raise ConvertError(
            f"'{path}' is not a readable PyTorch checkpoint (damaged or truncated? {e}); nothing was written"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError, IndexError) as e:
        raise ConvertError(
            f"'{path}' is not a readable PyTorch checkpoint (damaged or truncated? {type(e).__name__}: {e}); "
            f"nothing was written"
        ) from None


# ---------------------------------------------------------------------------------------------------------------------
# What a checkpoint holds


@dataclass
class YOLOv6Checkpoint:
    """What ``read_yolov6`` found in a checkpoint (logged by ``convert_yolov6`` and stored in its output)."""

    release: str  # "0.3.0" or "0.4.x": the key layout
    scale: str  # n, s, m, l
    head: str  # "effidehead" (plain), "effidehead_fuseab" or "effidehead_distill_ns"
    nc: int
    reg_max: int  # DFL bins of the inference branch, Ultralytics' convention (1: plain distances)
    form: str  # "training" or "deploy"
    dtype: str  # "float16" or "float32"
    source: str  # "ema", "model" or "state_dict"
    params: int  # parameters of the source model as stored (training or deploy form)
    yaml: str  # the plugin YAML it converts into

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"YOLOv6 v3.0-{self.scale.upper()} ({self.release} layout), {self.head} head, nc={self.nc}, "
            f"{self.form} form, {self.dtype}, from '{self.source}', {self.params / 1e6:.2f}M parameters as stored"
        )


def _extract(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, float], str, str | None, int]:
    """State dict, BN eps by module name, which entry it came from, the pickled head class (if any), parameters."""
    source = "state_dict"
    if isinstance(obj, dict) and not _is_state_dict(obj):
        for key in ("ema", "model", "state_dict"):
            if obj.get(key) is not None:
                source, obj = key, obj[key]
                break
        else:
            found = ", ".join(f"'{k}'" for k in list(obj)[:8]) or "nothing"
            raise ConvertError(
                f"'{path}' holds a dict with {found} but no 'ema', 'model' or 'state_dict' entry: not a YOLOv6 "
                f"checkpoint. Supported: {SUPPORTED}; nothing was written"
            )
    if isinstance(obj, nn.Module):
        modules = dict(obj.named_modules())
        head = modules.get("detect")
        head_class = getattr(type(head), "yolov6_class", None) if head is not None else None
        eps = {name: m.eps for name, m in modules.items() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        state, params = obj.state_dict(), sum(p.numel() for p in obj.parameters())
        return _strip(state), {_canonical(k): v for k, v in eps.items()}, source, head_class, params
    if isinstance(obj, dict) and _is_state_dict(obj):
        state = _strip(obj)
        params = sum(v.numel() for k, v in state.items() if not re.search(r"running_|num_batches|proj", k))
        return state, {}, source, None, params
    raise ConvertError(
        f"'{path}' holds a {type(obj).__name__}, not a YOLOv6 model or state_dict. Supported: {SUPPORTED}; nothing "
        f"was written"
    )


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}  # DataParallel/DDP prefix


def _canonical(key: str) -> str:
    """One key layout for both releases.

    0.4.x ``X.block.conv`` (ConvBNReLU wrappers) and 0.3.0 ``X.block.conv`` (ConvWrapper) become ``X.conv``, and
    0.4.x's SPPF wrappers (``ERBlock_5.2.sppf.``/``cspsppf.``) disappear.
    """
    key = re.sub(r"\.block\.(conv|bn)\.", r".\1.", key + ".")[:-1] if ".block." in key else key
    return re.sub(r"^backbone\.ERBlock_5\.2\.(cspsppf|sppf)\.", "backbone.ERBlock_5.2.", key)


def _first(state: dict[str, torch.Tensor], *keys: str) -> torch.Tensor | None:
    return next((state[k] for k in keys if k in state), None)


def _identify(raw: dict[str, torch.Tensor], head_class: str | None, path: Path) -> dict[str, Any]:
    keys = list(raw)
    state = {_canonical(k): v for k, v in raw.items()}

    def refuse(found: str) -> ConvertError:
        return ConvertError(f"'{path}': {found}. Supported: {SUPPORTED}; nothing was written")

    if not any(k.startswith("backbone.") for k in keys) or not any(k.startswith("detect.") for k in keys):
        sample = ", ".join(keys[:3]) or "no tensors"
        return refuse(f"not a YOLOv6 detection checkpoint (no backbone/detect tensors; keys like {sample})")
    if any(k.startswith("backbone.ERBlock_6") for k in keys):
        return refuse("a YOLOv6 P6 model (N6/S6/M6/L6, 1280 px, four output levels), which is not supported")
    if any("lite" in k.lower() for k in keys) or (head_class and "lite" in head_class.lower()):
        return refuse("a YOLOv6 Lite model, which is not supported")
    if not any(k.startswith("neck.Bifusion0.") for k in keys):
        return refuse("a YOLOv6 v1/v2 model (Rep-PAN neck without BiFusion), which is not supported")
    stem = _first(
        state, "backbone.stem.rbr_dense.conv.weight", "backbone.stem.rbr_reparam.weight", "backbone.stem.conv.weight"
    )
    if stem is None or stem.ndim != 4 or int(stem.shape[0]) not in SCALES:
        width = None if stem is None else tuple(stem.shape)
        return refuse(f"a YOLOv6 model of unknown width (stem {width}; v3.0 N/S/M/L have 16/32/48/64 channels)")
    scale = SCALES[int(stem.shape[0])]
    csp = any(k.startswith("backbone.ERBlock_2.1.cv1.") for k in state)
    if csp != (scale in "ml"):
        return refuse(
            f"a custom YOLOv6 variant: stem width {stem.shape[0]} (scale {scale}) with "
            f"{'CSPBep' if csp else 'EfficientRep'} stages, where v3.0 uses "
            f"{'CSPBep' if scale in 'ml' else 'EfficientRep'}"
        )
    # The inference branches of the three head classes, in both releases' names (see the module docstring).
    if any(k.startswith("detect.reg_preds_lrtb.") for k in keys):
        cls_branch, reg_branch, head = "cls_preds", "reg_preds_lrtb", "effidehead_distill_ns"  # 0.3.0 distill
    elif any(k.startswith("detect.reg_preds_dist.") for k in keys):
        cls_branch, reg_branch, head = "cls_preds", "reg_preds", "effidehead_distill_ns"  # 0.4.x distill
    elif any(k.startswith("detect.reg_preds_af.") for k in keys):
        cls_branch, reg_branch, head = "cls_preds_af", "reg_preds_af", "effidehead_fuseab"  # 0.3.0 fuse_ab
    elif any("_ab." in k for k in keys):
        cls_branch, reg_branch, head = "cls_preds", "reg_preds", "effidehead_fuseab"  # 0.4.x fuse_ab
    else:
        cls_branch, reg_branch, head = "cls_preds", "reg_preds", "effidehead"
    cls_w, reg_w = state.get(f"detect.{cls_branch}.0.weight"), state.get(f"detect.{reg_branch}.0.weight")
    if cls_w is None or reg_w is None:
        return refuse(f"a YOLOv6 head without detect.{cls_branch}/detect.{reg_branch} predictors")
    if int(reg_w.shape[0]) % 4 or int(reg_w.shape[0]) // 4 not in (1, 17):
        return refuse(f"a box predictor with {reg_w.shape[0]} outputs (v3.0 has 4, or 4 x 17 with DFL)")
    deploy = any(".rbr_reparam." in k for k in keys) or (
        "neck.reduce_layer0.conv.bias" in state and "neck.reduce_layer0.bn.weight" not in state
    )
    release = "0.4.x" if any(k.startswith("neck.reduce_layer0.block.") for k in keys) else "0.3.0"
    floats = [v for v in raw.values() if v.is_floating_point()]
    return {
        "release": release,
        "scale": scale,
        "head": head,
        "nc": int(cls_w.shape[0]),
        "reg_max": int(reg_w.shape[0]) // 4,
        "form": "deploy" if deploy else "training",
        "dtype": "float16" if any(v.dtype == torch.float16 for v in floats) else "float32",
        "branches": (cls_branch, reg_branch),
        "state": state,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Copying tensors into the plugin model


class _Source:
    """The canonical YOLOv6 state dict (float32), with every key a copy consumes recorded."""

    def __init__(self, state: dict[str, torch.Tensor], eps: dict[str, float]):
        self.state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        self.eps = eps
        self.used: set[str] = set()

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix + ".") for k in self.state)

    def take(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise ConvertError(f"the checkpoint has no tensor '{key}', which a YOLOv6 v3.0 model of this scale has")
        self.used.add(key)
        return self.state[key]

    def optional(self, key: str) -> torch.Tensor | None:
        return self.take(key) if key in self.state else None


def _copy(dst: torch.Tensor, src: torch.Tensor, key: str) -> None:
    if dst.shape != src.shape:
        raise ConvertError(f"'{key}' has shape {tuple(src.shape)} where the plugin model needs {tuple(dst.shape)}")
    dst.copy_(src)


def _neutral_bn(bn: nn.BatchNorm2d, bias: torch.Tensor | None = None, weight: float = 1.0) -> None:
    """Make ``bn`` compute ``weight * x + bias`` in eval mode, exactly (``running_var + eps == 1``)."""
    bn.weight.fill_(weight)
    bn.bias.copy_(bias) if bias is not None else bn.bias.zero_()
    bn.running_mean.zero_()
    bn.running_var.fill_(1 - bn.eps)


def _load_bn(bn: nn.BatchNorm2d, src: _Source, prefix: str, conv_bias: torch.Tensor | None = None) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        _copy(getattr(bn, name), src.take(f"{prefix}.{name}"), f"{prefix}.{name}")
    src.optional(f"{prefix}.num_batches_tracked")
    if conv_bias is not None:  # BN(conv(x) + b) == BN'(conv(x)) with mean' = mean - b
        bn.running_mean.sub_(conv_bias)
    eps = src.eps.get(prefix, bn.eps)
    if eps != bn.eps:  # (x - mean) / sqrt(var + eps): keep var + eps
        bn.running_var.add_(eps - bn.eps)


def _load_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, src: _Source, prefix: str) -> None:
    """A YOLOv6 conv unit (ConvModule, SimConv, Conv, ConvWrapper; training or fused) into a bias-free conv + BN."""
    _copy(conv.weight, src.take(f"{prefix}.conv.weight"), f"{prefix}.conv.weight")
    bias = src.optional(f"{prefix}.conv.bias")
    if src.has(f"{prefix}.bn"):
        _load_bn(bn, src, f"{prefix}.bn", bias)
    elif bias is not None:  # deploy form: BN already folded into a biased conv
        _neutral_bn(bn, bias)
    else:
        raise ConvertError(f"'{prefix}' has a conv without BN or bias, which no YOLOv6 v3.0 unit has")


def _load_rep(dst: blocks.RepVGGBlock, src: _Source, prefix: str) -> None:
    if dst.conv2 is None:  # YOLOv6's conv_silu units (L): a plain conv unit
        if src.has(f"{prefix}.rbr_dense") or src.has(f"{prefix}.rbr_reparam"):
            raise ConvertError(f"'{prefix}' is a RepVGG unit where YOLOv6 v3.0 of this scale has a plain conv")
        return _load_conv_bn(dst.conv1.conv, dst.conv1.bn, src, prefix)
    if src.has(f"{prefix}.rbr_reparam"):  # deploy form: everything summed into one biased 3x3 conv
        _copy(dst.conv1.conv.weight, src.take(f"{prefix}.rbr_reparam.weight"), f"{prefix}.rbr_reparam.weight")
        _neutral_bn(dst.conv1.bn, src.take(f"{prefix}.rbr_reparam.bias"))
        dst.conv2.conv.weight.zero_()
        _neutral_bn(dst.conv2.bn)
        if dst.bn is not None:
            _neutral_bn(dst.bn, weight=0.0)
        return
    if not src.has(f"{prefix}.rbr_dense"):
        raise ConvertError(f"'{prefix}' is not a RepVGG unit (no rbr_dense/rbr_reparam tensors)")
    _load_conv_bn(dst.conv1.conv, dst.conv1.bn, src, f"{prefix}.rbr_dense")
    _load_conv_bn(dst.conv2.conv, dst.conv2.bn, src, f"{prefix}.rbr_1x1")
    if (dst.bn is not None) != src.has(f"{prefix}.rbr_identity"):
        raise ConvertError(f"'{prefix}': identity branch {'missing' if dst.bn is not None else 'unexpected'}")
    if dst.bn is not None:
        _load_bn(dst.bn, src, f"{prefix}.rbr_identity")


def _fill(dst: nn.Module, src: _Source, prefix: str) -> None:
    """Copy the YOLOv6 module at ``prefix`` into the plugin module ``dst`` (same topology by construction)."""
    kind = type(dst)
    if issubclass(kind, blocks.RepVGGBlock):
        _load_rep(dst, src, prefix)
    elif issubclass(kind, blocks.SimConv) or type(dst).__name__ == "Conv":
        _load_conv_bn(dst.conv, dst.bn, src, prefix)
    elif kind is blocks.RepBlock:
        units = [f"{prefix}.conv1"] + [f"{prefix}.block.{k}" for k in range(len(dst.m) - 1)]
        if src.has(f"{prefix}.block.{len(dst.m) - 1}"):
            raise ConvertError(f"'{prefix}' has more than {len(dst.m)} units: a custom depth, not YOLOv6 v3.0")
        for unit, name in zip(dst.m, units):
            _fill(unit, src, name)
    elif kind is blocks.BottleRep:
        _fill(dst.conv1, src, f"{prefix}.conv1")
        _fill(dst.conv2, src, f"{prefix}.conv2")
        alpha = src.optional(f"{prefix}.alpha")
        if isinstance(dst.alpha, torch.Tensor) and alpha is not None:
            _copy(dst.alpha, alpha.reshape(dst.alpha.shape), f"{prefix}.alpha")
    elif kind is blocks.BepC3:
        for name in ("cv1", "cv2", "cv3", "m"):
            _fill(getattr(dst, name), src, f"{prefix}.{name}")
    elif kind in (blocks.SimSPPF, blocks.CSPSPPF, blocks.SimCSPSPPF):
        for name, child in dst.named_children():
            if name != "m":  # the max-pool
                _fill(child, src, f"{prefix}.{name}")
    elif kind is blocks.BiFusion:
        for name in ("cv1", "cv2", "cv3", "downsample"):
            _fill(getattr(dst, name), src, f"{prefix}.{name}")
        for name in ("weight", "bias"):
            key = f"{prefix}.upsample.upsample_transpose.{name}"
            _copy(getattr(dst.upsample.upsample, name), src.take(key), key)
    else:
        raise ConvertError(f"no YOLOv6 counterpart known for {kind.__name__} at '{prefix}'")


def _fill_head(head: EffiDeHead, src: _Source, branches: tuple[str, str]) -> None:
    cls_branch, reg_branch = branches
    for i in range(head.nl):
        _fill(head.stems[i], src, f"detect.stems.{i}")
        _fill(head.cv3[i][0], src, f"detect.cls_convs.{i}")
        _fill(head.cv2[i][0], src, f"detect.reg_convs.{i}")
        for conv, branch in ((head.cv3[i][1], cls_branch), (head.cv2[i][1], reg_branch)):
            for name in ("weight", "bias"):
                key = f"detect.{branch}.{i}.{name}"
                _copy(getattr(conv, name), src.take(key), key)


# YOLOv6 module of every layer of the plugin's yolov6-*.yaml (17 and 20 are Concats, 22 the head).
_LAYERS = {
    0: "backbone.stem",
    1: "backbone.ERBlock_2.0",
    2: "backbone.ERBlock_2.1",
    3: "backbone.ERBlock_3.0",
    4: "backbone.ERBlock_3.1",
    5: "backbone.ERBlock_4.0",
    6: "backbone.ERBlock_4.1",
    7: "backbone.ERBlock_5.0",
    8: "backbone.ERBlock_5.1",
    9: "backbone.ERBlock_5.2",
    10: "neck.reduce_layer0",
    11: "neck.Bifusion0",
    12: "neck.Rep_p4",
    13: "neck.reduce_layer1",
    14: "neck.Bifusion1",
    15: "neck.Rep_p3",
    16: "neck.downsample2",
    18: "neck.Rep_n3",
    19: "neck.downsample1",
    21: "neck.Rep_n4",
}
# Tensors YOLOv6 keeps that inference does not use: the DFL projection, anchor-aided and distillation branches.
_DROPPED = re.compile(r"^detect\.(proj|proj_conv\.weight|anchors|stride)$|^detect\.\w+_ab\.|\.num_batches_tracked$")


def _build(info: dict[str, Any], names: dict[int, str]) -> nn.Module:
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from .zoo import scaled_name

    cfg = deepcopy(yaml_model_load(scaled_name(FAMILIES[info["scale"]], info["scale"])))
    cfg["nc"] = info["nc"]
    head = cfg["head"][-1]
    head[3] = [head[3][0], info["reg_max"]]  # the checkpoint decides DFL or plain distances
    model = DetectionModel(cfg, nc=info["nc"], verbose=False)
    model.names = names
    return model.eval()


def _names(nc: int, data: str | Path | None, names: Any, path: Path) -> dict[int, str]:
    import yaml

    if names is None and data is not None:
        from .resources import find_yaml

        file = find_yaml(str(data)) or Path(data)
        if not Path(file).is_file():
            raise ConvertError(f"data='{data}': no such dataset YAML; nothing was written")
        try:
            names = (yaml.safe_load(Path(file).read_text()) or {}).get("names")
        except yaml.YAMLError as e:
            raise ConvertError(f"data='{data}' is not valid YAML ({e}); nothing was written") from None
        if names is None:
            raise ConvertError(f"data='{data}' has no 'names' entry; nothing was written")
    if names is None and nc == 80:
        from ultralytics.utils import ROOT

        names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    if names is None:
        LOGGER.warning(
            f"yolo-efficientrep convert: '{path}' predicts {nc} classes and no data= was given; classes are named "
            f"0..{nc - 1} (pass data=your.yaml to name them)"
        )
        return {i: str(i) for i in range(nc)}
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else {int(k): str(v) for k, v in names.items()}
    if len(names) != nc:
        raise ConvertError(
            f"{'data=' + repr(str(data)) if data is not None else 'names'} has {len(names)} classes but '{path}' "
            f"predicts {nc}; convert without data= and fine-tune on it instead (yolo train model=<converted.pt> "
            f"data=...; Ultralytics re-initialises the class branch); nothing was written"
        )
    return names


def read_yolov6(weights: str | Path) -> tuple[YOLOv6Checkpoint, dict[str, Any]]:
    """Read and identify a YOLOv6 checkpoint without YOLOv6 and without executing code from it.

    Returns:
        (tuple[YOLOv6Checkpoint, dict]): What was found, and the internals ``convert_yolov6`` copies from.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ConvertError: The file is damaged, refers to globals other than tensors and modules, or is not a supported
            YOLOv6 model; the message says what was found.
    """
    from .zoo import scaled_name

    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    state, eps, source, head_class, params = _extract(_load(path), path)
    info = _identify(state, head_class, path)
    if isinstance(info, ConvertError):
        raise info
    info.update(eps=eps)
    found = YOLOv6Checkpoint(
        release=info["release"],
        scale=info["scale"],
        head=info["head"],
        nc=info["nc"],
        reg_max=info["reg_max"],
        form=info["form"],
        dtype=info["dtype"],
        source=source,
        params=params,
        yaml=scaled_name(FAMILIES[info["scale"]], info["scale"]),
    )
    return found, info


def _check_out(dst: Path, src: Path, overwrite: bool) -> None:
    if dst.suffix != ".pt":
        raise ConvertError(f"out='{dst}' must end in .pt: Ultralytics picks how to load a model from its suffix")
    if dst.resolve() == src.resolve():
        raise ConvertError(f"out='{dst}' is the input checkpoint; choose another path (nothing was written)")
    if dst.is_dir():
        raise ConvertError(f"out='{dst}' is a folder; give a .pt file path (nothing was written)")
    if not dst.parent.is_dir():
        raise ConvertError(f"out='{dst}': folder '{dst.parent}' does not exist (nothing was written)")
    if not os.access(dst.parent, os.W_OK):
        raise ConvertError(f"out='{dst}': folder '{dst.parent}' is not writable (nothing was written)")
    if dst.exists() and not overwrite:
        raise ConvertError(f"out='{dst}' already exists; pass overwrite=True to replace it (nothing was written)")


def convert_yolov6(
    weights: str | Path,
    out: str | Path | None = None,
    names: list[str] | dict[int, str] | None = None,
    data: str | Path | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> Path:
    """Convert a YOLOv6 v3.0 checkpoint into an Ultralytics checkpoint of the plugin's YOLOv6 YAML.

    The output holds a ``DetectionModel`` of ``yolov6{n,s}-efficientrep.yaml`` or ``yolov6{m,l}-cspbep.yaml`` (the
    head's ``reg_max`` as in the checkpoint), the class names, and Ultralytics' usual metadata; ``YOLO(out)``
    predicts, validates, exports and tracks, and ``yolo train model=out data=...`` fine-tunes from it. It is written to
    a temporary file and renamed into place; nothing is written when anything fails.

    Args:
        weights (str | Path): The YOLOv6 ``.pt`` (released weights, a training checkpoint, or a bare state_dict).
        out (str | Path | None): Output ``.pt``; default ``<stem>-ultralytics.pt`` beside ``weights``.
        names (list[str] | dict[int, str] | None): Class names; default COCO's when the model predicts 80 classes.
        data (str | Path | None): A dataset YAML to take the class names from (its class count must match).
        overwrite (bool): Replace an existing ``out``.
        verbose (bool): Log what was found and written.

    Returns:
        (Path): The written checkpoint.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ConvertError: Not a supported YOLOv6 checkpoint, names that do not match the model, or an output path that
            cannot be written; the message says what was found and what is supported.

    Examples:
        >>> path = convert_yolov6("yolov6n.pt")  # -> yolov6n-ultralytics.pt, COCO names
        >>> from ultralytics import YOLO
        >>> YOLO(path).predict("bus.jpg")
    """
    check_ultralytics_version()
    import ultralytics

    from . import __version__

    src_path = Path(weights)
    dst = Path(out) if out is not None else src_path.with_name(f"{src_path.stem}-ultralytics.pt")
    _check_out(dst, src_path, overwrite)
    found, info = read_yolov6(src_path)
    class_names = _names(found.nc, data, names, src_path)
    model = _build(info, class_names)

    src = _Source(info["state"], info["eps"])
    try:
        with torch.no_grad():
            layers = list(model.model)
            for i, prefix in _LAYERS.items():
                _fill(layers[i], src, prefix)
            _fill_head(layers[-1], src, info["branches"])
    except ConvertError as e:
        raise ConvertError(
            f"'{src_path}' (read as YOLOv6 v3.0-{found.scale.upper()}): {e}. Supported: {SUPPORTED}; nothing was "
            f"written"
        ) from None
    left = sorted(k for k in src.state if k not in src.used and not _DROPPED.search(k))
    cls_branch, reg_branch = info["branches"]
    unused_heads = {"cls_preds", "reg_preds", "reg_preds_dist"} - {cls_branch, reg_branch}
    left = [k for k in left if not any(k.startswith(f"detect.{b}.") for b in unused_heads)]
    if left:
        raise ConvertError(
            f"'{src_path}' holds {len(left)} tensors a YOLOv6 v3.0-{found.scale.upper()} does not have "
            f"({', '.join(left[:4])}{', ...' if len(left) > 4 else ''}): a modified model? Supported: {SUPPORTED}; "
            f"nothing was written"
        )

    # Training-form float16 tensors were copied exactly, so float16 storage (Ultralytics' own) loses nothing; the
    # neutral BNs a deploy-form checkpoint needs are exact only in float32.
    half = found.dtype == "float16" and found.form == "training"
    record = {
        **asdict(found),
        "tool": f"yolo-efficientrep {__version__}",
        "file": src_path.name,
        "stored": "float16" if half else "float32",
    }
    args = {"task": "detect", "mode": "train", "model": found.yaml, "data": str(data) if data else "coco.yaml"}
    args["imgsz"] = 640
    ckpt = {
        "date": datetime.now().isoformat(),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": (model.half() if half else model.float()).requires_grad_(False),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": args,
        "train_metrics": None,
        "train_results": None,
        "yolov6": record,
    }
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        raise ConvertError(f"could not write '{dst}': {e} (nothing was written)") from None
    finally:
        tmp.unlink(missing_ok=True)
    if verbose:
        fused = sum(p.numel() for p in deepcopy(model).float().fuse(verbose=False).parameters())
        LOGGER.info(
            f"yolo-efficientrep convert: {src_path} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)\n"
            f"  found {found.describe()}\n"
            f"  wrote {found.yaml} with nc={found.nc}, reg_max={found.reg_max} ({record['stored']}), "
            f"{fused / 1e6:.2f}M parameters fused; try: yolo predict model={dst}"
        )
    return dst
