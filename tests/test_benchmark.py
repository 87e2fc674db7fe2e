"""The repository's benchmark (``benchmarks/``, not in the wheel): its measurement rules, its numbers, its rendering.

No speed target is asserted here (they live in the benchmark's report); the timing tests check how rounds are run and
recorded, and the quick run's ratios only against wide, stated bounds.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys

import pytest
import torch
from conftest import REPO, randomize_bn, run
from torch import nn

sys.path.insert(0, str(REPO / "benchmarks"))  # the benchmark is a set of scripts in the repository, not a package

import measure  # noqa: E402
import render  # noqa: E402

from yolo_efficientrep import _compat, _timing  # noqa: E402

STATS = {"median_ms", "min_ms", "max_ms", "iqr_ms", "ms"}
QUICK_MODELS = ("yolov8n.yaml", "yolov8n-efficientrep.yaml")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One quick run of ``python benchmarks/run.py``, as a user runs it, with a model name that does not build."""
    tmp = tmp_path_factory.mktemp("bench")
    models = ",".join((*QUICK_MODELS, "no-such-model.yaml"))
    result = run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "quick=True", f"out={tmp}", f"models=[{models}]"],
        cwd=tmp,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp, json.loads((tmp / "report.json").read_text())


@pytest.mark.slow
def test_quick_benchmark_numbers(quick_report):
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    out, report = quick_report
    s = report["settings"]
    assert set(report) >= {"machine", "settings", "models", "skipped", "orders", "accuracy", "startup", "targets"}
    assert s["quick"] is True and s["imgsz"] == 256 and len(report["machine"]["loadavg_end"]) == 3
    (skipped,) = report["skipped"]
    assert skipped["model"] == "no-such-model.yaml" and "no-such-model" in skipped["error"]
    stock, plugin = report["models"]
    assert (stock["model"], plugin["model"]) == QUICK_MODELS
    for entry in (stock, plugin):
        # GFLOPs are Ultralytics' own count, training form and fused
        model = YOLO(entry["model"]).model
        assert entry["gflops"] == pytest.approx(get_flops(model, 256), rel=1e-9)
        assert entry["fused_gflops"] == pytest.approx(get_flops(model.fuse(verbose=False), 256), rel=1e-9)
        for key in ("torch_unfused_b1", "torch_fused_b1", "torch_plain_b1", "onnxruntime_fused_b1"):
            assert set(entry[key]) == STATS and len(entry[key]["ms"]) == s["repeats_b1"]
            assert entry[key]["median_ms"] == pytest.approx(statistics.median(entry[key]["ms"]))
        for key in ("torch_fused_b8", "onnxruntime_fused_b8"):
            assert len(entry[key]["ms"]) == s["repeats_b8"]
        assert "torch_unfused_b8" not in entry  # batch 8: the fused model only
        # ratios are medians of per-round ratios (the rounds are paired), within wide bounds
        pairs = zip(entry["torch_unfused_b1"]["ms"], entry["torch_fused_b1"]["ms"])
        speedup = entry["fused_speedup_torch_b1"]
        assert speedup["median"] == pytest.approx(statistics.median(a / b for a, b in pairs))
        assert speedup["iqr"] >= 0 and speedup["rounds"] == s["repeats_b1"]
        assert 0.5 < speedup["median"] < 5
        # the conv-only stack does a strict subset of the fused model's work
        assert 0.8 < entry["fused_vs_plain_torch_b1"]["median"] < 20
        train = entry["train_b8"]
        assert len(train["step_ms"]["ms"]) == s["train_rounds"]
        assert 0 < train["activation_mib"] <= train["activation_naive_mib"]
        profile = entry["profile_onnxruntime_b1"]
        conv_gflops = sum(profile[k]["gflops"] for k in ("3x3", "1x1", "other"))
        assert conv_gflops == pytest.approx(entry["fused_gflops"], rel=0.03)  # the rest: upsampling, pooling, decode
    # deterministic ratios: parameters and memory of the plugin model against stock yolov8n
    assert plugin["fused_params"] < plugin["params"]
    versus = plugin["versus_counterpart"]
    assert versus["model"] == "yolov8n.yaml" and "versus_counterpart" not in stock
    memory = versus["train_b8_activation_memory"]
    assert memory == pytest.approx(plugin["train_b8"]["activation_mib"] / stock["train_b8"]["activation_mib"])
    # Each saved storage once, weights excluded: 0.60 in the committed 640 px report and in CI's 256 px quick run.
    assert 0.45 < memory < 0.8
    steps = versus["train_b8_step"]
    pairs = zip(plugin["train_b8"]["step_ms"]["ms"], stock["train_b8"]["step_ms"]["ms"])
    assert steps["median"] == pytest.approx(statistics.median(a / b for a, b in pairs))
    # every round of every timing ran every runner once, in recorded, shuffled orders
    rounds = report["orders"]["torch_b1"]["rounds"]
    assert len(rounds) == s["repeats_b1"] and len({tuple(map(tuple, r)) for r in rounds}) > 1
    assert all(sorted(map(tuple, r)) == sorted(map(tuple, rounds[0])) for r in rounds)
    assert len(rounds[0]) == 2 * 4  # 2 models x (unfused, fused, plain, ONNX Runtime)
    _check_accuracy(report["accuracy"])
    assert set(report["startup"]) >= {"with_plugin", "without_plugin", "difference_ms", "difference"}
    markdown = (out / "report.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| `yolov8n")]
    int8_rows = 6 if "settings" in next(iter(report["accuracy"]["int8"].values())) else 0
    assert len(rows) == 2 + 1 + 2 + int8_rows, markdown  # models, versus stock, compute density, INT8
    assert "nan" not in markdown and "Skipped `no-such-model.yaml`" in markdown and "load average" in markdown
    assert (out / "latency_vs_gflops.png").stat().st_size > 1000 and (out / "fused_speedup.png").stat().st_size > 1000


