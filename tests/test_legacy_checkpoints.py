"""Checkpoints written before the rep units' shared branch structure still load, strictly, and compute the same.

The files in ``tests/assets/legacy`` were written by ``make_legacy.py`` with the code of the commit they record, when
the QARepVGG blocks called their post-sum BN ``bn`` and ``RepVGGBlock`` had no ``identity``/``avg``/``post_bn``
attributes. They hold state dicts and pickled modules of small units in both forms, and Ultralytics-style checkpoints
(``YOLO.save``) of ``yolov8n-efficientrep-qa.yaml`` in trained and fused form, each with its outputs on a fixed input.
"""

from __future__ import annotations

import functools

import pytest
import torch
from conftest import ASSETS
from torch import nn

from yolo_efficientrep import blocks
from yolo_efficientrep._utils import tensors

LEGACY = ASSETS / "legacy"
UNITS = [
    "RepVGGBlock-same",
    "RepVGGBlock-down",
    "QARepVGGBlock-same",
    "QARepVGGBlock-down",
    "QARepVGGBlockV2-same",
    "QARepVGGBlockV2-down",
]


@functools.lru_cache
def _saved() -> dict:
    return torch.load(LEGACY / "rep_units.pt", weights_only=False)  # unpickles the old modules with today's classes


def _exact(a: torch.Tensor, b: torch.Tensor) -> None:
    # Same weights and input, but not necessarily the same CPU kernels as the machine that saved the outputs: bitwise
    # equality held there and failed on another 2-core machine by 1 ulp-scale differences (1.3e-6 absolute).
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())


def test_the_assets_cover_every_unit_and_the_old_layout():
    saved = _saved()
    assert sorted(saved["units"]) == sorted(UNITS)
    for name in UNITS:
        keys = set(saved["units"][name]["train_state"])
        if name.startswith("QARepVGG"):  # the old name of the post-sum BN, which this file exists to keep loading
            assert "bn.running_var" in keys and not any(k.startswith("post_bn.") for k in keys)


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested"])
@pytest.mark.parametrize("form", ["train", "fused"])
@pytest.mark.parametrize("name", UNITS)
def test_old_state_dicts_load_strictly_and_reproduce_their_outputs(name, form, nested):
    saved = _saved()
    unit_data = saved["units"][name]
    unit = getattr(blocks, unit_data["cls"])(*unit_data["args"], deploy=form == "fused")
    state = unit_data[f"{form}_state"]
    model = nn.Sequential(nn.Identity(), unit) if nested else unit  # nested: keys carry a "1." prefix
    if nested:
        state = {f"1.{k}": v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    if form == "train" and name.startswith("QARepVGG"):  # the old "bn" tensors went to the post-sum BN
        assert unit.bn is None and torch.equal(unit.post_bn.running_var, unit_data["train_state"]["bn.running_var"])
    model.eval()
    with torch.no_grad():
        _exact(model(saved["input"]), unit_data[f"{form}_out"])
        if form == "train":  # and the loaded trained form still fuses to the old fused output
            unit.fuse_convs()
            torch.testing.assert_close(unit(saved["input"]), unit_data["fused_out"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", UNITS)
def test_old_pickled_units_are_upgraded_to_the_new_layout(name):
    saved = _saved()
    unit_data = saved["units"][name]
    old = unit_data["train_module"].eval()
    fresh = getattr(blocks, unit_data["cls"])(*unit_data["args"])
    assert list(old.state_dict()) == list(fresh.state_dict())  # the new keys, so Ultralytics' transfer moves them all
    for attr in ("identity", "bn", "avg", "post_bn"):
        assert type(getattr(old, attr)) is type(getattr(fresh, attr)), attr
    assert old.identity == fresh.identity
    with torch.no_grad():
        _exact(old(saved["input"]), unit_data["train_out"])
        old.fuse_convs()
        torch.testing.assert_close(old(saved["input"]), unit_data["fused_out"], rtol=1e-5, atol=1e-5)
        _exact(unit_data["fused_module"].eval()(saved["input"]), unit_data["fused_out"])


def test_old_ultralytics_checkpoints_load_fuse_and_transfer():
    """The Ultralytics path: YOLO() on the old .pt files, training's weight transfer, and model.fuse()."""
    import ultralytics
    from ultralytics import YOLO

    io = torch.load(LEGACY / "yolov8n-efficientrep-qa.io.pt", weights_only=False)
    written_by = torch.load(LEGACY / "yolov8n-efficientrep-qa.pt", weights_only=False)["version"]

    old = YOLO(LEGACY / "yolov8n-efficientrep-qa.pt").model.float().eval()
    fresh = YOLO("yolov8n-efficientrep-qa.yaml").model
    assert {k: v.shape for k, v in old.state_dict().items()} == {k: v.shape for k, v in fresh.state_dict().items()}
    qa = [m for m in old.modules() if isinstance(m, blocks.QARepVGGBlock)]
    assert len(qa) == sum(isinstance(m, blocks.QARepVGGBlock) for m in fresh.modules()) == 17
    assert all(m.bn is None and isinstance(m.post_bn, nn.BatchNorm2d) for m in qa)
    with torch.no_grad():
        _exact(tensors(old(io["input"]), skip=("feats",))[0], io["train_out"])
        fresh.load(old, verbose=False)  # what `yolo train model=old.pt` does: every tensor must transfer
        for key, value in old.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], value), key
        old.fuse(verbose=False)
        assert all(m.fused for m in qa)
        old.half().float()  # as YOLO.save stored the old fused model: fp16
        # Within float rounding on the release that wrote the files (another CPU: 1.5e-5 on 479); another
        # release's fuse may round differently (on 8.1:
        # 9e-5 on coordinates up to 479).
        tol = {"rtol": 1e-6, "atol": 1e-4} if ultralytics.__version__ == written_by else {"rtol": 1e-5, "atol": 1e-3}
        torch.testing.assert_close(tensors(old(io["input"]), skip=("feats",))[0], io["fused_out"], **tol)
        fused = YOLO(LEGACY / "yolov8n-efficientrep-qa-fused.pt").model.float().eval()
        _exact(tensors(fused(io["input"]), skip=("feats",))[0], io["fused_out"])
