"""Benchmark: what re-parameterization buys, measured side by side in one run (``yolo-efficientrep benchmark``).

For each model: parameters and GFLOPs (training form and fused), PyTorch latency unfused and fused, ONNX Runtime
latency fused (batch 1 and 8), achieved GFLOP/s, training step time and autograd activation memory, and on CUDA the
same in fp16. Latencies are medians over interleaved repeats after warm-up (every model is timed once per round, so
machine drift hits all models alike), reported with their spread and as ratios. A fixed short training recipe on the
offline shapes dataset compares the accuracy of yolov8n, yolov8n-efficientrep and yolov8n-efficientrep-qa, in FP32
and after INT8 post-training quantization (``quantize``). Output: JSON, Markdown, PNG plots.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

__all__ = ("DEFAULT_MODELS", "run_benchmark", "single_path_equivalent")

DEFAULT_MODELS = (
    "yolov8n.yaml",
    "yolov8s.yaml",
    "yolov8n-efficientrep.yaml",
    "yolov8s-efficientrep.yaml",
    "yolov8n-cspbep.yaml",
    "yolov8s-cspbep.yaml",
    "yolov6n-efficientrep.yaml",
)
COUNTERPART = {  # plugin model -> the stock YOLOv8 model it is compared with
    "yolov8n-efficientrep.yaml": "yolov8n.yaml",
    "yolov8s-efficientrep.yaml": "yolov8s.yaml",
    "yolov8n-cspbep.yaml": "yolov8n.yaml",
    "yolov8s-cspbep.yaml": "yolov8s.yaml",
    "yolov6n-efficientrep.yaml": "yolov8n.yaml",
}


def single_path_equivalent(fused: nn.Module) -> nn.Module:
    """Rebuild a fused plugin model from stock Ultralytics ``Conv`` modules: the physical limit of fusing.

    Every fused ``RepVGGBlock`` and ``SimConv`` becomes a stock ``Conv`` running ``forward_fuse`` with the same
    weights, so any remaining gap to the fused plugin model is overhead the plugin leaves behind.
    """
    from ultralytics.nn.modules import Conv

    from .blocks import RepVGGBlock, SimConv

    model = copy.deepcopy(fused)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (RepVGGBlock, SimConv)):
                stock = Conv(1, 1, act=child.act)
                del stock.bn
                stock.conv = child.conv
                stock.forward = stock.forward_fuse
                for attr in ("i", "f", "type", "np"):
                    if hasattr(child, attr):
                        setattr(stock, attr, getattr(child, attr))
                setattr(parent, name, stock)
    return model


def _build(name: str, imgsz: int) -> dict:
    from ultralytics import YOLO

    from .zoo import measure

    model = YOLO(name).model.eval()
    _, params, gflops = measure(model, imgsz)
    fused = copy.deepcopy(model).fuse(verbose=False).eval()
    _, f_params, f_gflops = measure(fused, imgsz)
    entry = {
        "model": name,
        "params": params,
        "gflops": gflops,
        "fused_params": f_params,
        "fused_gflops": f_gflops,
        "_unfused": model,
        "_fused": fused,
    }
    if name in COUNTERPART:
        entry["_single_path"] = single_path_equivalent(fused)
    return entry


def _onnx_session(model: nn.Module, batch: int, imgsz: int, workdir: Path):
    import onnxruntime as ort

    file = workdir / f"m{id(model)}_{batch}.onnx"
    x = torch.zeros(batch, 3, imgsz, imgsz)
    torch.onnx.export(model, x, str(file), opset_version=17, input_names=["images"], dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    feed = {"images": x.numpy()}
    return lambda: session.run(None, feed)


def _timed_interleaved(runners: dict, repeats: int, warmup: int, desc: str = "benchmark: timing") -> dict[str, dict]:
    """Median and spread (min, max, IQR) in ms of each runner, timing every runner once per round."""
    from ultralytics.utils import TQDM

    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {key: [] for key in runners}
    for _ in TQDM(range(repeats), desc=desc):
        for key, run in runners.items():
            t = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - t) * 1e3)
    out = {}
    for key, values in times.items():
        q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
        out[key] = {
            "median_ms": statistics.median(values),
            "min_ms": min(values),
            "max_ms": max(values),
            "iqr_ms": q[2] - q[0],
        }
    return out


def _tensors(y) -> list[torch.Tensor]:
    """Every tensor in a (nested) model output."""
    if isinstance(y, torch.Tensor):
        return [y]
    items = y.values() if isinstance(y, dict) else y if isinstance(y, (list, tuple)) else []
    return [t for item in items for t in _tensors(item)]


def _train_step(model: nn.Module, batch: int, imgsz: int, steps: int) -> dict:
    """Time of one forward+backward step on random data and the autograd activation memory it saves."""
    model = copy.deepcopy(model).train()
    for p in model.parameters():
        p.requires_grad_(True)
    x = torch.rand(batch, 3, imgsz, imgsz)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    times = []
    for step in range(steps + 1):
        saved[0] = 0
        t = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        loss = sum(t.float().mean() for t in _tensors(out))
        loss.backward()
        model.zero_grad(set_to_none=True)
        if step:  # the first step warms up
            times.append((time.perf_counter() - t) * 1e3)
    return {"step_ms": statistics.median(times), "activation_mib": saved[0] / 2**20}


ACCURACY_MODELS = ("yolov8n.yaml", "yolov8n-efficientrep.yaml", "yolov8n-efficientrep-qa.yaml")


def _int8(weights: Path, imgsz: int, quick: bool, project: Path) -> dict:
    """INT8 post-training quantization of one trained checkpoint (see ``quantize``); failures are reported."""
    from .quantize import quantize

    try:
        return quantize(weights, "shapes.yaml", imgsz, rounds=3 if quick else 20, project=project)
    except ModuleNotFoundError as e:  # e.g. Ultralytics < 8.3 exports ONNX through torch's dynamo exporter
        return {"error": f"{type(e).__name__}: {e}"}


def _accuracy(quick: bool, project: Path) -> dict:
    """Train yolov8n, yolov8n-efficientrep and -qa with one fixed recipe on shapes; mAP50-95 in FP32 and INT8."""
    from ultralytics import YOLO

    recipe = (
        {"epochs": 1, "imgsz": 96, "batch": 16}
        if quick
        else {"epochs": 30, "imgsz": 192, "batch": 8, "warmup_epochs": 0}
    )
    out = {"recipe": {**recipe, "data": "shapes.yaml", "seed": 0, "device": "cpu"}, "int8": {}}
    for name in ACCURACY_MODELS:
        model = YOLO(name)
        model.train(
            data="shapes.yaml",
            seed=0,
            deterministic=True,
            device="cpu",
            workers=0,
            plots=False,
            project=str(project),
            name=name.removesuffix(".yaml"),
            exist_ok=True,
            verbose=False,
            **recipe,
        )
        metrics = YOLO(Path(project) / name.removesuffix(".yaml") / "weights" / "best.pt").val(
            data="shapes.yaml",
            imgsz=recipe["imgsz"],
            batch=recipe["batch"],
            device="cpu",
            plots=False,
            project=str(project),
            name=f"{name.removesuffix('.yaml')}-val",
            exist_ok=True,
            verbose=False,
        )
        out[name] = {"map50_95": float(metrics.box.map), "map50": float(metrics.box.map50)}
        best = Path(project) / name.removesuffix(".yaml") / "weights" / "best.pt"
        out["int8"][name] = _int8(best, recipe["imgsz"], quick, Path(project) / f"{name.removesuffix('.yaml')}-int8")
    out["ratio"] = out["yolov8n-efficientrep.yaml"]["map50_95"] / max(out["yolov8n.yaml"]["map50_95"], 1e-9)
    return out


def _startup_ms(repeats: int) -> dict:
    """Interpreter start-up with the plugin's hook vs with it switched off, interleaved."""
    import subprocess
    import sys

    runs = {"with_plugin": {}, "without_plugin": {"YOLO_EFFICIENTREP_AUTOLOAD": "0"}}
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for key, env in runs.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env={**os.environ, **env}, check=True)
            times[key].append((time.perf_counter() - t) * 1e3)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["difference_ms"] = out["with_plugin"] - out["without_plugin"]
    return out


