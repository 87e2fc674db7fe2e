"""``yolo-efficientrep quantize``: INT8 exports of a checkpoint, and the FP32-vs-INT8 report (no timing asserted)."""

from __future__ import annotations

import re

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
    graph = onnx.load(int8).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops  # quantized convs...
    # ... and a float decode: no Q/DQ pair around the head's sigmoid, DFL softmax or the output concat.
    producer = {out: n for n in graph.node for out in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    output = graph.output[0].name
    head = max(int(m) for n in graph.node for m in re.findall(r"^/model\.(\d+)/", n.name))
    # the head's own ops (not its branch convs' activations): /model.<head>/<op>, and its DFL
    own = [n for n in graph.node if re.match(rf"^/model\.{head}/([^/]+|dfl/.*)$", n.name)]
    decode = [n for n in own if n.op_type in {"Sigmoid", "Softmax", "Concat"}] + [
        n for n in graph.node if output in n.output
    ]
    assert {"Sigmoid", "Softmax"} <= {n.op_type for n in decode}  # class scores, DFL
    for n in decode:
        assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in n.input), n.name
        assert all(c.op_type != "QuantizeLinear" for o in n.output for c in consumers.get(o, [])), n.name
    # Class scores survive INT8: close to the FP32 export's, not collapsed to zero.
    import numpy as np
    import onnxruntime

    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    fp32_y = onnxruntime.InferenceSession(str(tmp_path / "best.onnx")).run(None, {"images": x})[0]
    int8_y = onnxruntime.InferenceSession(str(int8)).run(None, {"images": x})[0]
    scores, int8_scores = fp32_y[0, 4:], int8_y[0, 4:]
    assert int8_scores.max() > 0.5 * scores.max() > 0
    assert np.abs(int8_scores - scores).mean() < 0.1 * scores.mean() + 0.02
    assert YOLO(int8, task="detect").names == {0: "circle", 1: "rectangle", 2: "triangle"}  # metadata carried over
    assert next((tmp_path / "best_int8_openvino_model").glob("*.xml")).is_file()


def test_quantize_refuses_other_tasks(tmp_path):
    weights = _checkpoint("yolov8-efficientrep-cls", tmp_path / "best.pt")
    result = run([bin_path("yolo-efficientrep"), "quantize", f"model={weights}", "data=shapes.yaml", "imgsz=64"])
    out = result.stdout + result.stderr  # Ultralytics' logger writes to stdout
    assert result.returncode == 1
    assert "yolo-efficientrep quantize: ValueError: quantize measures detection checkpoints" in out
    assert "is a classify model" in out
