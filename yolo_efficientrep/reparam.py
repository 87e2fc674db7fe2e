"""Structural re-parameterization maths: fold BatchNorm into convolutions and merge parallel branches.

Implements the kernel/bias algebra of RepVGG (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again",
arXiv 2101.03697, section 3.3). Plain tensor functions, no knowledge of any module class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ("avg_pool_kernel", "bias_batchnorm", "conv_kernel_bias", "fold_bn", "identity_kernel", "pad_to_kernel")


def fold_bn(
    weight: torch.Tensor, bn: nn.BatchNorm2d, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an inference-mode BatchNorm into the preceding convolution.

    Uses the running statistics, so the result equals ``bn(conv(x))`` only in ``.eval()`` (RepVGG eq. 3).

    Args:
        weight (torch.Tensor): Convolution kernel of shape (c2, c1 / groups, k, k).
        bn (nn.BatchNorm2d): The BatchNorm applied to the convolution output.
        bias (torch.Tensor | None): Convolution bias, if the convolution has one.

    Returns:
        (tuple[torch.Tensor, torch.Tensor]): The folded kernel and bias.
    """
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.reshape(-1, 1, 1, 1), shift


def conv_kernel_bias(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``conv`` followed by an optional inference-mode ``bn``; a missing bias counts as zeros."""
    if bn is not None:
        return fold_bn(conv.weight, bn, conv.bias)
    return conv.weight, conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


def pad_to_kernel(kernel: torch.Tensor, k: int) -> torch.Tensor:
    """Zero-pad a square kernel (e.g. 1x1) to k x k, keeping it centred, so both convolutions can be summed."""
    pad = (k - kernel.shape[-1]) // 2
    return F.pad(kernel, [pad] * 4)


def identity_kernel(like: torch.Tensor) -> torch.Tensor:
    """Build the k x k kernel of an identity mapping with the shape, device and dtype of ``like``.

    Output channel i copies input channel i of its group, i.e. index ``i % (c1 / groups)`` of the kernel's input axis,
    which keeps grouped and depthwise blocks exact.

    Args:
        like (torch.Tensor): A kernel of shape (c, c / groups, k, k) to take shape, device and dtype from.

    Returns:
        (torch.Tensor): The identity kernel.
    """
    taps = like.new_zeros(like.shape[-2:])
    taps[like.shape[-2] // 2, like.shape[-1] // 2] = 1.0
    return _own_channel_kernel(like, taps)


def _own_channel_kernel(like: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """A kernel shaped like ``like`` that applies ``taps`` (k x k) from each output channel's own input channel only."""
    kernel = torch.zeros_like(like)
    channels = torch.arange(kernel.shape[0], device=kernel.device)
    kernel[channels, channels % kernel.shape[1]] = taps
    return kernel


def avg_pool_kernel(like: torch.Tensor) -> torch.Tensor:
    """Build the k x k kernel of a per-channel ``AvgPool2d(k, stride, k // 2)`` with the shape of ``like``.

    Like ``identity_kernel`` but with ``1 / k**2`` on every tap of the channel's own input. Exact at the borders too,
    because AvgPool2d's default ``count_include_pad=True`` divides by k**2 just as a zero-padded conv sums k**2 taps.

    Args:
        like (torch.Tensor): A kernel of shape (c, c / groups, k, k) to take shape, device and dtype from.

    Returns:
        (torch.Tensor): The averaging kernel.
    """
    return _own_channel_kernel(like, like.new_full(like.shape[-2:], 1.0 / like.shape[-2:].numel()))


def bias_batchnorm(bias: torch.Tensor, eps: float = 1e-3) -> nn.BatchNorm2d:
    """Build an inference-mode BatchNorm2d that adds ``bias`` and changes nothing else.

    Its running variance is ``1 - eps`` rounded so that ``running_var + eps`` is exactly 1.0 in the tensor's dtype, and
    its mean 0 and weight 1, so folding it into a bias-free convolution (Ultralytics' ``fuse()``) reproduces the kernel
    bit for bit and sets the conv bias to ``bias``. A biased conv can then live in a stock Conv+BN pair.

    Args:
        bias (torch.Tensor): Per-channel bias of shape (c,).
        eps (float): The BatchNorm's epsilon (Ultralytics initializes its BNs with 1e-3).

    Returns:
        (nn.BatchNorm2d): The BatchNorm, in ``.eval()`` mode, on the device and dtype of ``bias``.
    """
    bn = nn.BatchNorm2d(bias.numel(), eps=eps, momentum=0.03, device=bias.device, dtype=bias.dtype).eval()
    var = torch.tensor(1.0 - eps, dtype=bias.dtype, device=bias.device)
    for _ in range(8):  # at most a few ulps away: step towards the value whose sum with eps rounds to exactly 1
        total = (var + eps).item()
        if total == 1.0:
            break
        var = torch.nextafter(var, var.new_tensor(-1.0 if total > 1.0 else 2.0))
    with torch.no_grad():
        bn.running_var.fill_(var.item())
        bn.running_mean.zero_()
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
    return bn
