"""Plugin-free deployment: rewrite a plugin model as stock Ultralytics modules with the same outputs.

``deploy("best.pt")`` writes ``best-deploy.pt``, a checkpoint in Ultralytics' own format in which no class, function or
module of this package is referenced. Stock Ultralytics then loads, predicts, validates and exports it on machines where
``yolo_efficientrep`` is not installed, including under restricted loading (``ULTRALYTICS_SAFE_LOAD=1``).

Every rep branch is collapsed before writing; what each plugin block becomes:

=====================  =================================================================================================
plugin block           stock replacement
=====================  =================================================================================================
RepVGGBlock,           ``Conv``: the fused kernel in its conv, the fused bias in a BatchNorm that only adds it
QARepVGGBlock(V2),
SimConv
Transpose              ``ConvTranspose`` (bias in the BatchNorm the same way, no activation)
BottleRep              ``Bottleneck``; a shortcut weight ``alpha != 1`` becomes a depthwise 1x1 ``Conv`` scaling the
                       input by ``alpha`` in front of it, with ``1 / alpha`` folded into the first conv's kernel
RepBlock               ``nn.Sequential`` of the converted units
BepC3                  ``C3`` with the converted convs and inner stage
SimSPPF                ``SPPF``
CSPSPPF, SimCSPSPPF    ``C3``: ``cv1`` is the shortcut conv, ``cv2`` the main path ending in an ``SPPF``, ``m`` empty
EffiDeHead             ``Detect`` whose box and class branches each start with a copy of the level's stem (the stem
                       runs twice per level: exact, at the cost of one extra 1x1 conv per level)
BiFusion               six graph layers: ``ConvTranspose``, ``Conv``, ``Conv``, ``Conv``, ``Concat``, ``Conv``; no stock
                       module takes a list of maps and transforms each, so the graph grows and later indices shift
=====================  =================================================================================================

Why a Conv+BN pair rather than a bare fused conv: Ultralytics stores checkpoints unfused and fuses them when it loads
them. A *fused* stock ``Conv`` exists only with a ``forward`` method assigned to the instance, which restricted loading
refuses to unpickle. The BatchNorm written here has mean 0, weight 1 and ``running_var + eps == 1`` exactly, so
Ultralytics' own ``fuse()`` reproduces the fused kernel bit for bit and takes the bias from it.

This module knows Ultralytics' layer graph (``f``, ``i``, ``type``, ``np``, ``save``) and checkpoint dict, so it belongs
to the integration layer; the blocks know nothing of it.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import types
import zipfile
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import blocks, heads
from ._compat import stock_detect
from ._utils import qualname as _qualname
from ._utils import tensors
from .integration import check_ultralytics_version
from .reparam import bias_batchnorm

__all__ = ("DEPLOY_RTOL", "DeployError", "deploy", "max_relative_error", "read_checkpoint", "to_stock")

# Largest relative output difference deploy() accepts between the plugin model and its stock copy. Folding BN in
# float32 costs up to ~3e-5 on models with trained-scale weights (converted YOLOv6-N: 3.4e-5; Ultralytics' own fuse()
# of the same model: 2.9e-5); a structural mistake costs orders of magnitude more.
DEPLOY_RTOL = 1e-4
_PACKAGE = __name__.partition(".")[0]


class DeployError(ValueError):
    """A model or checkpoint that cannot be written as stock Ultralytics modules exactly; says which layer and why."""


def _is_plugin(obj: Any) -> bool:
    """Whether unpickling ``obj`` would need this package: its class or any base class comes from it."""
    return any(cls.__module__.partition(".")[0] == _PACKAGE for cls in type(obj).__mro__)


_STOCK_PACKAGES = {"torch", "torchvision", "ultralytics"}


def _is_known(obj: Any) -> bool:
    """Whether ``obj``'s class comes from this package or from the stock packages a deploy checkpoint may hold."""
    return _is_plugin(obj) or type(obj).__module__.partition(".")[0] in _STOCK_PACKAGES


