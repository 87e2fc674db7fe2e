"""Bad input fails clearly and early, saying what and where (tracker issue 13); nothing is lost or half-written."""

from __future__ import annotations

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

import yolo_efficientrep as yer
from yolo_efficientrep.deployment import deploy


# ---------------------------------------------------------------------------------------------------------------------
# Training from weights that would not transfer


def _train(weights, tmp_path):
    return YOLO(weights).train(
        data="shapes.yaml", epochs=1, imgsz=32, batch=4, device="cpu", workers=0, project=str(tmp_path), name="t",
        plots=False, val=False,
    )  # fmt: skip


def test_training_a_fused_checkpoint_is_refused(tmp_path):
    model = YOLO("yolov8n-efficientrep.yaml")
    model.save(tmp_path / "unfused.pt")
    model.fuse()
    model.save(tmp_path / "fused.pt")
    with pytest.raises(yer.NotTrainableError, match=r"the model is fused: .*\(\d+ of them, e\.g\. model\.0\).*last\.pt"):
        _train(tmp_path / "fused.pt", tmp_path)
    assert not list(tmp_path.rglob("last.pt"))  # refused before anything was trained or written
    target = DetectionModel("yolov8n-efficientrep.yaml", verbose=False)
    target.load(YOLO(tmp_path / "unfused.pt").model)  # the unfused checkpoint transfers every tensor
    reference = YOLO(tmp_path / "unfused.pt").model.float().state_dict()
    torch.testing.assert_close(target.state_dict()["model.0.conv1.conv.weight"], reference["model.0.conv1.conv.weight"])


def test_training_a_deploy_checkpoint_is_refused(tmp_path):
    YOLO("yolov8n-efficientrep.yaml").save(tmp_path / "best.pt")
    out = deploy(tmp_path / "best.pt", verbose=False)
    with pytest.raises(yer.NotTrainableError, match=r"deploy checkpoint: .*for predict, val and export; train from"):
        _train(out, tmp_path)
    with pytest.raises(yer.NotTrainableError, match="deploy checkpoint"):
        YOLO("yolov8n-efficientrep.yaml").load(str(out))
