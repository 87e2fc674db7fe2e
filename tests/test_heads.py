"""EffiDeHead: YOLOv6 v3's head as an Ultralytics Detect, in every YAML scale, trained, fused, exported, deployed."""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import pytest
import torch
from conftest import export_onnx_or_skip, randomize_bn
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.modules import Conv, Detect
from ultralytics.nn.tasks import DetectionModel, guess_model_task, yaml_model_load

from yolo_efficientrep import ModelConfigError, _compat
from yolo_efficientrep.deployment import DEPLOY_RTOL, max_relative_error, to_stock
from yolo_efficientrep.heads import EffiDeHead
from yolo_efficientrep.zoo import scaled_name


def _cfg(name: str = "yolov6n-efficientrep.yaml", reg_max: int | None = None, nc: int = 80) -> dict:
    cfg = deepcopy(yaml_model_load(name))
    cfg["nc"] = nc
    if reg_max is not None:
        cfg["head"][-1][3] = ["nc", reg_max]
    return cfg


@pytest.mark.parametrize("family", ["yolov6-efficientrep", "yolov6-cspbep"])
@pytest.mark.parametrize("scale", "nsmlx")
def test_builds_at_every_scale(family, scale):
    model = YOLO(scaled_name(family, scale)).model
    head = model.model[-1]
    assert type(head) is EffiDeHead and isinstance(head, Detect)
    assert head.reg_max == (1 if scale in "ns" else 17) and head.nc == 80 and head.no == 80 + 4 * head.reg_max
    # per level: 1x1 stem, then 3x3 conv + 1x1 predictor in each branch, at the width of the level's input
    for stem, box, cls in zip(head.stems, head.cv2, head.cv3):
        assert stem.conv.kernel_size == (1, 1) and stem.conv.in_channels == stem.conv.out_channels
        assert [box[0].conv.kernel_size, cls[0].conv.kernel_size] == [(3, 3), (3, 3)]
        assert box[1].out_channels == 4 * head.reg_max and cls[1].out_channels == 80
        assert all(isinstance(m.act, nn.SiLU) for m in (stem, box[0], cls[0]))
    assert model.stride.tolist() == [8, 16, 32]
    if scale == "n":
        with torch.no_grad():
            y = model.eval()(torch.zeros(2, 3, 64, 64))[0]
        assert y.shape == (2, 84, 8 * 8 + 4 * 4 + 2 * 2)


def test_width_scaling_follows_the_inputs():
    n, s = (YOLO(f"yolov6{k}-efficientrep.yaml").model.model[-1] for k in "ns")
    assert [m.conv.in_channels for m in n.stems] == [32, 64, 128]
    assert [m.conv.in_channels for m in s.stems] == [64, 128, 256]


def test_task_is_detect_from_config_and_model():
    assert guess_model_task(yaml_model_load("yolov6n-efficientrep.yaml")) == "detect"
    assert guess_model_task("yolov6m-cspbep.yaml") == "detect"
    assert YOLO("yolov6n-efficientrep.yaml").task == "detect"


# A learnable toy task: each box is a filled square in one colour channel, so the loss has something to learn. The
# criterion compares 10-step windows: under Ultralytics' task-aligned assigner the loss of any head (stock Detect's as
# well) is not monotone step to step, and on random images with SGD it can even rise (seen on 8.1 with the 17-bin
# head, depending on the thread count); here it falls to 0.38-0.58 (17 bins) and 0.15-0.19 (1 bin) of its first window
# on Ultralytics 8.1 and 8.4, with 1 or 2 threads.
_BOXES = [  # (image, class, box xywh)
    (0, 0, (0.3, 0.3, 0.2, 0.3)),
    (0, 2, (0.7, 0.6, 0.3, 0.2)),
    (1, 1, (0.5, 0.5, 0.5, 0.5)),
    (1, 0, (0.35, 0.65, 0.3, 0.4)),
]