def _stock_modules():
    """The stock Ultralytics classes the replacements are built from."""
    from ultralytics.nn.modules import C3, SPPF, Bottleneck, Concat, Conv, ConvTranspose

    return types.SimpleNamespace(
        C3=C3, SPPF=SPPF, Bottleneck=Bottleneck, Concat=Concat, Conv=Conv, ConvTranspose=ConvTranspose
    )


# ---------------------------------------------------------------------------------------------------------------------
# Rep units -> stock Conv


_REP_UNITS = (blocks.RepVGGBlock, blocks.QARepVGGBlock, blocks.QARepVGGBlockV2)  # multi-branch, one conv when fused
_UNITS = (*_REP_UNITS, blocks.SimConv)


def _unit_conv(unit: nn.Module) -> nn.Conv2d:
    """The conv whose geometry (channels, kernel, stride, padding, groups, dilation) the unit's fused form has."""
    if type(unit) in _REP_UNITS:
        return unit.conv if unit.fused else unit.conv1.conv
    return unit.conv  # SimConv


def _conv_bn_pair(unit: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d] | None:
    """The unit's own bias-free conv and BN when it is exactly one such pair (reused as is: no arithmetic at all)."""
    if type(unit) is blocks.SimConv and hasattr(unit, "bn") and unit.conv.bias is None:
        return unit.conv, unit.bn
    if type(unit) is blocks.RepVGGBlock and not unit.fused and unit.conv2 is None and unit.bn is None:
        inner = unit.conv1
        if hasattr(inner, "bn") and inner.conv.bias is None:
            return inner.conv, inner.bn
    return None


def _stock_conv(unit: nn.Module, path: str, in_scale: float = 1.0) -> nn.Module:
    """A stock ``Conv`` equal to a rep unit: ``stock(in_scale * x) == unit(x)``.

    Args:
        unit (nn.Module): A ``RepVGGBlock``, ``QARepVGGBlock(V2)`` or ``SimConv``, fused or not.
        path (str): Where the unit sits in the model, for error messages.
        in_scale (float): Factor the replacement's input will carry; the kernel is divided by it.
    """
    st = _stock_modules()
    if type(unit) not in _UNITS:
        raise DeployError(f"{path}: {_qualname(type(unit))} is not a rep unit with a stock Conv equivalent")
    conv = _unit_conv(unit)
    if conv.padding_mode != "zeros":
        raise DeployError(f"{path}: padding_mode={conv.padding_mode!r}; stock Conv pads with zeros")
    if len(set(conv.dilation)) != 1 or isinstance(conv.padding, str):
        raise DeployError(f"{path}: dilation {conv.dilation} / padding {conv.padding!r} have no stock Conv form")
    stock = st.Conv(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.groups,
        conv.dilation[0],  # stock Conv takes one dilation for both axes
        unit.act,
    )
    pair = _conv_bn_pair(unit) if in_scale == 1.0 else None
    if pair is not None:
        stock.conv, stock.bn = pair
        return stock
    kernel, bias = (t.detach() for t in unit.get_equivalent_kernel_bias())
    stock.conv = stock.conv.to(kernel)
    with torch.no_grad():
        stock.conv.weight.copy_(kernel / in_scale if in_scale != 1.0 else kernel)
    stock.bn = bias_batchnorm(bias.clone())
    return stock


def _scale_conv(channels: int, alpha: float, like: torch.Tensor) -> nn.Module:
    """A stock depthwise 1x1 ``Conv`` (no activation) multiplying every channel by ``alpha``."""
    scale = _stock_modules().Conv(channels, channels, 1, 1, 0, channels, 1, False).to(like)
    with torch.no_grad():
        scale.conv.weight.fill_(alpha)
    scale.bn = bias_batchnorm(like.new_zeros(channels))
    return scale


# ---------------------------------------------------------------------------------------------------------------------
# Composite blocks


def _transpose(m: blocks.Transpose, path: str) -> nn.Module:
    up = m.upsample
    if up.output_padding != (0, 0) or up.groups != 1 or up.dilation != (1, 1) or up.padding_mode != "zeros":
        raise DeployError(f"{path}: only plain transposed convs (no output padding, groups or dilation) map to stock")
    stock = _stock_modules().ConvTranspose(
        up.in_channels, up.out_channels, up.kernel_size, up.stride, up.padding, bn=True, act=False
    )
    stock.conv_transpose = stock.conv_transpose.to(up.weight)
    with torch.no_grad():
        stock.conv_transpose.weight.copy_(up.weight)
    bias = up.bias.detach() if up.bias is not None else up.weight.new_zeros(up.out_channels)
    stock.bn = bias_batchnorm(bias.clone())
    return stock