def _check_accuracy(accuracy: dict) -> None:
    """FP32 PyTorch and FP32 ONNX validations of one checkpoint agree; every INT8 entry is complete."""
    import ultralytics

    trained = measure.ACCURACY_MODELS
    assert set(accuracy) == {"recipe", *trained, "ratio", "int8"} and set(accuracy["int8"]) == set(trained)
    errors = {r.get("error") for r in accuracy["int8"].values()}
    if errors != {None}:  # stock Ultralytics 8.1/8.2 + this torch cannot export ONNX at all
        assert ultralytics.__version__.startswith(("8.1.", "8.2.")), errors
        assert all(e.startswith("ModuleNotFoundError") and "onnxscript" in e for e in errors), errors
        return
    for name in trained:
        r = accuracy["int8"][name]
        # the same checkpoint, validated the same way in PyTorch and ONNX Runtime: export rounding only
        assert accuracy[name]["map50_95"] == pytest.approx(r["fp32"]["map50_95"], abs=0.01)
        assert r["fp32"]["latency_ms"] > 0
        for fmt in ("onnx", "openvino"):
            q = r[fmt]
            assert set(q) == {"map50_95", "file", "drop", "drift_boxes", "drift_scores", "latency_ms", "speedup"}, q
            assert q["drop"] == pytest.approx(r["fp32"]["map50_95"] - q["map50_95"])
            assert 0 < q["drift_scores"] < 1 and 0 < q["drift_boxes"] < 1 and q["latency_ms"] > 0


@pytest.mark.slow
def test_render_alone_reproduces_the_report_from_its_json(quick_report, tmp_path):
    out, _ = quick_report
    result = run([sys.executable, str(REPO / "benchmarks" / "render.py"), f"report={out / 'report.json'}",
                  f"out={tmp_path}"], cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "report.md").read_text() == (out / "report.md").read_text()
    assert (tmp_path / "fused_speedup.png").is_file()