def run_benchmark(
    models: tuple[str, ...] = DEFAULT_MODELS,
    quick: bool = False,
    out: str | os.PathLike = "docs/benchmarks",
    accuracy: bool = True,
) -> dict:
    """Run the benchmark and write ``report.json``, ``report.md`` and the plots to ``out``.

    Args:
        models (tuple[str, ...]): Model names (stock or plugin YAMLs).
        quick (bool): CI-sized run (256 px, few repeats, a one-epoch accuracy recipe) that finishes in minutes.
        out (str | os.PathLike): Output directory.
        accuracy (bool): Also run the fixed training recipe.

    Returns:
        (dict): The report.
    """
    from ultralytics.utils import TQDM

    imgsz, repeats, warmup, steps = (256, 3, 1, 1) if quick else (640, 15, 3, 3)
    repeats_b8 = 2 if quick else max(3, repeats // 3)  # batch 8 is 8x slower: fewer rounds
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if cuda else None,
        },
        "settings": {
            "imgsz": imgsz,
            "repeats_b1": repeats,
            "repeats_b8": repeats_b8,
            "warmup": warmup,
            "quick": quick,
        },
        "models": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        entries = [_build(name, imgsz) for name in TQDM(models, desc="benchmark: build")]
        with torch.no_grad():
            for batch in (1, 8):
                runners = {}
                x = torch.zeros(batch, 3, imgsz, imgsz)
                for e in entries:
                    for form in ("_unfused", "_fused", "_single_path"):
                        if form in e:
                            runners[(e["model"], form, "torch")] = lambda m=e[form], x=x: m(x)
                    runners[(e["model"], "_fused", "onnxruntime")] = _onnx_session(e["_fused"], batch, imgsz, Path(tmp))
                rounds = repeats if batch == 1 else repeats_b8
                timed = _timed_interleaved(runners, rounds, warmup, f"benchmark: batch {batch}")
                for (name, form, engine), stats in timed.items():
                    entry = next(e for e in entries if e["model"] == name)
                    entry[f"{engine}{form}_b{batch}"] = stats
        if cuda:
            with torch.no_grad():
                x = torch.zeros(1, 3, imgsz, imgsz, device="cuda", dtype=torch.half)
                runners = {}
                for e in entries:
                    for form in ("_unfused", "_fused"):
                        m = copy.deepcopy(e[form]).cuda().half()
                        runners[(e["model"], form)] = lambda m=m, x=x: (m(x), torch.cuda.synchronize())
                for (name, form), stats in _timed_interleaved(runners, repeats, warmup).items():
                    next(e for e in entries if e["model"] == name)[f"cuda_fp16{form}_b1"] = stats
        for e in TQDM(entries, desc="benchmark: training step"):
            e["train_b8"] = _train_step(e["_unfused"], 8, imgsz // 2, steps)
        for e in entries:
            e["fused_speedup_torch_b1"] = e["torch_unfused_b1"]["median_ms"] / e["torch_fused_b1"]["median_ms"]
            e["gflops_per_s_onnxruntime_b1"] = e["fused_gflops"] / (e["onnxruntime_fused_b1"]["median_ms"] / 1e3)
            if "_single_path" in e:
                e["fused_vs_single_path_torch_b1"] = (
                    e["torch_fused_b1"]["median_ms"] / e["torch_single_path_b1"]["median_ms"]
                )
            for key in ("_unfused", "_fused", "_single_path"):
                e.pop(key, None)
            report["models"].append(e)
        if accuracy:
            report["accuracy"] = _accuracy(quick, Path(tmp) / "runs")
    report["startup"] = _startup_ms(5 if quick else 20)
    report["targets"] = _targets(report)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report))
    _plots(report, out)
    return report