def _bottle_rep(m: blocks.BottleRep, path: str) -> nn.Module:
    c1, c2 = _unit_conv(m.conv1).in_channels, _unit_conv(m.conv2).out_channels
    alpha = float(m.alpha) if m.shortcut else 0.0
    if not math.isfinite(alpha):
        raise DeployError(f"{path}: BottleRep shortcut weight alpha={alpha} is not finite")
    scaled = alpha not in (0.0, 1.0)
    # by keyword: Bottleneck's positional order is not a contract across releases
    stock = _stock_modules().Bottleneck(c1, c2, shortcut=True, g=1, k=(1, 1), e=1.0)
    stock.cv1 = _stock_conv(m.conv1, f"{path}.conv1", in_scale=alpha if scaled else 1.0)
    stock.cv2 = _stock_conv(m.conv2, f"{path}.conv2")
    stock.add = alpha != 0.0
    if not scaled:
        return stock
    # alpha * x + f(x) == Bottleneck(alpha * x) when its first conv's kernel is divided by alpha (convs are linear in x)
    return nn.Sequential(_scale_conv(c1, alpha, stock.cv1.conv.weight), stock)


def _rep_block(m: blocks.RepBlock, path: str) -> nn.Module:
    return nn.Sequential(*(_convert(u, f"{path}.m.{i}") for i, u in enumerate(m.m)))


def _bep_c3(m: blocks.BepC3, path: str) -> nn.Module:
    stock = _stock_modules().C3(m.cv1.conv.in_channels, m.cv3.conv.out_channels, 1)
    stock.cv1, stock.cv2, stock.cv3 = (_stock_conv(getattr(m, n), f"{path}.{n}") for n in ("cv1", "cv2", "cv3"))
    stock.m = _rep_block(m.m, f"{path}.m")
    return stock


def _sim_sppf(m: blocks.SimSPPF, path: str) -> nn.Module:
    stock = _stock_modules().SPPF(m.cv1.conv.in_channels, m.cv2.conv.out_channels, m.m.kernel_size)
    stock.cv1, stock.cv2, stock.m = _stock_conv(m.cv1, f"{path}.cv1"), _stock_conv(m.cv2, f"{path}.cv2"), m.m
    return stock


def _csp_sppf(m: blocks.CSPSPPF, path: str) -> nn.Module:
    st = _stock_modules()
    conv = {n: _stock_conv(getattr(m, n), f"{path}.{n}") for n in ("cv1", "cv2", "cv3", "cv4", "cv5", "cv6", "cv7")}
    c_ = m.cv1.conv.out_channels
    pool = st.SPPF(2 * c_, c_, m.m.kernel_size)
    pool.cv1, pool.cv2, pool.m = nn.Identity(), nn.Sequential(conv["cv5"], conv["cv6"]), m.m
    # C3 computes cv3(cat(m(cv1(x)), cv2(x))); CSPSPPF concatenates (shortcut, main), so the shortcut takes cv1's place
    stock = st.C3(m.cv1.conv.in_channels, m.cv7.conv.out_channels, 1)
    stock.cv1, stock.m, stock.cv3 = conv["cv2"], nn.Identity(), conv["cv7"]
    stock.cv2 = nn.Sequential(conv["cv1"], conv["cv3"], conv["cv4"], pool)
    return stock


def _effide_head(m: heads.EffiDeHead, path: str) -> nn.Module:
    """EffiDeHead as a stock ``Detect`` whose box and class branches each start with a copy of the level's stem."""
    stock = stock_detect(m.nc, m.reg_max, [stem.conv.in_channels for stem in m.stems])
    stock.cv2 = nn.ModuleList(nn.Sequential(deepcopy(stem), *branch) for stem, branch in zip(m.stems, m.cv2))
    stock.cv3 = nn.ModuleList(nn.Sequential(deepcopy(stem), *branch) for stem, branch in zip(m.stems, m.cv3))
    stock.stride = m.stride.clone()
    stock.inplace = getattr(m, "inplace", True)
    _replace_inside(stock, path)  # nothing of the plugin in stock Conv, but keeps the rule in one place
    return stock.eval()


