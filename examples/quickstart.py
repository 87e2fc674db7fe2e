"""yolo-efficientrep quick start in Python: build, inspect, train briefly offline, fuse, compare, export.

Run: python examples/quickstart.py  (CPU is fine; the shapes dataset is generated offline on first use)
"""

import torch
from ultralytics import YOLO

# 1. Build from the plugin's YAML by bare name; no plugin import is needed (the start-up hook registered it).
model = YOLO("yolov8n-efficientrep.yaml")
model.info()  # training form: every RepVGGBlock has 3x3, 1x1 and identity branches

# 2. Train one epoch on the offline shapes dataset (512 images; the README's command 1 trains 13 for a useful model).
model.train(data="shapes.yaml", epochs=1, imgsz=160, batch=16, device="cpu", plots=False)

# 3. Fuse and check that the outputs do not change.
net = model.model.eval()
x = torch.rand(1, 3, 160, 160)
with torch.no_grad():
    before = net(x)[0]
    net.fuse()  # every RepVGGBlock -> one 3x3 conv, every BatchNorm folded
    after = net(x)[0]
print(f"max |fused - unfused| = {(after - before).abs().max():.2e}")
print(f"BatchNorm2d left: {sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())}")

# 4. Export: Ultralytics fuses before exporting, so the graph carries no rep branches.
print("exported:", model.export(format="torchscript", imgsz=160))
