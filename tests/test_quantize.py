"""``yolo-efficientrep quantize``: INT8 exports of a checkpoint, and the FP32-vs-INT8 report (no timing asserted)."""

from __future__ import annotations

import pytest
from conftest import bin_path, run
from test_deploy import _checkpoint

from yolo_efficientrep.data import DATASETS


def test_quantize_writes_int8_models_and_reports_them(tmp_path):
    import onnx
    from ultralytics import YOLO

    weights = _checkpoint("yolov8-efficientrep-qa", tmp_path / "best.pt")
    result = run([bin_path("yolo-efficientrep"), "quantize", f"model={weights}", "data=shapes.yaml", "imgsz=64"])
    out = result.stdout + result.stderr
    if "ModuleNotFoundError" in out and "onnxscript" in out:
        pytest.skip("this Ultralytics exports ONNX through torch's dynamo exporter, which needs onnxscript")
    assert result.returncode == 0, out[-3000:]
    rows = [line.split() for line in out.splitlines() if line.startswith(("FP32 (ONNX", "INT8 ONNX", "INT8 OpenVINO"))]
    assert [r[:2] for r in rows] == [["FP32", "(ONNX"], ["INT8", "ONNX"], ["INT8", "OpenVINO"]]
    assert "per-tensor" in out and f"{DATASETS['shapes']['n_train']} train images of shapes.yaml" in out
    int8 = tmp_path / "best_int8.onnx"
    ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Sigmoid"} <= ops  # quantized convs, float decode
    assert YOLO(int8, task="detect").names == {0: "circle", 1: "rectangle", 2: "triangle"}  # metadata carried over
    assert next((tmp_path / "best_int8_openvino_model").glob("*.xml")).is_file()


def test_quantize_refuses_other_tasks(tmp_path):
    weights = _checkpoint("yolov8-efficientrep-cls", tmp_path / "best.pt")
    result = run([bin_path("yolo-efficientrep"), "quantize", f"model={weights}", "data=shapes.yaml", "imgsz=64"])
    out = result.stdout + result.stderr  # Ultralytics' logger writes to stdout
    assert result.returncode == 1
    assert "yolo-efficientrep quantize: ValueError: quantize measures detection checkpoints" in out
    assert "is a classify model" in out