_CONVERTERS: dict[type, Callable[[Any, str], nn.Module]] = {
    blocks.RepVGGBlock: _stock_conv,
    blocks.QARepVGGBlock: _stock_conv,
    blocks.QARepVGGBlockV2: _stock_conv,
    blocks.SimConv: _stock_conv,
    blocks.Transpose: _transpose,
    blocks.BottleRep: _bottle_rep,
    blocks.RepBlock: _rep_block,
    blocks.BepC3: _bep_c3,
    blocks.SimSPPF: _sim_sppf,
    blocks.CSPSPPF: _csp_sppf,
    blocks.SimCSPSPPF: _csp_sppf,
    heads.EffiDeHead: _effide_head,
}


def _convert(module: nn.Module, path: str) -> nn.Module:
    """Stock replacement of one plugin module (exact class match: a subclass may compute something else)."""
    converter = _CONVERTERS.get(type(module))
    if type(module) is blocks.BiFusion:
        raise DeployError(f"{path}: a BiFusion converts only as a model layer of its own (a YAML row), not nested")
    if converter is None:
        known = ", ".join(sorted(c.__name__ for c in (*_CONVERTERS, blocks.BiFusion)))
        raise DeployError(
            f"{path}: {_qualname(type(module))} has no known stock equivalent (deploy converts exactly {known}; a "
            f"subclass may compute something else, so it is refused rather than guessed)"
        )
    return converter(module, path)


def _replace_inside(module: nn.Module, path: str) -> None:
    """Replace every plugin module nested in a stock module, in place."""
    for name, child in list(module.named_children()):
        if _is_plugin(child):
            setattr(module, name, _convert(child, f"{path}.{name}"))
        else:
            _replace_inside(child, f"{path}.{name}")


# ---------------------------------------------------------------------------------------------------------------------
# The layer graph


def _bifusion_pieces(m: blocks.BiFusion, path: str) -> list[tuple[nn.Module, list[tuple[str, int]]]]:
    """BiFusion as graph layers; each source is ("in", k) for the k-th input or ("piece", k) for an earlier piece."""
    st = _stock_modules()
    conv = {n: _stock_conv(getattr(m, n), f"{path}.{n}") for n in ("cv1", "cv2", "downsample", "cv3")}
    return [
        (_transpose(m.upsample, f"{path}.upsample"), [("in", 0)]),
        (conv["cv1"], [("in", 1)]),
        (conv["cv2"], [("in", 2)]),
        (conv["downsample"], [("piece", 2)]),
        (st.Concat(1), [("piece", 0), ("piece", 1), ("piece", 3)]),
        (conv["cv3"], [("piece", 4)]),
    ]


def _layers(model: nn.Module) -> nn.Sequential:
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not all(hasattr(m, "f") and hasattr(m, "i") for m in layers):
        raise DeployError(
            f"expected an Ultralytics model (DetectionModel, SegmentationModel, ...) with a layer graph, got "
            f"{_qualname(type(model))}"
        )
    return layers