def test_shared_timer_shuffles_every_round_and_records_the_orders():
    from yolo_efficientrep import quantize

    calls = []
    runners = {k: (lambda k=k: calls.append(k)) for k in "abcde"}
    times, orders = _timing.time_interleaved(runners, rounds=6, warmup=2, seed=3)
    assert calls[:10] == [k for k in "abcde" for _ in range(2)]  # warm-up, then the timed rounds
    assert calls[10:] == [k for order in orders for k in order]
    assert all(sorted(o) == list("abcde") for o in orders) and len({tuple(o) for o in orders}) > 1
    assert all(len(v) == 6 and min(v) >= 0 for v in times.values())
    assert _timing.time_interleaved(runners, 6, 0, seed=3)[1] == orders  # seeded: the same orders again
    assert _timing.time_interleaved(runners, 6, 0, seed=4)[1] != orders
    # quantize's latency uses the same timer: the same shuffled order of calls after its one warm-up call
    calls.clear()
    medians = quantize._median_ms(runners, 6)
    assert set(medians) == set("abcde")
    assert calls[5:] == [k for order in _timing.time_interleaved(runners, 6, 0, seed=0)[1] for k in order]


def test_paired_ratios_and_rounding_to_the_spread():
    r = measure.paired_ratio([3.0, 4.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])  # per round 3, 2, 1, 1
    assert r["median"] == pytest.approx(1.5) and r["rounds"] == 4  # the ratio of the medians would be 1.4
    q = statistics.quantiles([3, 2, 1, 1], n=4, method="inclusive")
    assert r["iqr"] == pytest.approx(q[2] - q[0]) and r["iqr"] == pytest.approx(1.25)
    with pytest.raises(ValueError, match="equally long"):
        measure.paired_ratio([1.0], [1.0, 2.0])
    assert render.fmt_ratio({"median": 1.8734, "iqr": 0.05}) == "1.87x (0.05)"
    assert render.fmt_ratio({"median": 1.8734, "iqr": 0.3}) == "1.9x (0.3)"
    assert render.fmt_ratio({"median": 1.8734, "iqr": 0.004}) == "1.873x (0.004)"
    assert render.fmt_ratio({"median": 1.8734, "iqr": 2.5}) == "2x (2)"
    assert render.fmt_ratio(0.96) == "0.96x"  # an exact ratio (memory) has no spread


def test_timed_onnxruntime_sessions_do_not_spin(tmp_path):
    session = measure.ort_session(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), tmp_path / "conv.onnx")
    options = session.get_session_options()
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == "0"


def test_activation_memory_counts_each_saved_storage_once_and_no_weights():
    class ThreeBranches(nn.Module):  # x is saved by three multiplications (for the parameters' gradients)
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = (nn.Parameter(torch.ones(1)) for _ in range(3))

        def forward(self, x):
            return x * self.a + x * self.b + x * self.c

    x = torch.rand(2, 3, 8, 8)
    m = measure.activation_memory(ThreeBranches(), x)
    assert m == {"unique_bytes": 2 * 3 * 8 * 8 * 4, "naive_bytes": 3 * 2 * 3 * 8 * 8 * 4}
    # conv (saves its input and weight) then SiLU (saves its input, the conv output): input + conv output only
    conv = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.SiLU())
    m = measure.activation_memory(conv, x)
    assert m["unique_bytes"] == (2 * 3 * 8 * 8 + 2 * 5 * 8 * 8) * 4
    assert m["naive_bytes"] == m["unique_bytes"] + 5 * 3 * 3 * 3 * 4
    assert 0 < m["unique_bytes"] <= m["naive_bytes"]