def _targets(report: dict) -> dict:
    by = {m["model"]: m for m in report["models"]}
    targets = {}
    if "yolov8n-efficientrep.yaml" in by:
        e = by["yolov8n-efficientrep.yaml"]
        targets["fused_speedup_torch_b1 >= 1.5"] = e["fused_speedup_torch_b1"]
        targets["fused_vs_single_path_torch_b1 <= 1.03"] = e["fused_vs_single_path_torch_b1"]
        if "yolov8n.yaml" in by:
            targets["gflops_per_s_vs_yolov8n_onnxruntime >= 1.2"] = (
                e["gflops_per_s_onnxruntime_b1"] / by["yolov8n.yaml"]["gflops_per_s_onnxruntime_b1"]
            )
    targets["startup_difference_ms <= 5"] = report["startup"]["difference_ms"]
    int8 = report.get("accuracy", {}).get("int8", {})
    rep, qa = int8.get("yolov8n-efficientrep.yaml", {}), int8.get("yolov8n-efficientrep-qa.yaml", {})
    for fmt in ("onnx", "openvino"):
        if "drop" in rep.get(fmt, {}) and "drop" in qa.get(fmt, {}):  # QA's INT8 drop as a fraction of RepVGG's
            ratio = qa[fmt]["drop"] / rep[fmt]["drop"] if rep[fmt]["drop"] > 0 else math.nan
            targets[f"int8_drop_qa_vs_repvgg_{fmt} <= 0.5"] = ratio
    return targets