def to_stock(model: nn.Module) -> nn.Module:
    """Return a copy of an Ultralytics model in which every plugin block is replaced by stock modules.

    The copy computes the same outputs in ``.eval()`` (see the module docstring for each replacement) and holds no
    object of this package, so it pickles into a checkpoint that stock Ultralytics loads without the plugin.

    Args:
        model (nn.Module): An Ultralytics ``BaseModel`` (or a ``YOLO`` wrapping one), fused or not.

    Returns:
        (nn.Module): The converted copy, in float32 ``.eval()`` mode, on the model's device.

    Examples:
        >>> from ultralytics import YOLO
        >>> stock = to_stock(YOLO("yolov8n-efficientrep.yaml").model)
        >>> any(type(m).__module__.startswith("yolo_efficientrep") for m in stock.modules())
        False
    """
    check_ultralytics_version()
    from ultralytics.engine.model import Model

    if isinstance(model, Model):
        model = model.model
    _layers(model)
    foreign = [f"{name} ({_qualname(type(m))})" for name, m in model.named_modules() if not _is_known(m)]
    if foreign:
        raise DeployError(
            f"{foreign[0]}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''} is neither a stock "
            "Ultralytics/torch module nor a yolo-efficientrep block: a deploy checkpoint holding it would need its "
            "package wherever it is loaded, so it is refused (nothing was written)"
        )
    model = deepcopy(model).float().eval()
    old_layers = _layers(model)
    new_layers: list[nn.Module] = []
    new_index = {-1: -1}  # old layer index -> index of the new layer producing the same map (-1: the image)
    for i, layer in enumerate(old_layers):
        path = f"model.{i}"
        entries = [layer.f] if isinstance(layer.f, int) else list(layer.f)
        inputs = [i - 1 if j == -1 else j % i for j in entries]  # old absolute indices, like parse_model's save list
        if type(layer) is blocks.BiFusion:
            pieces = _bifusion_pieces(layer, path)
        elif _is_plugin(layer):
            pieces = [(_convert(layer, path), [("in", k) for k in range(len(entries))])]
        else:
            _replace_inside(layer, path)
            pieces = [(layer, [("in", k) for k in range(len(entries))])]
        base = len(new_layers)
        for k, (module, sources) in enumerate(pieces):
            at = base + k
            refs = []
            for kind, n in sources:
                if kind == "in":
                    src = new_index[inputs[n]]
                    refs.append(-1 if entries[n] == -1 and src == at - 1 else src)
                else:
                    refs.append(-1 if base + n == at - 1 else base + n)
            # a one-to-one replacement keeps the row's notation (int or list); expanded pieces use int for one input
            as_int = isinstance(layer.f, int) if len(pieces) == 1 else len(refs) == 1
            module.f = refs[0] if as_int else refs
            module.i = at
            if module is not layer:
                module.type = str(type(module))[8:-2]  # parse_model's notation, e.g. ultralytics.nn.modules.conv.Conv
            module.np = sum(p.numel() for p in module.parameters())
            new_layers.append(module)
        new_index[i] = len(new_layers) - 1
    model.model = nn.Sequential(*new_layers)
    model.save = sorted({j for m in new_layers for j in ([m.f] if isinstance(m.f, int) else m.f) if j != -1})
    left = [f"{name} ({_qualname(type(m))})" for name, m in model.named_modules() if _is_plugin(m)]
    if left:  # every converter returns stock modules only; this guards future blocks
        raise DeployError(f"plugin modules left after conversion: {', '.join(left)}")
    return model


# ---------------------------------------------------------------------------------------------------------------------
# Checking and writing


# Ultralytics >= 8.4 also returns the head's input maps as "feats": intermediate (an EffiDeHead reports its stems'
# outputs there, its stock Detect copy the stems' inputs); the raw predictions and the decoded output must agree.
_INTERMEDIATE = ("feats",)
_UNSELECTED = (*_INTERMEDIATE, "one2one")