def test_plain_conv_stack_has_the_fused_models_convs_in_plain_torch(tmp_path):
    from ultralytics import YOLO

    import yolo_efficientrep as yer

    # The shipped YAML without its `activation:` key: ReLU rep blocks beside stock SiLU layers, so both kinds of
    # activation (and the head's Identity) are carried over.
    text = yer.find_yaml("yolov8-efficientrep.yaml").read_text()
    assert "\nactivation: nn.SiLU()" in text
    (tmp_path / "yolov8n-mixed.yaml").write_text(text.replace("\nactivation: nn.SiLU()", "\n# activation removed"))
    fused = randomize_bn(YOLO(tmp_path / "yolov8n-mixed.yaml").model).fuse(verbose=False).eval()
    stack = measure.PlainConvStack(fused, 64).eval()
    assert {type(m).__module__.split(".")[0] for m in stack.modules()} == {"torch", measure.__name__}
    x = torch.rand(1, 3, 64, 64)
    assert measure.conv_work(stack, x) == measure.conv_work(fused, x)  # every conv call, same geometry
    assert len(stack.layers) == sum(n for n, _ in measure.conv_work(fused, x).values())
    with torch.no_grad():  # the first layer is the model's stem, weights and activation (ReLU in RepVGG) included
        torch.testing.assert_close(stack.layers[0](x), fused.model[0](x), rtol=1e-5, atol=1e-6)
        assert stack(x).shape == stack(torch.rand(2, 3, 64, 64))[:1].shape
    acts = [type(layer[1]) for layer in stack.layers]
    assert nn.ReLU in acts and nn.SiLU in acts and nn.Identity in acts  # RepVGG, stock Conv, the head's outputs


def test_onnxruntime_profile_groups_nodes_and_counts_flops(tmp_path):
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1),  # 3x3 stride 2: 64 -> 32
        nn.ReLU(),  # fused into the conv by ONNX Runtime
        nn.Conv2d(32, 32, 1),
        nn.SiLU(),  # a separate activation node
        nn.Conv2d(32, 32, 3, 1, 1, groups=2),
        nn.Conv2d(32, 16, 5, 1, 2),
        nn.MaxPool2d(2),
    ).eval()
    d = measure.onnxruntime_profile(model, 64, tmp_path, runs=2)
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


def test_device_timing_and_interleaved_training_steps_on_cpu():
    """The code path the CUDA section runs (any device and dtype, other engines' runners), exercised on the CPU."""
    from ultralytics import YOLO

    wrapper = YOLO("yolov8n-efficientrep.yaml")
    fused = copy.deepcopy(wrapper.model).fuse(verbose=False)
    entries = [
        {"model": "m", "_unfused": wrapper.model.eval(), "_fused": fused, "_plain": measure.PlainConvStack(fused, 64)},
        {"model": "n", "_unfused": YOLO("yolov8n.yaml").model.eval()},
    ]
    calls = []

    def extra(e, batch):
        return {"engine_x": lambda: calls.append((e["model"], batch))}

    orders = measure.time_forms(entries, torch.device("cpu"), torch.float64, 64, {1: 3, 8: 1}, 1, "cpu_fp64", extra)
    for key in ("cpu_fp64_unfused_b1", "cpu_fp64_fused_b1", "cpu_fp64_plain_b1", "cpu_fp64_fused_b8", "engine_x_b8"):
        assert set(entries[0][key]) == STATS
    assert "cpu_fp64_unfused_b8" not in entries[0]
    assert "cpu_fp64_fused_b1" not in entries[1] and len(entries[1]["cpu_fp64_unfused_b1"]["ms"]) == 3
    assert calls.count(("m", 1)) == 1 + 3 and calls.count(("n", 8)) == 1 + 1  # warm-up, then once per round
    assert len(orders["cpu_fp64_b1"]["rounds"]) == 3 and len(orders["cpu_fp64_b1"]["rounds"][0]) == 4 + 2
    assert next(entries[0]["_fused"].parameters()).dtype == torch.float32  # timed on a copy: the entry is untouched
    record = measure.train_steps(entries, 2, 64, 3, torch.device("cpu"))
    assert [sorted(r) for r in record["rounds"]] == [["m", "n"]] * 3
    for e in entries:
        assert len(e["train_b8"]["step_ms"]["ms"]) == 3 and "peak_mib" not in e["train_b8"]
        assert 0 < e["train_b8"]["activation_mib"] < e["train_b8"]["activation_naive_mib"]


