"""YOLOv6 v3's efficient decoupled head (EffiDeHead) as an Ultralytics detection head.

Re-implemented from the efficient decoupled head described in the YOLOv6 reports (v1/v2 arXiv 2209.02976, v3 arXiv
2301.05586) and the checkpoint layout documented in the test fixtures; no code copied.

Per level of ``c`` channels: a 1x1 Conv-BN-SiLU stem feeds a classification branch (3x3 Conv-BN-SiLU, 1x1 conv to
``nc``) and a box branch (3x3 Conv-BN-SiLU, 1x1 conv to ``4 * reg_max``). Everything after the stems is Ultralytics'
own ``Detect``: the head *is* a ``Detect`` (subclass), whose ``cv2``/``cv3`` are the box/class branches, so training
(Ultralytics' task-aligned loss, with or without DFL), inference decoding, NMS, tracking, export and ``model.fuse()``
work unchanged in every supported Ultralytics release.

``reg_max`` follows Ultralytics' convention, the number of DFL bins: ``reg_max=1`` predicts the 4 box distances
directly (YOLOv6-N/S), ``reg_max=17`` predicts 17 bins 0..16 per side (YOLOv6-M/L, which YOLOv6 itself writes as
``reg_max=16``: its bins run 0..reg_max).
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv, Detect

from ._compat import init_detect

__all__ = ("EffiDeHead",)


class EffiDeHead(Detect):
    """YOLOv6 v3 EffiDeHead: shared 1x1 stem, then decoupled 3x3 class and box branches, per level.

    Inference output is Ultralytics' detection contract, ``(B, 4 + nc, anchors)`` with xywh pixel boxes and sigmoid
    class scores. Written in YAML like ``Detect``: ``[[P3, P4, P5], 1, EffiDeHead, [nc, reg_max]]``; its widths are
    those of its inputs, so it width-scales with the rest of the model.

    Args:
        nc (int): Number of classes.
        reg_max (int): DFL bins per box side (Ultralytics' convention): 1 for plain distances, 17 for YOLOv6-M/L.
        ch (tuple[int, ...]): Input channels per level (injected by the parser).

    Examples:
        >>> head = EffiDeHead(80, 1, ch=(32, 64, 128))
        >>> [len(b) for b in (head.stems, head.cv2, head.cv3)]
        [3, 3, 3]
    """

    def __init__(self, nc: int = 80, reg_max: int = 1, ch: tuple[int, ...] = ()):
        """Initialize the stems and the decoupled branches."""
        if not isinstance(reg_max, int) or isinstance(reg_max, bool) or reg_max < 1:
            raise ValueError(f"EffiDeHead needs reg_max >= 1 DFL bins (1: plain distances), got reg_max={reg_max!r}")
        init_detect(self, nc, reg_max, ch)
        # YOLOv6 uses SiLU in its head whatever the rest of the model uses, so the activation is explicit.
        self.stems = nn.ModuleList(Conv(c, c, 1, 1, act=nn.SiLU()) for c in ch)
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(c, c, 3, 1, act=nn.SiLU()), nn.Conv2d(c, 4 * reg_max, 1)) for c in ch
        )
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c, 3, 1, act=nn.SiLU()), nn.Conv2d(c, nc, 1)) for c in ch)

    def forward(self, x: list[torch.Tensor]):
        """Apply each level's stem, then Ultralytics' ``Detect`` (branches, decoding) on the stem outputs."""
        return super().forward([stem(xi) for stem, xi in zip(self.stems, x)])
