"""Contract tests of the integration layer's helpers for Ultralytics internals, against the installed Ultralytics.

Each test is named after the helper it checks, so that an Ultralytics release that changes the internal fails one test
that says which helper to adapt.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from yolo_efficientrep._utils import randomize_batchnorm
from yolo_efficientrep.blocks import QARepVGGBlock, QARepVGGBlockV2, RepVGGBlock, SimConv
from yolo_efficientrep.integration import onnx_head_decode_nodes


def _tiny_basemodel(*units: nn.Module):
    from ultralytics.nn.tasks import BaseModel

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(*units)

    return Tiny()


def _units() -> list[nn.Module]:
    # 2 x (3 + 2 + 2 + 1) + 3 = 19 BatchNorms: Ultralytics' is_fused() takes fewer than 10 as already fused
    same = [cls(8, 8) for cls in (RepVGGBlock, QARepVGGBlock, QARepVGGBlockV2, SimConv) for _ in range(2)]
    return [*same, RepVGGBlock(8, 16, 3, 2), QARepVGGBlockV2(16, 16, 3, 2), SimConv(16, 8, 1)]


@pytest.mark.parametrize("stock_forward_fuse", ["stock", "changed"])
def test_install_fuse_contract_with_basemodel_fuse(monkeypatch, stock_forward_fuse):
    """integration.install_fuse_contract: Ultralytics' real BaseModel.fuse() fuses every plugin unit exactly and leaves
    it running its own forward, even when the stock classes' forward_fuse changes (as a next release may do)."""
    from ultralytics.nn.modules import Conv, RepConv

    if stock_forward_fuse == "changed":

        def changed(self, x):
            raise AssertionError("a plugin unit ran the stock forward_fuse")

        monkeypatch.setattr(RepConv, "forward_fuse", changed)
        monkeypatch.setattr(Conv, "forward_fuse", changed)
    units = _units()
    model = randomize_batchnorm(_tiny_basemodel(*units), seed=1)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        before = model.model(x)
        model.fuse(verbose=False)
        after = model.model(x)
    assert model.is_fused() and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for unit in units:
        assert unit.fused, type(unit).__name__
        swapped = unit.__dict__.get("forward")  # what BaseModel.fuse() assigned
        assert swapped is not None and swapped.__func__ is type(unit).forward, type(unit).__name__
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_onnx_head_decode_nodes_on_an_ultralytics_export():
    """integration.onnx_head_decode_nodes: on Ultralytics' own ONNX export, the names it returns are exactly the
    detection head's decode (DFL softmax, sigmoid, box maths, the output concat), none of the head's branch convs."""
    onnx = pytest.importorskip("onnx")
    from ultralytics import YOLO

    try:
        path = YOLO("yolov8n-efficientrep.yaml").export(format="onnx", imgsz=64, simplify=True, dynamic=False)
    except ModuleNotFoundError as e:  # as in test_quantize: torch's dynamo exporter path needs onnxscript
        pytest.skip(f"this Ultralytics cannot export ONNX here: {e}")
    graph = onnx.load(path).graph
    names = onnx_head_decode_nodes(onnx.load(path))
    nodes = {n.name: n for n in graph.node}
    assert names and set(names) <= set(nodes)
    head = max(int(m) for n in nodes for m in re.findall(r"^/model\.(\d+)/", n))
    ops = {nodes[n].op_type for n in names}
    assert {"Sigmoid", "Softmax", "Concat"} <= ops  # class scores, the DFL, the output
    producer = {o: n.name for n in graph.node for o in n.output}
    assert producer[graph.output[0].name] in names  # the node writing the decoded output
    head_nodes = [n for n in nodes if n.startswith(f"/model.{head}/")]
    branch = [n for n in head_nodes if re.match(rf"^/model\.{head}/cv\d", n)]
    assert branch and not set(branch) & set(names)  # the branch convs are quantized, not excluded
    assert all(n.startswith(f"/model.{head}/") for n in names)
    assert sorted(set(head_nodes) - set(branch)) == sorted(names)  # nothing of the head's own ops is missed
