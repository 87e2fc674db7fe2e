"""EfficientRep building blocks (YOLOv6) as plain PyTorch modules with Ultralytics' ``(c1, c2, ...)`` contract.

Re-implemented from the papers and the published behaviour of the reference projects (no code copied):

- ``RepVGGBlock``: RepVGG, arXiv 2101.03697 (3x3+BN, 1x1+BN, identity-BN; fuses to one 3x3 conv).
- ``RepBlock``, ``BottleRep``, ``BepC3`` (CSPStackRep), ``SimConv``, ``SimSPPF``, ``Transpose``: YOLOv6 v1/v2,
  arXiv 2209.02976 (EfficientRep backbone, Rep-PAN neck).
- ``BiFusion`` (BiC), ``CSPSPPF`` / ``SimCSPSPPF``: YOLOv6 v3, arXiv 2301.05586 (RepBiFPAN neck).
- ``QARepVGGBlock``, ``QARepVGGBlockV2``: "Make RepVGG Greater Again: A Quantization-aware Approach", arXiv 2212.01593
  (QARepVGG), as YOLOv6 v3 trains its quantization-friendly ``-qa`` models.

Conventions shared by every block:

- Positional signature in Ultralytics order, so a YAML row ``[-1, 6, RepBlock, [256]]`` reads like a stock row.
- ``act``: ``True`` selects the block family's default (ReLU as in the papers, SiLU for ``CSPSPPF``), ``False``/``None``
  no activation; an ``nn.Module``, an ``nn.Module`` class or a name such as ``"nn.SiLU()"`` or ``"silu"`` picks one.
- ``deploy=True`` builds the fused (single-path) form directly, so a fused state dict loads with ``strict=True``.
- Re-parameterization is decided by state: ``fuse_convs()`` is a no-op once fused and ``forward`` follows the state.

The stock blocks reused are Ultralytics' ``Conv`` (``SimConv`` subclasses it so that ``model.fuse()`` folds its BN)
and ``RepConv`` (``RepVGGBlock`` subclasses it so that ``model.fuse()``/``is_fused()`` collapse its branches).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Sequence
from typing import Union

import torch
from torch import nn
from ultralytics.nn.modules import Conv, RepConv

from .reparam import avg_pool_kernel, conv_kernel_bias, fold_bn, identity_kernel, pad_to_kernel

__all__ = (
    "BepC3",
    "BiFusion",
    "BottleRep",
    "CSPSPPF",
    "QARepVGGBlock",
    "QARepVGGBlockV2",
    "RepBlock",
    "RepVGGBlock",
    "SimCSPSPPF",
    "SimConv",
    "SimSPPF",
    "Transpose",
    "make_act",
    "parse_activation",
    "reparameterize",
)

ActSpec = Union[bool, None, str, nn.Module, type]  # what every block's ``act`` argument accepts

# torch.nn activations by lower-case name, for YAML-friendly specs such as "relu", "SiLU" or "nn.LeakyReLU(0.1)".
_ACTIVATIONS = {
    name.lower(): obj
    for name, obj in vars(nn.modules.activation).items()
    if isinstance(obj, type) and issubclass(obj, nn.Module) and obj is not nn.Module
}
_ACTIVATIONS["identity"] = nn.Identity


def parse_activation(spec: str) -> tuple[type[nn.Module], list, dict]:
    """Read an activation spec such as ``"nn.ReLU()"``, ``"torch.nn.LeakyReLU(0.1)"``, ``"nn.SiLU"`` or ``"silu"``.

    Only torch.nn activation classes with literal arguments are accepted; nothing is ``eval``-ed.

    Returns:
        (tuple[type[nn.Module], list, dict]): The class and the arguments to call it with.

    Raises:
        ValueError: Anything else, with the accepted forms.
    """
    text = spec.strip()
    for prefix in ("torch.nn.", "nn."):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    try:
        node = ast.parse(text, mode="eval").body
        args, kwargs = [], {}
        if isinstance(node, ast.Call):
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
            node = node.func
        cls = _ACTIVATIONS[node.id.lower()]  # AttributeError when node is not a bare name
        cls(*args, **kwargs)  # arguments the class does not take fail here, with the spec in the message
        return cls, args, kwargs
    except (SyntaxError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(
            f"unknown activation {spec!r}: expected a torch.nn activation such as 'nn.ReLU()', 'nn.SiLU()', "
            f"'nn.LeakyReLU(0.1)' or 'relu' ({type(e).__name__}: {e})"
        ) from None


def make_act(act: ActSpec, default: Callable[[], nn.Module]) -> nn.Module:
    """Resolve a block's ``act`` argument into a module.

    Args:
        act (bool | None | str | nn.Module | type): ``True`` for ``default()``, ``False``/``None`` for no activation,
            a module (copied, so that every block owns its activation: a parametric one such as ``nn.PReLU()`` must
            not share one slope across blocks), a module class (instantiated) or a name such as ``"nn.SiLU()"``.
        default (Callable[[], nn.Module]): Factory of the block family's default activation.

    Returns:
        (nn.Module): The activation module.

    Examples:
        >>> make_act(True, nn.ReLU)
        ReLU()
        >>> make_act("nn.LeakyReLU(0.1)", nn.ReLU)
        LeakyReLU(negative_slope=0.1)
    """
    if act is True:
        return default()
    if act is False or act is None:
        return nn.Identity()
    if isinstance(act, nn.Module):
        return copy.deepcopy(act)
    if isinstance(act, type) and issubclass(act, nn.Module):
        return act()
    if isinstance(act, str):
        cls, args, kwargs = parse_activation(act)
        return cls(*args, **kwargs)
    raise TypeError(f"act must be a bool, an nn.Module, an nn.Module class or a name like 'nn.ReLU()', got {act!r}")


def _branch_kernel_bias(branch: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of a conv branch: a stock ``Conv`` (conv + BN, or BN already folded) or a plain ``nn.Conv2d``."""
    if isinstance(branch, nn.Conv2d):
        return conv_kernel_bias(branch)
    return conv_kernel_bias(branch.conv, getattr(branch, "bn", None))