def test_compat_autobackend_contract(tmp_path):
    """``_compat.autobackend``: AutoBackend's first argument under the installed release's name, runs an export."""
    import inspect

    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    params = inspect.signature(AutoBackend.__init__).parameters
    assert list(params)[1] in {"weights", "model"} and {"device", "fp16", "fuse", "verbose"} <= set(params)
    wrapper = YOLO("yolov8n-efficientrep.yaml")
    with _compat.exporting_to(wrapper.model, tmp_path / "net.pt"):
        file = wrapper.export(format="torchscript", imgsz=64, device="cpu")
    backend = _compat.autobackend(file, torch.device("cpu"))
    y = backend(torch.zeros(1, 3, 64, 64))
    assert (y[0] if isinstance(y, (list, tuple)) else y).shape[:2] == (1, 4 + 80)


def test_compat_exporting_to_contract(tmp_path):
    """``_compat.exporting_to``: the exporter names its file after ``pt_path``; the attribute is restored after."""
    from ultralytics import YOLO

    wrapper = YOLO("yolov8n.yaml")
    with _compat.exporting_to(wrapper.model, tmp_path / "sub_b1.pt"):
        file = wrapper.export(format="torchscript", imgsz=64, device="cpu")
    assert str(file) == str(tmp_path / "sub_b1.torchscript") and (tmp_path / "sub_b1.torchscript").is_file()
    assert not hasattr(wrapper.model, "pt_path")
    wrapper.model.pt_path = "kept.pt"
    with _compat.exporting_to(wrapper.model, tmp_path / "other.pt"):
        assert wrapper.model.pt_path == str(tmp_path / "other.pt")
    assert wrapper.model.pt_path == "kept.pt"
    run_ = measure.engine_runner(YOLO("yolov8n.yaml"), "torchscript", 1, 64, torch.device("cpu"), False, tmp_path)
    run_()
    assert (tmp_path / "yolov8n_b1.torchscript").is_file()


def test_render_writes_exactly_the_readme_section(tmp_path):
    readme = tmp_path / "README.md"
    before, after = "intro  \n\n<!-- generated:benchmark -->\n", "<!-- /generated:benchmark -->\n\toutro\n\n"
    readme.write_text(before + "old table\n" + after)
    render.write_readme(readme, "| model | ms |\n|---|--:|\n| `x.yaml` | 1.0 |\n")
    assert readme.read_text() == before + "| model | ms |\n|---|--:|\n| `x.yaml` | 1.0 |\n" + after
    render.write_readme(readme, "new\n")
    assert readme.read_text() == before + "new\n" + after  # a second run replaces the block, not appends
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="no <!-- generated:benchmark --> ... <!-- /generated:benchmark --> markers"):
        render.render(json.loads((REPO / "docs" / "benchmarks" / "report.json").read_text()), tmp_path / "o", readme)
    assert readme.read_text() == "no markers here\n" and not (tmp_path / "o").exists()  # checked before any write


@pytest.mark.parametrize("arg", ["quick=maybe", "speed=1", "out"])
def test_benchmark_bad_arguments(arg):
    result = run([sys.executable, str(REPO / "benchmarks" / "run.py"), arg])
    assert result.returncode == 2
    assert {"quick=maybe": "quick: expected True or False, got 'maybe'", "speed=1": "invalid argument 'speed=1'",
            "out": "'out' needs a value"}[arg] in result.stderr  # fmt: skip


def test_committed_report_is_generated_from_its_json_and_shown_in_the_readme():
    """docs/benchmarks/report.md and the README's benchmark section are the renderer's output for report.json."""
    from yolo_efficientrep.zoo import update_readme

    report = json.loads((REPO / "docs" / "benchmarks" / "report.json").read_text())
    markdown = render.markdown(report)
    assert (REPO / "docs" / "benchmarks" / "report.md").read_text() == markdown
    readme = REPO / "README.md"
    assert update_readme(readme, {"benchmark": markdown.rstrip("\n")}) == readme.read_text()
    assert report["settings"]["quick"] is False and report["settings"]["imgsz"] == 640
    measured = {e["model"] for e in report["models"]} | {s["model"] for s in report["skipped"]}
    assert set(measure.DEFAULT_MODELS) <= measured
    assert set(report["targets"]) >= {"fused_speedup_torch_b1 >= 1.5", "startup_difference_ms <= 5"}
