"""Write the legacy rep-unit checkpoints that ``tests/test_legacy_checkpoints.py`` loads.

Run once, with the code of the commit recorded in the files (before the QARepVGG structure change), from the repository
root: ``python tests/assets/legacy/make_legacy.py``. It must not be re-run with later code: these files are what older
releases of the plugin wrote, and the test checks that they still load and compute the same outputs.

Written here:

- ``rep_units.pt``: for small ``RepVGGBlock`` / ``QARepVGGBlock`` / ``QARepVGGBlockV2`` units (random BN statistics),
  the trained-form and fused-form state dicts, the pickled modules of both forms, a fixed input and both outputs.
- ``yolov8n-efficientrep-qa.pt`` / ``yolov8n-efficientrep-qa-fused.pt``: Ultralytics-style checkpoints written by
  ``YOLO.save`` of the model in trained form (random BN statistics) and after ``model.fuse()``.
- ``yolov8n-efficientrep-qa.io.pt``: the fixed input and both models' outputs.
"""

from __future__ import annotations

import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import torch

import yolo_efficientrep  # noqa: F401  (registers the plugin)
from yolo_efficientrep._utils import randomize_batchnorm, tensors
from yolo_efficientrep.blocks import QARepVGGBlock, QARepVGGBlockV2, RepVGGBlock

HERE = Path(__file__).resolve().parent
UNITS = {
    "RepVGGBlock-same": (RepVGGBlock, (8, 8)),
    "RepVGGBlock-down": (RepVGGBlock, (8, 16, 3, 2)),
    "QARepVGGBlock-same": (QARepVGGBlock, (8, 8)),
    "QARepVGGBlock-down": (QARepVGGBlock, (8, 16, 3, 2)),
    "QARepVGGBlockV2-same": (QARepVGGBlockV2, (8, 8)),
    "QARepVGGBlockV2-down": (QARepVGGBlockV2, (8, 16, 3, 2)),
}
IMGSZ = 64


def main() -> None:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    units = {}
    for i, (name, (cls, args)) in enumerate(UNITS.items()):
        torch.manual_seed(i)
        unit = randomize_batchnorm(cls(*args), seed=i)
        trained = unit(x)
        train_state = deepcopy(unit.state_dict())
        train_module = deepcopy(unit)
        unit.fuse_convs()
        units[name] = {
            "cls": cls.__name__,
            "args": args,
            "train_state": train_state,
            "fused_state": deepcopy(unit.state_dict()),
            "train_module": train_module,
            "fused_module": deepcopy(unit),
            "train_out": trained.detach(),
            "fused_out": unit(x).detach(),
        }
    torch.save({"commit": commit, "input": x, "units": units}, HERE / "rep_units.pt")

    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n-efficientrep-qa.yaml")
    randomize_batchnorm(model.model, seed=0)
    model.save(HERE / "yolov8n-efficientrep-qa.pt")  # fp16, as Ultralytics stores models
    trained = YOLO(HERE / "yolov8n-efficientrep-qa.pt").model.float().eval()
    image = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        train_out = tensors(trained(image), skip=("feats",))[0]
        fused = YOLO(HERE / "yolov8n-efficientrep-qa.pt")
        fused.model.float().eval().fuse(verbose=False)
        fused.save(HERE / "yolov8n-efficientrep-qa-fused.pt")
        fused_out = tensors(YOLO(HERE / "yolov8n-efficientrep-qa-fused.pt").model.float().eval()(image), ("feats",))[0]
    torch.save(
        {"commit": commit, "imgsz": IMGSZ, "input": image, "train_out": train_out, "fused_out": fused_out},
        HERE / "yolov8n-efficientrep-qa.io.pt",
    )
    print(commit, {p.name: p.stat().st_size for p in HERE.glob("*.pt")})


if __name__ == "__main__":
    sys.exit(main())