def _biased_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """Return a biased Conv2d with the geometry of ``conv`` holding ``weight`` and ``bias``."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
    return fused


class SimConv(Conv):
    """Conv2d + BatchNorm2d + activation (YOLOv6 ``SimConv`` / ``ConvBNReLU``), ReLU by default.

    A subclass of Ultralytics' ``Conv``, so Ultralytics' ``model.fuse()`` folds its BN like any stock conv. Unlike
    ``Conv`` the kernel size defaults to 3, as for every conv-like block of this plugin.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size.
        s (int): Stride.
        p (int | None): Padding, ``None`` for 'same'.
        g (int): Groups.
        d (int): Dilation.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for ReLU.
        deploy (bool): Build the fused form (biased conv, no BN).

    Examples:
        >>> m = SimConv(16, 32, 3, 2)
        >>> m(torch.zeros(1, 16, 64, 64)).shape
        torch.Size([1, 32, 32, 32])
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 3,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        act: ActSpec = True,
        deploy: bool = False,
    ):
        """Initialize the conv, its BN (unless ``deploy``) and the activation."""
        super().__init__(c1, c2, k, s, p, g, d, make_act(act, nn.ReLU))
        if deploy:
            self.conv = _biased_like(self.conv, self.conv.weight, self.conv.weight.new_zeros(c2))
            del self.bn

    @property
    def fused(self) -> bool:
        """Whether the BN has been folded into the conv."""
        return not hasattr(self, "bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, BN (until fused) and activation."""
        return self.act(self.conv(x)) if self.fused else self.act(self.bn(self.conv(x)))

    def get_equivalent_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the kernel and bias of the single biased conv equivalent to conv + BN in eval mode, fused or not."""
        return conv_kernel_bias(self.conv, getattr(self, "bn", None))

    @torch.no_grad()
    def fuse_convs(self) -> None:
        """Fold the BN into the conv in place; a no-op when already fused."""
        if self.fused:
            return
        self.conv = _biased_like(self.conv, *self.get_equivalent_kernel_bias()).requires_grad_(False)
        del self.bn


class RepVGGBlock(RepConv):
    """RepVGG block: k x k conv+BN, 1x1 conv+BN and identity BN summed, then the activation (ReLU by default).

    The identity branch exists when ``c1 == c2`` and ``s == 1``. ``fuse_convs()`` collapses the branches into one
    biased k x k conv (RepVGG, arXiv 2101.03697, section 3.3). The class subclasses Ultralytics' ``RepConv`` so that
    Ultralytics' ``model.fuse()`` and ``is_fused()`` recognise it; construction, ``forward`` and the kernel maths are
    this plugin's own, and what else Ultralytics' fuse expects of the class is installed by the integration layer.

    The whole family (this class and the QARepVGG blocks) shares one structure. Each branch is declared once, in
    ``__init__``, from the class's branch recipe; ``forward`` sums the branches and the one ``fuse_convs`` folds them:

    ============  =========================================  ==========================================
    attribute     ``RepVGGBlock``                            ``QARepVGGBlock`` / ``QARepVGGBlockV2``
    ============  =========================================  ==========================================
    ``conv1``     k x k conv + BN                            k x k conv + BN
    ``conv2``     1x1 conv + BN (``None`` if not branches)   1x1 conv, no BN
    ``identity``  ``True`` when ``c1 == c2`` and ``s == 1``  same
    ``bn``        the identity branch's BN (or ``None``)     ``None``: the identity branch has no BN
    ``avg``       ``None``                                   V2: k x k average pool of the input
    ``post_bn``   ``None``                                   one BN after the sum
    ============  =========================================  ==========================================

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size of the main branch, odd.
        s (int): Stride.
        p (int | None): Padding; only 'same' padding ``d * (k // 2)`` (the default) can be re-parameterized.
        g (int): Groups (depthwise when ``g == c1 == c2``).
        d (int): Dilation of the main branch.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for ReLU.
        deploy (bool): Build the fused form (one biased conv) directly.
        branches (bool): ``False`` trains only the k x k conv+BN (YOLOv6's ``conv_relu``/``conv_silu`` training modes,
            e.g. YOLOv6-L); the fused form is the same single conv.

    Examples:
        >>> block = RepVGGBlock(32, 32).eval()
        >>> x = torch.randn(1, 32, 16, 16)
        >>> y = block(x)
        >>> block.fuse_convs()
        >>> torch.testing.assert_close(block(x), y, rtol=1e-4, atol=1e-5)
    """

    # Branch recipe: what the QARepVGG subclasses change, read only by __init__.
    bn_1x1 = True  # the 1x1 branch has its own BN
    bn_identity = True  # the identity branch has its own BN
    avg_branch = False  # a k x k average-pool branch (when c1 == c2 and s == 1)
    bn_after_sum = False  # one BN after the sum of the branches

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 3,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        act: ActSpec = True,
        deploy: bool = False,
        branches: bool = True,
    ):
        """Initialize the branches of the class's recipe (or the fused conv when ``deploy``)."""
        nn.Module.__init__(self)  # RepConv.__init__ is bypassed on purpose: its defaults differ (SiLU, no identity)
        name = type(self).__name__
        pad = d * (k // 2)
        if k < 1 or k % 2 == 0:
            raise ValueError(f"{name} needs an odd kernel size k, got k={k}")
        if p is not None and p != pad:
            raise ValueError(f"{name} needs 'same' padding p={pad} for k={k}, d={d} to re-parameterize; got p={p}")
        if c1 % g or c2 % g:
            raise ValueError(f"{name} channels c1={c1}, c2={c2} must both be divisible by groups g={g}")
        if not branches and self.bn_after_sum:
            raise ValueError(f"{name} always trains its branches; branches=False is RepVGGBlock's plain-conv mode")
        same = c1 == c2 and s == 1
        if self.avg_branch and same and d != 1:
            raise ValueError(f"{name} needs d=1 for its average-pool branch (c1 == c2, s == 1), got d={d}")
        self.c1, self.c2, self.g = c1, c2, g
        self.act = make_act(act, nn.ReLU)
        if deploy:
            self.conv = nn.Conv2d(c1, c2, k, s, pad, dilation=d, groups=g, bias=True)
            return
        self.conv1 = Conv(c1, c2, k, s, pad, g, d, act=False)
        if not branches:
            self.conv2 = None
        elif self.bn_1x1:
            self.conv2 = Conv(c1, c2, 1, s, 0, g, act=False)
        else:
            self.conv2 = nn.Conv2d(c1, c2, 1, s, 0, groups=g, bias=False)
        self.identity = branches and same
        self.bn = nn.BatchNorm2d(c1) if self.identity and self.bn_identity else None
        self.avg = nn.AvgPool2d(k, s, k // 2) if self.identity and self.avg_branch else None
        self.post_bn = nn.BatchNorm2d(c2) if self.bn_after_sum else None

    @property
    def fused(self) -> bool:
        """Whether the branches have been collapsed into ``self.conv``."""
        return not hasattr(self, "conv1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the branches, apply the post-sum BN if any, and activate (or apply the fused conv)."""
        if self.fused:
            return self.act(self.conv(x))
        y = self.conv1(x)
        if self.conv2 is not None:
            y = y + self.conv2(x)
        if self.identity:
            y = y + (self.bn(x) if self.bn is not None else x)
        if self.avg is not None:
            y = y + self.avg(x)
        if self.post_bn is not None:
            y = self.post_bn(y)
        return self.act(y)

    def get_equivalent_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the kernel and bias of the single conv equivalent to the block in eval mode, fused or not.

        Returns:
            (tuple[torch.Tensor, torch.Tensor]): Kernel of shape (c2, c1 / g, k, k) and bias of shape (c2,).
        """
        if self.fused:
            return conv_kernel_bias(self.conv)
        kernel, bias = _branch_kernel_bias(self.conv1)
        if self.conv2 is not None:
            k1, b1 = _branch_kernel_bias(self.conv2)
            kernel, bias = kernel + pad_to_kernel(k1, kernel.shape[-1]), bias + b1
        if self.identity:
            if self.bn is not None:
                k_id, b_id = fold_bn(identity_kernel(kernel), self.bn)
                kernel, bias = kernel + k_id, bias + b_id
            else:
                kernel = kernel + identity_kernel(kernel)
        if self.avg is not None:
            kernel = kernel + avg_pool_kernel(kernel)
        if self.post_bn is not None:
            kernel, bias = fold_bn(kernel, self.post_bn, bias)
        return kernel, bias

    @torch.no_grad()
    def fuse_convs(self) -> None:
        """Collapse the branches (and the post-sum BN) into one biased conv in place; a no-op when already fused."""
        if self.fused:
            return
        # Like Ultralytics' own fuse results, the fused conv is frozen (inference form).
        self.conv = _biased_like(self.conv1.conv, *self.get_equivalent_kernel_bias()).requires_grad_(False)
        del self.conv1, self.conv2, self.bn, self.avg, self.post_bn

    # Checkpoints written before the shared structure (tests/assets/legacy) had no ``post_bn``: the QARepVGG blocks
    # named their post-sum BN ``bn``, and RepVGGBlock had no ``identity``/``avg`` attributes. Both are mapped here.
    def __setstate__(self, state: dict) -> None:
        """Unpickle, upgrading a unit pickled in the older layout (e.g. inside an Ultralytics ``.pt``)."""
        super().__setstate__(state)
        if self.fused or hasattr(self, "post_bn"):
            return
        if self.bn_after_sum:  # a QARepVGG block: its ``bn`` was the BN after the sum
            post = self.bn
            self.bn = None
            self.post_bn = post
        else:
            self.identity = self.bn is not None
            self.avg = None
            self.post_bn = None

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load, renaming an older QARepVGG state dict's post-sum ``bn.*`` tensors to ``post_bn.*``."""
        if getattr(self, "post_bn", None) is not None and f"{prefix}post_bn.weight" not in state_dict:
            old = f"{prefix}bn."
            for key in [k for k in state_dict if k.startswith(old)]:
                state_dict[f"{prefix}post_bn.{key[len(old) :]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class QARepVGGBlock(RepVGGBlock):
    """Quantization-aware RepVGG block (QARepVGG, arXiv 2212.01593): BN only on the k x k branch, one BN after the sum.

    ``act(post_bn(bn_k(conv_k(x)) + conv_1x1(x) + x))``: the 1x1 branch is a plain bias-free conv and the identity
    branch (when ``c1 == c2`` and ``s == 1``) has no BN, so the fused kernel carries no per-branch BN scaling that
    would blow up its range; the BN after the sum normalizes what INT8 activations must cover. The paper reports
    ImageNet top-1 after INT8 post-training quantization of 52.2% for RepVGG-A0 against 70.4% for its QARepVGG
    counterpart.

    Same structure as ``RepVGGBlock`` (see its table), with another branch recipe; ``fuse_convs()`` folds everything,
    the post-sum BN included, into one biased k x k conv, so ``model.fuse()``, exports and ``deploy`` treat it alike.
    Takes ``RepVGGBlock``'s arguments; ``branches=False`` is refused (the recipe always trains its branches).

    Examples:
        >>> block = QARepVGGBlock(32, 32).eval()
        >>> x = torch.randn(1, 32, 16, 16)
        >>> y = block(x)
        >>> block.fuse_convs()
        >>> torch.testing.assert_close(block(x), y, rtol=1e-4, atol=1e-5)
    """

    bn_1x1 = False
    bn_identity = False
    bn_after_sum = True


class QARepVGGBlockV2(QARepVGGBlock):
    """``QARepVGGBlock`` plus a k x k average-pool branch when ``c1 == c2`` and ``s == 1`` (YOLOv6 ``qarepvggv2``).

    The average pool re-parameterizes into the k x k kernel too (``1 / k**2`` on each channel's own taps), exactly, at
    the borders as well. This is the block YOLOv6 v3 trains its ``-qa`` models with.
    """

    avg_branch = True


class Transpose(nn.Module):
    """Learned 2x upsampling: a biased ConvTranspose2d without BN or activation (YOLOv6 ``Transpose``).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size.
        s (int): Stride (the upsampling factor).
    """

    def __init__(self, c1: int, c2: int, k: int = 2, s: int = 2):
        """Initialize the transposed convolution."""
        super().__init__()
        self.upsample = nn.ConvTranspose2d(c1, c2, k, s, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample ``x``."""
        return self.upsample(x)


class BottleRep(nn.Module):
    """Two rep units with a residual shortcut when ``c1 == c2``: ``conv2(conv1(x)) + alpha * x`` (YOLOv6 BottleRep).

    ``alpha`` is a non-trainable buffer fixed at 1.0. YOLOv6 declares it as a parameter but never hands it to its
    optimizer, so it stays 1.0 in every released model; Ultralytics' optimizer would train it with weight decay
    (pulling it towards 0), so it is kept out of ``parameters()`` on purpose. The buffer still round-trips through
    state dicts, so imported weights with another value are honoured.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        block (Callable[..., nn.Module]): Rep unit class, called as ``block(c_in, c_out, act=..., deploy=...)``.
        alpha (bool): Keep an ``alpha`` buffer scaling the shortcut (YOLOv6 ``weight=True``).
        act (bool | None | str | nn.Module | type): Activation of the units, ``True`` for ReLU.
        deploy (bool): Build the units in fused form.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        block: Callable[..., nn.Module] = RepVGGBlock,
        alpha: bool = False,
        act: ActSpec = True,
        deploy: bool = False,
    ):
        """Initialize the two units and the shortcut."""
        super().__init__()
        act = make_act(act, nn.ReLU)
        self.conv1 = block(c1, c2, act=act, deploy=deploy)
        self.conv2 = block(c2, c2, act=act, deploy=deploy)
        self.shortcut = c1 == c2
        if alpha:
            self.register_buffer("alpha", torch.ones(1))
        else:
            self.alpha = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply both units and add the (scaled) shortcut."""
        y = self.conv2(self.conv1(x))
        return y + self.alpha * x if self.shortcut else y


class RepBlock(nn.Module):
    """A stage of rep units (YOLOv6 ``RepBlock``).

    Plain mode stacks ``n`` units (the first maps c1 -> c2). BottleRep mode stacks ``max(1, n // 2)`` BottleReps with
    an ``alpha`` buffer, as YOLOv6 does inside CSPStackRep. ``block=BottleRep``, as YOLOv6 spells that mode, means
    ``bottle_rep=True`` with ``RepVGGBlock`` units (not ``n`` BottleReps, which would double the depth).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Number of rep units (depth-scaled by Ultralytics).
        bottle_rep (bool): Stack BottleReps instead of single units.
        block (Callable[..., nn.Module]): Unit class, called as ``block(c_in, c_out, act=..., deploy=...)``.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for ReLU.
        deploy (bool): Build the units in fused form.

    Examples:
        >>> RepBlock(64, 128, 4)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 128, 8, 8])
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        bottle_rep: bool = False,
        block: Callable[..., nn.Module] = RepVGGBlock,
        act: ActSpec = True,
        deploy: bool = False,
    ):
        """Initialize the stage."""
        super().__init__()
        if n < 1:
            raise ValueError(f"RepBlock needs n >= 1 units, got n={n}")
        if isinstance(block, type) and issubclass(block, BottleRep):  # YOLOv6's RepBlock(..., block=BottleRep)
            bottle_rep, block = True, RepVGGBlock
        act = make_act(act, nn.ReLU)
        if bottle_rep:
            units = [
                BottleRep(c1 if i == 0 else c2, c2, block, alpha=True, act=act, deploy=deploy)
                for i in range(max(1, n // 2))
            ]
        else:
            units = [block(c1 if i == 0 else c2, c2, act=act, deploy=deploy) for i in range(n)]
        self.m = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the units in sequence."""
        return self.m(x)


class BepC3(nn.Module):
    """CSPStackRep (YOLOv6 ``BepC3``): a CSP split whose main path is a BottleRep ``RepBlock``.

    ``cv3(cat(m(cv1(x)), cv2(x)))`` with hidden width ``int(c2 * e)``; YOLOv6 uses ``e = 2/3`` for M and ``1/2`` for L.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        n (int): Rep units of the inner RepBlock (``max(1, n // 2)`` BottleReps).
        e (float): Hidden-channel ratio, in (0, 1].
        block (Callable[..., nn.Module]): Rep unit class of the inner BottleReps.
        act (bool | None | str | nn.Module | type): Activation of every conv, ``True`` for ReLU.
        deploy (bool): Build in fused form.

    Examples:
        >>> BepC3(64, 96, 4, e=2 / 3)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 96, 8, 8])
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        e: float = 0.5,
        block: Callable[..., nn.Module] = RepVGGBlock,
        act: ActSpec = True,
        deploy: bool = False,
    ):
        """Initialize the split convs, the inner stage and the merge conv."""
        super().__init__()
        c_ = int(c2 * e)
        if not 0 < e <= 1 or c_ < 1:
            raise ValueError(f"BepC3 needs 0 < e <= 1 and int(c2 * e) >= 1, got c2={c2}, e={e}")
        act = make_act(act, nn.ReLU)
        self.cv1 = SimConv(c1, c_, 1, 1, act=act, deploy=deploy)
        self.cv2 = SimConv(c1, c_, 1, 1, act=act, deploy=deploy)
        self.cv3 = SimConv(2 * c_, c2, 1, 1, act=act, deploy=deploy)
        self.m = RepBlock(c_, c_, n, bottle_rep=True, block=block, act=act, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the two CSP paths and merge them."""
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


def _check_pool_kernel(name: str, k: int) -> None:
    """SPPF-style pooling keeps the map size only with an odd kernel (padding k // 2), which its concat needs."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"{name} needs an odd max-pool kernel size k (pooled maps must keep their size), got k={k}")


class SimSPPF(nn.Module):
    """Spatial pyramid pooling, fast (YOLOv6 ``SimSPPF``): SPPF with ReLU convs by default.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Max-pool kernel size.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for ReLU.
        deploy (bool): Build in fused form.
    """

    def __init__(self, c1: int, c2: int, k: int = 5, act: ActSpec = True, deploy: bool = False):
        """Initialize the reduce conv, the pooling and the merge conv."""
        super().__init__()
        _check_pool_kernel(type(self).__name__, k)
        act = make_act(act, nn.ReLU)
        c_ = c1 // 2
        self.cv1 = SimConv(c1, c_, 1, 1, act=act, deploy=deploy)
        self.cv2 = SimConv(4 * c_, c2, 1, 1, act=act, deploy=deploy)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool three times in sequence and merge all four maps."""
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class CSPSPPF(nn.Module):
    """CSP spatial pyramid pooling, fast (YOLOv6 v3 ``CSPSPPF``), SiLU by default.

    Main path ``cv1 -> cv3 (3x3) -> cv4`` then SPPF pooling, ``cv5 -> cv6 (3x3)``; shortcut ``cv2``; ``cv7`` merges
    ``cat(shortcut, main)``. Hidden width ``int(c2 * e)``.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Max-pool kernel size.
        e (float): Hidden-channel ratio.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for the class default.
        deploy (bool): Build in fused form.
    """

    default_act_type: Callable[[], nn.Module] = nn.SiLU

    def __init__(self, c1: int, c2: int, k: int = 5, e: float = 0.5, act: ActSpec = True, deploy: bool = False):
        """Initialize the seven convs and the pooling."""
        super().__init__()
        c_ = int(c2 * e)
        if not 0 < e <= 1 or c_ < 1:
            raise ValueError(f"{type(self).__name__} needs 0 < e <= 1 and int(c2 * e) >= 1, got c2={c2}, e={e}")
        _check_pool_kernel(type(self).__name__, k)
        act = make_act(act, self.default_act_type)
        self.cv1 = SimConv(c1, c_, 1, 1, act=act, deploy=deploy)
        self.cv2 = SimConv(c1, c_, 1, 1, act=act, deploy=deploy)
        self.cv3 = SimConv(c_, c_, 3, 1, act=act, deploy=deploy)
        self.cv4 = SimConv(c_, c_, 1, 1, act=act, deploy=deploy)
        self.m = nn.MaxPool2d(k, 1, k // 2)
        self.cv5 = SimConv(4 * c_, c_, 1, 1, act=act, deploy=deploy)
        self.cv6 = SimConv(c_, c_, 3, 1, act=act, deploy=deploy)
        self.cv7 = SimConv(2 * c_, c2, 1, 1, act=act, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the pooled main path and the shortcut, then merge."""
        y = [self.cv4(self.cv3(self.cv1(x)))]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv7(torch.cat((self.cv2(x), self.cv6(self.cv5(torch.cat(y, 1)))), 1))


class SimCSPSPPF(CSPSPPF):
    """``CSPSPPF`` with ReLU convs by default (YOLOv6 v3 N/S)."""

    default_act_type = nn.ReLU


class BiFusion(nn.Module):
    """Bi-directional concatenation (BiC) of YOLOv6 v3's RepBiFPAN neck.

    Takes three maps ``[higher, current, lower]``: the higher (coarser) level is upsampled by a ``Transpose``, the
    current level goes through a 1x1 conv, the lower (finer) level through a 1x1 conv and a 3x3 stride-2 conv; the
    three are concatenated and merged by a 1x1 conv. Fed in YAML like ``Concat``: ``[[-1, P4, P3], 1, BiFusion, [c2]]``.

    Args:
        c1 (Sequence[int]): Channels of the three inputs ``[higher, current, lower]``.
        c2 (int): Output channels.
        act (bool | None | str | nn.Module | type): Activation, ``True`` for ReLU (YOLOv6 uses ReLU even in L).
        deploy (bool): Build in fused form.
    """

    def __init__(self, c1: Sequence[int], c2: int, act: ActSpec = True, deploy: bool = False):
        """Initialize the three input paths and the merge conv."""
        super().__init__()
        if len(c1) != 3:
            raise ValueError(f"BiFusion takes three inputs [higher, current, lower level], got input channels {c1}")
        act = make_act(act, nn.ReLU)
        c_high, c_cur, c_low = c1
        self.upsample = Transpose(c_high, c2)
        self.cv1 = SimConv(c_cur, c2, 1, 1, act=act, deploy=deploy)
        self.cv2 = SimConv(c_low, c2, 1, 1, act=act, deploy=deploy)
        self.downsample = SimConv(c2, c2, 3, 2, act=act, deploy=deploy)
        self.cv3 = SimConv(3 * c2, c2, 1, 1, act=act, deploy=deploy)

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse ``[higher, current, lower]`` at the current level's resolution."""
        return self.cv3(torch.cat((self.upsample(x[0]), self.cv1(x[1]), self.downsample(self.cv2(x[2]))), 1))


def reparameterize(model: nn.Module) -> nn.Module:
    """Fuse every plugin block inside ``model`` in place (all branches and BNs of RepVGGBlock and SimConv).

    Ultralytics models do not need this (``model.fuse()`` does it and also folds stock layers); it serves plain-PyTorch
    users of the blocks. Safe to call twice.

    Args:
        model (nn.Module): Any module containing plugin blocks.

    Returns:
        (nn.Module): ``model`` itself, fused.
    """
    for m in list(model.modules()):
        if isinstance(m, (RepVGGBlock, SimConv)):
            m.fuse_convs()
    return model
