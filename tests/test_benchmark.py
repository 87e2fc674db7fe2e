"""The benchmark's quick mode runs end to end and its report carries every field (no timing targets asserted here)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import bin_path, randomize_bn, run
from torch import nn

from yolo_efficientrep.benchmark import single_path_equivalent

STATS = {"median_ms", "min_ms", "max_ms", "iqr_ms"}


@pytest.mark.slow
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
        profile = entry["profile_onnxruntime_b1"]
        assert profile["3x3"]["nodes"] > 0 and profile["1x1"]["nodes"] > 0
        node_ms = sum(profile[k]["ms"] for k in ("3x3", "1x1", "other"))
        node_ms += profile["activation_ms"] + profile["layout_ms"] + profile["rest_ms"]
        assert profile["total_ms"] == pytest.approx(node_ms) and 0 < profile["conv_share"] <= 1
        # the conv nodes carry (nearly) all of Ultralytics' GFLOPs of the fused model (the rest: upsampling, pooling)
        conv_gflops = sum(profile[k]["gflops"] for k in ("3x3", "1x1", "other"))
        assert conv_gflops == pytest.approx(entry["fused_gflops"], rel=0.03)  # both at the benchmark's 256 px
    versus = plugin["versus_counterpart"]
    assert versus["model"] == "yolov8n.yaml" and "versus_counterpart" not in stock
    assert versus["train_b8"]["step_ms"] == pytest.approx(plugin["train_b8"]["step_ms"] / stock["train_b8"]["step_ms"])
    assert plugin["fused_params"] < plugin["params"]
    accuracy = report["accuracy"]
    trained = ("yolov8n.yaml", "yolov8n-efficientrep.yaml", "yolov8n-efficientrep-qa.yaml")
    assert set(accuracy) == {"recipe", *trained, "ratio", "int8"}
    assert all(0 <= accuracy[m]["map50_95"] <= 1 for m in trained)
    assert set(accuracy["int8"]) == set(trained)
    int8_ran = _check_int8(accuracy["int8"])
    assert set(report["startup"]) == {"with_plugin", "without_plugin", "difference_ms"}
    assert len(report["targets"]) == 4 + 2 * int8_ran  # + the QA-vs-RepVGG INT8 drop ratio, per format
    markdown = (tmp_path / "report.md").read_text()
    # 2 model rows, 1 training-cost row, 2 compute-density rows, + 3 models x 2 INT8 formats
    rows = [line for line in markdown.splitlines() if line.startswith("| `yolov8n")]
    assert len(rows) == 5 + (6 if int8_ran else 0), markdown
    assert "nan" not in markdown
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


def test_onnxruntime_profile_groups_nodes_and_counts_flops(tmp_path):
    from yolo_efficientrep.benchmark import onnxruntime_profile

    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1),  # 3x3 stride 2: 64 -> 32
        nn.ReLU(),  # fused into the conv by ONNX Runtime
        nn.Conv2d(32, 32, 1),
        nn.SiLU(),  # a separate activation node
        nn.Conv2d(32, 32, 3, 1, 1, groups=2),
        nn.Conv2d(32, 16, 5, 1, 2),
        nn.MaxPool2d(2),
    ).eval()
    d = onnxruntime_profile(model, 64, tmp_path, runs=2)
    assert (d["3x3"]["nodes"], d["1x1"]["nodes"], d["other"]["nodes"]) == (2, 1, 1)
    hw = 32 * 32
    expected = {
        "3x3": 2 * hw * 32 * 3 * 9 + 2 * hw * 32 * 16 * 9,
        "1x1": 2 * hw * 32 * 32,
        "other": 2 * hw * 16 * 32 * 25,
    }
    for kind, flops in expected.items():
        assert d[kind]["gflops"] == pytest.approx(flops / 1e9, rel=1e-12)
        assert d[kind]["ms"] > 0 and d[kind]["gflops_per_s"] == pytest.approx(d[kind]["gflops"] / d[kind]["ms"] * 1e3)
    assert d["activation_ms"] > 0 and d["rest_ms"] > 0  # the SiLU; the max pool
    conv_ms = sum(d[k]["ms"] for k in expected)
    assert d["conv_share"] == pytest.approx(conv_ms / d["total_ms"])


def test_device_timing_and_engine_runner_on_cpu(tmp_path):
    """The code path the CUDA section runs (any device, dtype and Ultralytics export format), exercised on the CPU."""
    from ultralytics import YOLO

    from yolo_efficientrep.benchmark import _engine_runner, _time_forms, _train_step

    wrapper = YOLO("yolov8n-efficientrep.yaml")
    fused = copy.deepcopy(wrapper.model).fuse(verbose=False)
    entry = {
        "model": "m",
        "_unfused": wrapper.model.eval(),
        "_fused": fused,
        "_single_path": single_path_equivalent(fused),
    }
    calls = []

    def extra(e, batch):
        return {"engine_x": lambda: calls.append(batch)}

    _time_forms([entry], torch.device("cpu"), torch.float64, 64, {1: 2, 8: 1}, 1, "cpu_fp64", extra)
    for key in ("cpu_fp64_unfused_b1", "cpu_fp64_fused_b1", "cpu_fp64_unfused_b8", "engine_x_b1", "engine_x_b8"):
        assert set(entry[key]) == STATS
    assert calls == [1, 1, 1, 8, 8]  # warm-up, then one call per round
    assert next(entry["_fused"].parameters()).dtype == torch.float32  # timed on a copy: the entry is untouched

    # TorchScript stands in for TensorRT: the same export + AutoBackend path, and every supported Ultralytics exports it
    run = _engine_runner(wrapper, "torchscript", 1, 64, torch.device("cpu"), False, tmp_path)
    run()
    assert (tmp_path / "yolov8n-efficientrep_b1.torchscript").is_file() and not hasattr(wrapper.model, "pt_path")
    step = _train_step(wrapper.model, 2, 64, 1)
    assert step["step_ms"] > 0 and step["activation_mib"] > 0 and "peak_mib" not in step


def test_committed_report_is_generated_from_its_json_and_shown_in_the_readme():
    """docs/benchmarks/report.md and the README's benchmark section are the code's rendering of report.json."""
    from conftest import REPO

    from yolo_efficientrep.benchmark import _markdown
    from yolo_efficientrep.zoo import update_readme

    report = json.loads((REPO / "docs" / "benchmarks" / "report.json").read_text())
    markdown = _markdown(report)
    assert (REPO / "docs" / "benchmarks" / "report.md").read_text() == markdown
    readme = REPO / "README.md"
    assert update_readme(readme, {"benchmark": markdown.rstrip("\n")}) == readme.read_text()
    assert report["settings"]["quick"] is False and report["settings"]["imgsz"] == 640
    assert set(report["targets"]) >= {"fused_speedup_torch_b1 >= 1.5", "startup_difference_ms <= 5"}
