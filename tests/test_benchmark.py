"""The benchmark's quick mode runs end to end and its report carries every field (no timing targets asserted here)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import bin_path, randomize_bn, run
from torch import nn

from yolo_efficientrep.benchmark import single_path_equivalent

STATS = {"median_ms", "min_ms", "max_ms", "iqr_ms"}


def test_quick_benchmark_report_has_every_field(tmp_path):
    models = "yolov8n.yaml,yolov8n-efficientrep.yaml"
    result = run(
        [bin_path("yolo-efficientrep"), "benchmark", "quick=True", f"out={tmp_path}", f"models={models}"],
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= {"machine", "settings", "models", "accuracy", "startup", "targets"}
    assert report["machine"]["torch_threads"] >= 1 and report["settings"]["quick"] is True
    stock, plugin = report["models"]
    for entry in (stock, plugin):
        assert {
            "params",
            "gflops",
            "fused_params",
            "fused_gflops",
            "fused_speedup_torch_b1",
            "gflops_per_s_onnxruntime_b1",
            "train_b8",
        } <= set(entry)
        for key in (
            "torch_unfused_b1",
            "torch_fused_b1",
            "onnxruntime_fused_b1",
            "onnxruntime_fused_b8",
            "torch_unfused_b8",
            "torch_fused_b8",
        ):
            assert set(entry[key]) == STATS and entry[key]["median_ms"] > 0
        assert entry["train_b8"]["step_ms"] > 0 and entry["train_b8"]["activation_mib"] > 0
    assert "torch_single_path_b1" in plugin and "fused_vs_single_path_torch_b1" in plugin
    assert plugin["fused_params"] < plugin["params"]
    accuracy = report["accuracy"]
    trained = ("yolov8n.yaml", "yolov8n-efficientrep.yaml", "yolov8n-efficientrep-qa.yaml")
    assert set(accuracy) == {"recipe", *trained, "ratio", "int8"}
    assert all(0 <= accuracy[m]["map50_95"] <= 1 for m in trained)
    assert set(accuracy["int8"]) == set(trained)
    int8_ran = _check_int8(accuracy["int8"])
    assert set(report["startup"]) == {"with_plugin", "without_plugin", "difference_ms"}
    assert len(report["targets"]) == 4 + 2 * int8_ran  # + the QA-vs-RepVGG INT8 drop ratio, per format
    assert (tmp_path / "report.md").read_text().count("| `yolov8n") == 2 + (
        6 if int8_ran else 0
    )  # + 3 models x 2 INT8 formats
    assert (tmp_path / "latency_vs_gflops.png").stat().st_size > 1000
    assert (tmp_path / "fused_speedup.png").stat().st_size > 1000


def _check_int8(int8: dict) -> bool:
    """Every INT8 entry is complete; False only where Ultralytics cannot export ONNX here at all (stock 8.1 + torch)."""
    import ultralytics

    errors = {r.get("error") for r in int8.values()}
    if errors != {None}:
        assert ultralytics.__version__.startswith(("8.1.", "8.2.")), errors
        assert all(e.startswith("ModuleNotFoundError") and "onnxscript" in e for e in errors), errors
        return False
    for r in int8.values():
        assert 0 <= r["fp32"]["map50_95"] <= 1 and r["fp32"]["latency_ms"] > 0
        for fmt in ("onnx", "openvino"):
            q = r[fmt]
            assert set(q) == {"map50_95", "file", "drop", "drift_boxes", "drift_scores", "latency_ms", "speedup"}, q
            assert 0 <= q["map50_95"] <= 1 and q["drop"] == pytest.approx(r["fp32"]["map50_95"] - q["map50_95"])
            assert q["drift_scores"] > 0 and q["drift_boxes"] > 0 and q["latency_ms"] > 0  # quantization moves outputs
    return True


def test_single_path_equivalent_is_stock_and_identical():
    from ultralytics import YOLO
    from ultralytics.nn.modules import Conv

    import yolo_efficientrep as yer

    fused = randomize_bn(YOLO("yolov8n-efficientrep.yaml").model).fuse(verbose=False)
    plain = single_path_equivalent(fused)
    assert not any(isinstance(m, (yer.RepVGGBlock, yer.SimConv)) for m in plain.modules())
    assert sum(type(m) is Conv for m in plain.modules()) > sum(type(m) is Conv for m in fused.modules())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x)[0], fused(x)[0], rtol=0, atol=0)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in fused.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


@pytest.mark.parametrize("arg", ["quick=maybe", "speed=1"])
def test_benchmark_bad_arguments(arg):
    result = run([bin_path("yolo-efficientrep"), "benchmark", arg])
    assert result.returncode != 0 and ("expected True or False" in result.stderr or "invalid argument" in result.stderr)