def _markdown(report: dict) -> str:
    m = report["machine"]
    s = report["settings"]
    lines = [
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs ({m['torch_threads']} torch threads), torch {m['torch']}"
        f"{', ' + m['cuda'] if m['cuda'] else ''}; {s['imgsz']} px; medians of {s['repeats_b1']} (batch 1) and "
        f"{s['repeats_b8']} (batch 8) interleaved rounds after warm-up.",
        "",
        "| model | GFLOPs (train / fused) | PyTorch b1 unfused / fused (ms) | fused speedup | single-path b1 (ms) | "
        "fused / single-path | ORT b1 / b8 (ms) | ORT GFLOP/s | train step b8 (ms) | activations (MiB) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in report["models"]:
        single = e.get("torch_single_path_b1", {}).get("median_ms")
        lines.append(
            f"| `{e['model']}` | {e['gflops']:.1f} / {e['fused_gflops']:.1f} | {e['torch_unfused_b1']['median_ms']:.1f}"
            f" / {e['torch_fused_b1']['median_ms']:.1f} | {e['fused_speedup_torch_b1']:.2f}x | "
            f"{'-' if single is None else f'{single:.1f}'} | "
            f"{e.get('fused_vs_single_path_torch_b1', float('nan')):.3f} | {e['onnxruntime_fused_b1']['median_ms']:.1f}"
            f" / {e['onnxruntime_fused_b8']['median_ms']:.1f} | {e['gflops_per_s_onnxruntime_b1']:.1f} | "
            f"{e['train_b8']['step_ms']:.0f} | {e['train_b8']['activation_mib']:.0f} |"
        )
    if "accuracy" in report:
        a = report["accuracy"]
        lines += [
            "",
            f"Accuracy, fixed recipe {a['recipe']}: yolov8n mAP50-95 {a['yolov8n.yaml']['map50_95']:.4f}, "
            f"yolov8n-efficientrep {a['yolov8n-efficientrep.yaml']['map50_95']:.4f} (ratio {a['ratio']:.2f}), "
            f"yolov8n-efficientrep-qa {a['yolov8n-efficientrep-qa.yaml']['map50_95']:.4f}.",
            *_int8_markdown(a["int8"]),
        ]
    st = report["startup"]
    lines += [
        "",
        f"Interpreter start-up: {st['with_plugin']:.1f} ms with the plugin's hook, {st['without_plugin']:.1f} ms "
        f"without (difference {st['difference_ms']:+.1f} ms).",
        "",
        "| target | measured |",
        "|---|--:|",
        *(f"| {k} | {v:.3f} |" for k, v in report["targets"].items()),
    ]
    return "\n".join(lines) + "\n"


def _int8_markdown(int8: dict) -> list[str]:
    settings = next((r["settings"] for r in int8.values() if "settings" in r), None)
    if settings is None:
        return ["", "INT8: not run (" + "; ".join(f"{k}: {r['error']}" for k, r in int8.items()) + ")."]
    lines = [
        "",
        f"INT8 post-training quantization of the fused exports, {settings['imgsz']} px, calibrated on "
        f"{settings['calibration']}; ONNX Runtime {settings['onnxruntime']}; OpenVINO {settings['openvino']}. "
        f"Drop and drift are against the {settings['reference']}; drift is the relative L2 change of the raw "
        "class-score outputs on validation images; speed-up is FP32 ONNX Runtime latency / INT8 latency (batch 1).",
        "",
        "| model | FP32 mAP50-95 | format | INT8 mAP50-95 | drop | score drift | FP32 / INT8 latency (ms) | speed-up |",
        "|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for name, r in int8.items():
        if "error" in r:
            lines.append(f"| `{name}` | - | - | - | - | - | - | {r['error']} |")
            continue
        for fmt, label in (("onnx", "ONNX Runtime"), ("openvino", "OpenVINO")):
            q = r.get(fmt, {})
            if "error" in q:
                lines.append(f"| `{name}` | {r['fp32']['map50_95']:.4f} | {label} | - | - | - | - | {q['error']} |")
            elif q:
                lines.append(
                    f"| `{name}` | {r['fp32']['map50_95']:.4f} | {label} | {q['map50_95']:.4f} | {q['drop']:+.4f} | "
                    f"{q['drift_scores']:.3f} | {r['fp32']['latency_ms']:.1f} / {q['latency_ms']:.1f} | "
                    f"{q['speedup']:.2f}x |"
                )
    return lines


def _plots(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["models"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for e in models:
        for form, marker in (("unfused", "o"), ("fused", "s")):
            gf = e["gflops"] if form == "unfused" else e["fused_gflops"]
            ax.scatter(gf, e[f"torch_{form}_b1"]["median_ms"], marker=marker, label=f"{e['model']} {form}")
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("PyTorch CPU latency, batch 1 (ms)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_gflops.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3))
    names = [e["model"].removesuffix(".yaml") for e in models]
    ax.bar(names, [e["fused_speedup_torch_b1"] for e in models])
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_ylabel("unfused / fused latency")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "fused_speedup.png", dpi=120)
    plt.close(fig)
