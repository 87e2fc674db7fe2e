"""Small helpers shared across the package and its tests (plain Python and torch, nothing of Ultralytics)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ("qualname", "randomize_batchnorm", "tensors")


def qualname(obj: Any) -> str:
    """``module.QualName`` of a class or function (how pickles and error messages name it)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def tensors(y: Any, skip: tuple[str, ...] = ()) -> list[torch.Tensor]:
    """Every tensor in a (nested) model output, in order; dict entries whose key is in ``skip`` are left out."""
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        return [t for k, v in y.items() if k not in skip for t in tensors(v, skip)]
    if isinstance(y, (list, tuple)):
        return [t for v in y for t in tensors(v, skip)]
    return []


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random running statistics and affine parameters, then switch to ``.eval()``.

    Re-parameterization is only tested meaningfully this way: with fresh BNs (mean 0, variance 1, weight 1, bias 0)
    a wrong fold can still look exact.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()
