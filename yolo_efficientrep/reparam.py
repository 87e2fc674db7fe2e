"""Structural re-parameterization maths: fold BatchNorm into convolutions and merge parallel branches.

Implements the kernel/bias algebra of RepVGG (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again",
arXiv 2101.03697, section 3.3). Plain tensor functions, no knowledge of any module class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ("fold_bn", "identity_kernel", "pad_to_kernel")


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
    kernel = torch.zeros_like(like)
    c2, c1_per_group, k, _ = kernel.shape
    channels = torch.arange(c2, device=kernel.device)
    kernel[channels, channels % c1_per_group, k // 2, k // 2] = 1.0
    return kernel