@pytest.mark.parametrize("reg_max", [1, 17])
def test_trains_with_ultralytics_loss_with_and_without_dfl(reg_max):
    torch.manual_seed(0)
    from ultralytics.cfg import get_cfg

    model = DetectionModel(_cfg(reg_max=reg_max, nc=3), nc=3, verbose=False).train()
    model.args = get_cfg()  # the loss gains (box, cls, dfl), as the trainer attaches them
    head = model.model[-1]
    assert head.reg_max == reg_max and (type(head.dfl) is nn.Identity) == (reg_max == 1)
    img = torch.zeros(2, 3, 64, 64)
    for b, c, (x, y, w, h) in _BOXES:
        y0, y1, x0, x1 = (round(v * 64) for v in (y - h / 2, y + h / 2, x - w / 2, x + w / 2))
        img[b, c, y0:y1, x0:x1] = 1
    batch = {
        "img": img,
        "batch_idx": torch.tensor([float(b) for b, _, _ in _BOXES]),
        "cls": torch.tensor([[float(c)] for _, c, _ in _BOXES]),
        "bboxes": torch.tensor([box for _, _, box in _BOXES]),
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    losses = []
    for _ in range(40):
        loss, items = model.loss(batch)
        optimizer.zero_grad()
        loss.sum().backward()
        for name, module in (("stem", head.stems[0].conv), ("box", head.cv2[0][1]), ("cls", head.cv3[0][1])):
            assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0, name
        optimizer.step()
        losses.append(loss.sum().item())
    assert len(items) == 3 and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10]), losses  # the head learns under Ultralytics' loss


def test_fuse_is_exact_and_folds_every_head_bn():
    model = randomize_bn(YOLO("yolov6n-efficientrep.yaml").model, seed=1)
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        after = model(x)[0]
    head = model.model[-1]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in head.modules())
    assert all(not hasattr(m, "bn") for m in head.modules() if isinstance(m, Conv))
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())


def test_onnx_export_has_no_batchnorm_and_matches_pytorch(tmp_path):
    import onnx
    import onnxruntime

    wrapper = YOLO("yolov6n-efficientrep.yaml")
    randomize_bn(wrapper.model, seed=2)
    path = export_onnx_or_skip(wrapper, imgsz=64)
    graph = onnx.load(path).graph
    ops = {n.op_type for n in graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    x = torch.rand(1, 3, 64, 64)
    (y,) = onnxruntime.InferenceSession(path).run(None, {graph.input[0].name: x.numpy()})
    with torch.no_grad():
        want = deepcopy(wrapper.model).float().eval().fuse(verbose=False)(x)[0]
    assert y.shape == (1, 84, 84)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-3, atol=1e-3 * float(want.abs().max()))


@pytest.mark.parametrize("name", ["yolov6n-efficientrep.yaml", "yolov6m-cspbep.yaml"])
def test_deploys_to_a_stock_detect_with_equal_outputs(name):
    model = randomize_bn(YOLO(name).model, seed=3)
    stock = to_stock(model)
    head = stock.model[-1]
    assert type(head) is Detect and head.reg_max == model.model[-1].reg_max
    assert not any(type(m).__module__.startswith("yolo_efficientrep") for m in stock.modules())
    for box, cls in zip(head.cv2, head.cv3):  # each branch starts with its own copy of the level's stem
        assert box[0].conv.kernel_size == cls[0].conv.kernel_size == (1, 1) and box[0] is not cls[0]
    assert max_relative_error(model, stock) <= DEPLOY_RTOL
    assert max_relative_error(model, deepcopy(stock).fuse(verbose=False)) <= DEPLOY_RTOL


def test_yaml_arguments_are_checked(tmp_path):
    cfg = _cfg()
    cfg["head"][-1][3] = ["nc", 0]
    with pytest.raises(ModelConfigError, match=r"layer 22 \(EffiDeHead.*reg_max >= 1"):
        DetectionModel(cfg, verbose=False)
    cfg["head"][-1] = [21, 1, "EffiDeHead", ["nc"]]
    with pytest.raises(ModelConfigError, match=r"layer 22 \(EffiDeHead.*'from' must be a list of input layers"):
        DetectionModel(cfg, verbose=False)


def test_compat_init_detect_contract():
    """The one Ultralytics internal the head relies on: Detect's constructor, whichever signature it has."""

    class Probe(Detect):
        def __init__(self, reg_max):
            _compat.init_detect(self, 5, reg_max, (16, 32))

    for reg_max in (1, 16, 17):
        probe = Probe(reg_max)
        assert (probe.nc, probe.nl, probe.reg_max, probe.no) == (5, 2, reg_max, 5 + 4 * reg_max)
        assert isinstance(probe.dfl, nn.Identity) == (reg_max == 1)
        assert probe.stride.shape == (2,)
    stock = _compat.stock_detect(5, 17, (16, 32))
    assert type(stock) is Detect and stock.reg_max == 17 and stock.dfl.conv.in_channels == 17