@torch.no_grad()
def max_relative_error(reference: nn.Module, candidate: nn.Module, imgsz: int = 128, seed: int = 0) -> float:
    """Largest ``max|a - b| / max|b|`` over every output tensor of two models fed the same random image batch.

    Args:
        reference (nn.Module): Model whose outputs are the reference (e.g. the plugin model).
        candidate (nn.Module): Model to compare (e.g. its stock copy); must return the same structure.
        imgsz (int): Side of the square input, a multiple of the model's largest stride.
        seed (int): Seed of the input.

    Returns:
        (float): The error; ``inf`` when the output structures or shapes differ.
    """
    first = next(m for m in reference.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    channels = first.in_channels if isinstance(first, nn.Conv2d) else first.in_features
    x = torch.rand(2, channels, imgsz, imgsz, generator=torch.Generator().manual_seed(seed)).to(first.weight)
    y_want, y_got = reference.eval()(x), candidate.eval()(x)
    want, got = tensors(y_want, _INTERMEDIATE), tensors(y_got, _INTERMEDIATE)
    if len(want) != len(got):  # fuse() drops the branch an end-to-end head does not select (YOLO26's one-to-one
        want, got = tensors(y_want, _UNSELECTED), tensors(y_got, _UNSELECTED)  # outputs when NMS is used)
    if len(want) != len(got) or any(a.shape != b.shape for a, b in zip(want, got)):
        return math.inf
    errors = [
        ((b.float() - a.float()).abs().max() / a.float().abs().max().clamp_min(1e-12)).item() for a, b in zip(want, got)
    ]
    return max(errors, default=0.0)


class _PluginFreeUnpickler(pickle.Unpickler):
    """Unpickler that refuses any global of this package: proves a written checkpoint loads without it."""

    def find_class(self, module: str, name: str) -> Any:
        if module.partition(".")[0] == _PACKAGE:
            raise DeployError(f"the deploy checkpoint still references {module}.{name}")
        return super().find_class(module, name)


_plugin_free_pickle = types.ModuleType("yolo_efficientrep_plugin_free_pickle")
_plugin_free_pickle.Unpickler = _PluginFreeUnpickler
_plugin_free_pickle.load = pickle.load
_plugin_free_pickle.__name__ = "pickle"


def read_checkpoint(path: str | Path) -> dict:
    """Load an Ultralytics ``.pt`` checkpoint as Ultralytics does, or say clearly why it cannot be read.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DeployError: The file is truncated, damaged or not a PyTorch checkpoint.
    """
    check_ultralytics_version()
    from ultralytics.nn.tasks import torch_safe_load

    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no checkpoint at '{src}'")
    try:
        ckpt, _ = torch_safe_load(str(src))
    except (RuntimeError, EOFError, OSError, TypeError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        root = e
        while root.__cause__ is not None or root.__context__ is not None:  # Ultralytics may wrap torch's error
            root = root.__cause__ or root.__context__
        cause = " ".join(str(root).split())[:160]
        raise DeployError(
            f"'{src}' cannot be read as a PyTorch checkpoint ({type(root).__name__}: {cause}); the file is truncated, "
            "damaged or not a .pt file: copy it again or use another checkpoint"
        ) from e
    return ckpt


def _check_out(dst: Path, overwrite: bool) -> None:
    """Refuse an output path that cannot or must not be written, before any work is done.

    Raises:
        DeployError: ``dst`` exists (and ``overwrite`` is off) or is a folder, an ancestor is a file, or the folder it
            would be written in is not writable.
    """
    if dst.is_dir():
        raise DeployError(f"out='{dst}' is a folder; give a file path ending in .pt (nothing was written)")
    if dst.exists() and not overwrite:
        raise DeployError(
            f"out='{dst}' already exists; choose another path or pass overwrite=True to replace it "
            "(nothing was written)"
        )
    folder = dst.parent
    while not folder.exists() and folder != folder.parent:  # missing folders are created when writing
        folder = folder.parent
    if not folder.is_dir():
        raise DeployError(f"out='{dst}': '{folder}' is a file, not a folder (nothing was written)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DeployError(f"out='{dst}': folder '{folder}' is not writable (nothing was written)")


def deploy(
    weights: str | Path,
    out: str | Path | None = None,
    half: bool = False,
    imgsz: int = 128,
    verbose: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a copy of a plugin checkpoint that stock Ultralytics loads without the plugin installed.

    The model (EMA weights, as Ultralytics loads them) is converted by ``to_stock``; its outputs are compared with the
    plugin model's before and after Ultralytics' own ``fuse()``, and nothing is written unless both agree within
    ``DEPLOY_RTOL``. The checkpoint keeps Ultralytics' metadata (``train_args``, names, stride, task, yaml, metrics),
    drops the optimizer state like ``strip_optimizer`` does, and records the check under the ``"deploy"`` key. It is
    written to a temporary file, reloaded with an unpickler that refuses this package, then renamed into place.

    Args:
        weights (str | Path): A ``.pt`` checkpoint written by Ultralytics with the plugin (e.g. ``best.pt``).
        out (str | Path | None): Output ``.pt`` path; default ``<stem>-deploy.pt`` beside ``weights``.
        half (bool): Store float16 weights (half the file size; Ultralytics trains its checkpoints this way). The
            outputs then drift from the plugin model by float16 rounding; the drift is measured and recorded.
        imgsz (int): Input size of the output check.
        verbose (bool): Log what was written and the measured errors.
        overwrite (bool): Replace an existing ``out`` file; without it an existing file is refused.

    Returns:
        (Path): The written checkpoint.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        DeployError: Not an Ultralytics checkpoint, a block without an exact stock form, a failed output check,
            ``out`` equal to ``weights``, an existing ``out`` without ``overwrite``, or an ``out`` that cannot be
            written (a folder, a file as its parent, a read-only folder); nothing is written.

    Examples:
        >>> path = deploy("runs/detect/train/weights/best.pt")  # -> runs/detect/train/weights/best-deploy.pt
    """
    check_ultralytics_version()
    from ultralytics import __version__ as ultralytics_version
    from ultralytics.utils import LOGGER

    from . import __version__

    src = Path(weights)
    if not src.is_file():
        raise FileNotFoundError(f"no checkpoint at '{src}'")
    dst = Path(out) if out is not None else src.with_name(f"{src.stem}-deploy.pt")
    if dst.suffix != ".pt":
        raise DeployError(f"out='{dst}' must end in .pt: Ultralytics picks how to load a model from its suffix")
    if dst.resolve() == src.resolve():
        raise DeployError(f"out='{dst}' is the input checkpoint; choose another path (nothing was written)")
    _check_out(dst, overwrite)

    ckpt = read_checkpoint(src)
    source = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(source, nn.Module):
        raise DeployError(f"'{src}' is not an Ultralytics checkpoint: it holds no 'ema' or 'model' module")
    if not any(_is_plugin(m) for m in source.modules()):
        raise DeployError(
            f"'{src}' holds no yolo-efficientrep block: it is already a stock Ultralytics checkpoint, which loads "
            "without the plugin; there is nothing to convert (nothing was written)"
        )
    source = source.float().eval()
    stock = to_stock(source)

    error = max_relative_error(source, stock, imgsz)
    fused_error = max_relative_error(source, deepcopy(stock).fuse(verbose=False), imgsz)
    worst = max(error, fused_error)
    if not worst <= DEPLOY_RTOL:  # also catches nan
        raise DeployError(
            f"'{src}': the stock copy differs from the plugin model by a relative error of {worst:.2e} "
            f"(limit {DEPLOY_RTOL:.0e}); nothing was written"
        )
    record = {
        "tool": f"yolo-efficientrep {__version__}",
        "ultralytics": ultralytics_version,
        "source": src.name,
        "plugin_layers": sum(any(_is_plugin(m) for m in layer.modules()) for layer in _layers(source)),
        "layers": [len(_layers(source)), len(_layers(stock))],
        "dtype": "float16" if half else "float32",
        "max_rel_error": error,
        "fused_max_rel_error": fused_error,
    }
    if half:
        stock = stock.half()
        record["float16_rel_drift"] = max_relative_error(source, deepcopy(stock).float(), imgsz)

    result = {k: v for k, v in ckpt.items() if k not in {"model", "ema", "optimizer", "scaler", "updates"}}
    result.update(
        model=stock, ema=None, optimizer=None, updates=None, epoch=-1, date=datetime.now().isoformat(), deploy=record
    )
    _check_out(dst, overwrite)  # again: the conversion took a while
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        torch.save(result, tmp)
        torch.load(tmp, map_location="cpu", weights_only=False, pickle_module=_plugin_free_pickle)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(OSError):  # a failed cleanup must not hide the error that caused it
            tmp.unlink(missing_ok=True)
    if verbose:
        drift = f", float16 storage drift {record['float16_rel_drift']:.1e}" if half else ""
        LOGGER.info(
            f"yolo-efficientrep deploy: {src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB, {record['dtype']})\n"
            f"  {record['plugin_layers']} plugin layers rewritten as stock Ultralytics modules, "
            f"{record['layers'][0]} -> {record['layers'][1]} layers\n"
            f"  max relative output error vs the plugin model: {error:.1e} as stored, {fused_error:.1e} after "
            f"Ultralytics' fuse(){drift}\n"
            f"  needs only Ultralytics: YOLO('{dst}') or yolo predict model={dst}"
        )
    return dst
