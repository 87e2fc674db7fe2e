"""Start from an official YOLOv6 checkpoint: convert it, check it, fine-tune it on your data with stock Ultralytics.

Run: python examples/finetune_yolov6.py yolov6n.pt [data.yaml]
  yolov6n.pt: a YOLOv6 v3.0 release file (https://github.com/meituan/YOLOv6/releases) or your own YOLOv6 training
  checkpoint; data.yaml: an Ultralytics dataset YAML (default: the offline shapes dataset this plugin generates).
"""

import sys
from pathlib import Path

import torch
from ultralytics import YOLO

from yolo_efficientrep import convert_yolov6

weights = Path(sys.argv[1])
data = sys.argv[2] if len(sys.argv) > 2 else "shapes.yaml"

# 1. Convert: read without YOLOv6 (nothing in the file is executed), write an Ultralytics checkpoint of the plugin's
#    yolov6-*.yaml at the checkpoint's scale. The log says what was found: layout, scale, head, nc, form, dtype.
converted = convert_yolov6(weights, out=Path.cwd() / f"{weights.stem}-ultralytics.pt", overwrite=True)

# 2. It is a plain Ultralytics detection model: fused for inference, it computes what YOLOv6 computes.
model = YOLO(converted)
net = model.model.float().eval()
x = torch.rand(1, 3, 256, 256)
with torch.no_grad():
    before = net(x)[0]
    after = net.fuse(verbose=False)(x)[0]
error = ((after - before).abs().max() / before.abs().max()).item()  # boxes are in pixels: compare relatively
print(f"task: {model.task}, classes: {len(model.names)}, fused vs unfused relative difference = {error:.1e}")

# 3. Fine-tune on a dataset with other classes: Ultralytics transfers the backbone, neck and box branch and
#    re-initialises the class predictors (its log says "Transferred N/M items from pretrained weights").
tuned = YOLO(converted)
tuned.train(data=data, epochs=1, imgsz=128, batch=8, device="cpu", workers=0, plots=False)
metrics = tuned.val(data=data, imgsz=128, batch=8, device="cpu", plots=False)
print(f"fine-tuned mAP50-95 after 1 epoch: {metrics.box.map:.4f} (best weights: {tuned.trainer.best})")
