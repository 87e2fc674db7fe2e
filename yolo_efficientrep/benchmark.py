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

from ._utils import tensors

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

    wrapper = YOLO(name)
    model = wrapper.model.eval()
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
        "_yolo": wrapper,
    }
    if name in COUNTERPART:
        entry["_single_path"] = single_path_equivalent(fused)
    return entry


def _ort_session(model: nn.Module, x: torch.Tensor, file: Path, profile: bool = False):
    """Export ``model`` to ``file`` (legacy exporter, opset 17) and open it on ONNX Runtime's CPU provider.

    Every ONNX Runtime measurement of the benchmark uses these settings (all graph optimizations); ``profile`` turns
    on ONNX Runtime's per-node profiler, writing beside ``file``.
    """
    import onnxruntime as ort

    torch.onnx.export(model, x, str(file), opset_version=17, input_names=["images"], dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(file.with_suffix(""))
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def _onnx_session(model: nn.Module, batch: int, imgsz: int, workdir: Path):
    """A runner of ``model`` exported to ONNX and run by ONNX Runtime on a zero batch."""
    x = torch.zeros(batch, 3, imgsz, imgsz)
    session = _ort_session(model, x, workdir / f"m{id(model)}_{batch}.onnx")
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


TORCH_FORMS = ("_unfused", "_fused", "_single_path")


def _time_forms(
    entries: list[dict],
    device: torch.device,
    dtype: torch.dtype,
    imgsz: int,
    rounds: dict[int, int],
    warmup: int,
    prefix: str,
    extra=None,
) -> None:
    """Time every model form in PyTorch on one device and dtype, batch 1 and 8, interleaved; results into ``entries``.

    Keys are ``{prefix}{form}_b{batch}`` (e.g. ``torch_fused_b1``, ``cuda_fp16_unfused_b8``); ``extra(entry, batch)``
    may add runners of other engines, keyed ``{engine}_b{batch}`` (e.g. ``onnxruntime_fused_b1``).
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    placed = {
        (e["model"], form): e[form]
        if (device.type, dtype) == ("cpu", torch.float32)
        else _placed(e[form], device, dtype)
        for e in entries
        for form in TORCH_FORMS
        if form in e
    }
    with torch.no_grad():
        for batch, repeats in rounds.items():
            x = torch.zeros(batch, 3, imgsz, imgsz, device=device, dtype=dtype)
            runners = {}
            for e in entries:
                for form in TORCH_FORMS:
                    if form in e:
                        m = placed[(e["model"], form)]
                        runners[(e["model"], f"{prefix}{form}_b{batch}")] = lambda m=m, x=x: (m(x), sync())
                for key, run in (extra(e, batch) if extra else {}).items():
                    runners[(e["model"], f"{key}_b{batch}")] = run
            timed = _timed_interleaved(runners, repeats, warmup, f"benchmark: {prefix} batch {batch}")
            for (name, key), stats in timed.items():
                next(e for e in entries if e["model"] == name)[key] = stats


def _placed(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()


def _engine_runner(wrapper, fmt: str, batch: int, imgsz: int, device: torch.device, half: bool, workdir: Path):
    """Export a model with Ultralytics' exporter (e.g. ``engine``: TensorRT) and return a runner of its AutoBackend.

    Ultralytics names an export after the model's ``pt_path``; pointing it into ``workdir`` keeps the export there
    (a model built from a packaged YAML would otherwise export beside the working directory's bare YAML name).
    """
    from ultralytics.nn.autobackend import AutoBackend

    stem = Path(wrapper.model.yaml.get("yaml_file", "model")).stem
    wrapper.model.pt_path = str(workdir / f"{stem}_b{batch}.pt")
    try:
        file = wrapper.export(
            format=fmt,
            imgsz=imgsz,
            batch=batch,
            half=half,
            device=(device.index or 0) if device.type == "cuda" else "cpu",
        )
    finally:
        del wrapper.model.pt_path
    backend = AutoBackend(file, device, fp16=half, fuse=True, verbose=False)  # positional: the first is renamed in 8.3
    x = torch.zeros(batch, 3, imgsz, imgsz, device=device, dtype=torch.half if half else torch.float32)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return lambda: (backend(x), sync())


def _cuda(entries: list[dict], imgsz: int, rounds: dict[int, int], warmup: int, steps: int, workdir: Path) -> None:
    """The CPU measurements again on CUDA in fp16: PyTorch latency, training step and peak memory, TensorRT if any."""
    import importlib.util

    device = torch.device("cuda", torch.cuda.current_device())
    tensorrt = importlib.util.find_spec("tensorrt") is not None

    def engines(e, batch):
        if not tensorrt:
            return {}
        return {"tensorrt_fp16_fused": _engine_runner(e["_yolo"], "engine", batch, imgsz, device, True, workdir)}

    _time_forms(entries, device, torch.half, imgsz, rounds, warmup, "cuda_fp16", engines)
    for e in entries:
        e["gflops_per_s_cuda_fp16_b1"] = e["fused_gflops"] / (e["cuda_fp16_fused_b1"]["median_ms"] / 1e3)
        if "tensorrt_fp16_fused_b1" in e:
            e["gflops_per_s_tensorrt_fp16_b1"] = e["fused_gflops"] / (e["tensorrt_fp16_fused_b1"]["median_ms"] / 1e3)
        e["train_b8_cuda_fp16"] = _train_step(e["_unfused"], 8, imgsz, steps, device)


ACTIVATION_OPS = frozenset({"Relu", "Sigmoid", "QuickGelu", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Gelu"})
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "Transpose", "Reshape"})


@torch.no_grad()
def _conv_work(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, float]]:
    """Conv layers and their GFLOPs (2 per multiply-add) by kernel size, from the model's own forward on ``x``."""
    work = {kind: [0, 0.0] for kind in ("3x3", "1x1", "other")}

    def count(module, inputs, output):
        transpose = isinstance(module, nn.ConvTranspose2d)
        # multiply-adds: every weight once per output pixel (Conv) or per input pixel (ConvTranspose)
        shape = inputs[0].shape if transpose else output.shape
        kind = "other" if transpose else {(1, 1): "1x1", (3, 3): "3x3"}.get(tuple(module.kernel_size), "other")
        work[kind][0] += 1
        work[kind][1] += 2 * math.prod((shape[0], *shape[2:])) * module.weight.numel() / 1e9

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {kind: (nodes, gflops) for kind, (nodes, gflops) in work.items()}


def onnxruntime_profile(fused: nn.Module, imgsz: int, workdir: Path, runs: int, name: str = "model") -> dict:
    """Where ONNX Runtime spends a fused model's batch-1 time, per node, profiled inside the whole model.

    The model is exported as for the latency measurement and run ``runs`` times (after one warm-up run) with ONNX
    Runtime's profiler and the benchmark's session settings; each node's time is its median over the runs. Convolution
    nodes (``Conv``, ``FusedConv``, ``ConvTranspose``: ONNX Runtime may fuse a ReLU into its conv, not a SiLU) are
    grouped by kernel size with their GFLOPs (2 per multiply-add, from the node's weight and output shapes) and
    achieved GFLOP/s; the other nodes are activations, layout changes (NCHW <-> blocked-channel reorders, reshapes)
    and the rest (concatenation, split, pooling, upsampling, the head's decode), in milliseconds.

    Returns:
        (dict): ``3x3``, ``1x1``, ``other`` (conv groups: ``nodes``, ``gflops``, ``ms``, ``gflops_per_s``),
        ``activation_ms``, ``layout_ms``, ``rest_ms``, ``total_ms`` (sum of node times) and ``conv_share``.
    """
    x = torch.zeros(1, 3, imgsz, imgsz)
    session = _ort_session(fused, x, workdir / f"{name}_profile.onnx", profile=True)
    for _ in range(runs + 1):
        session.run(None, {"images": x.numpy()})
    events = json.loads(Path(session.end_profiling()).read_text())
    durations: dict[str, list[float]] = {}
    args: dict[str, dict] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations.setdefault(event["name"], []).append(event["dur"] / 1e3)
            args[event["name"]] = event["args"]
    out = {kind: {"nodes": 0, "gflops": 0.0, "ms": 0.0} for kind in ("3x3", "1x1", "other")}
    out.update(activation_ms=0.0, layout_ms=0.0, rest_ms=0.0)
    for node, times in durations.items():
        ms = statistics.median(times[1:] or times)  # the first run warms up
        op = args[node].get("op_name", "")
        if op in {"Conv", "FusedConv", "ConvTranspose"}:
            # Only the time comes from the profile: ONNX Runtime's blocked-channel (NCHWc) kernels report channels
            # padded to their block size (16 with AVX-512), so the work is counted from the model's forward instead.
            weight = next(iter(args[node]["input_type_shape"][1].values()))
            kind = {(1, 1): "1x1", (3, 3): "3x3"}.get(tuple(weight[-2:]), "other") if op != "ConvTranspose" else "other"
            out[kind]["ms"] += ms
        elif op in ACTIVATION_OPS:
            out["activation_ms"] += ms
        elif op in LAYOUT_OPS:
            out["layout_ms"] += ms
        else:
            out["rest_ms"] += ms
    for kind, (nodes, gflops) in _conv_work(fused, x).items():
        out[kind]["nodes"], out[kind]["gflops"] = nodes, gflops
    for kind in ("3x3", "1x1", "other"):
        group = out[kind]
        group["gflops_per_s"] = group["gflops"] / (group["ms"] / 1e3) if group["ms"] > 0 else math.nan
    conv_ms = sum(out[k]["ms"] for k in ("3x3", "1x1", "other"))
    out["total_ms"] = conv_ms + out["activation_ms"] + out["layout_ms"] + out["rest_ms"]
    out["conv_share"] = conv_ms / out["total_ms"] if out["total_ms"] > 0 else math.nan
    return out


def _versus_counterpart(entries: list[dict]) -> None:
    """Training step time and memory of each plugin model as a ratio of its stock YOLOv8 counterpart's."""
    by = {e["model"]: e for e in entries}
    for e in entries:
        ref = by.get(COUNTERPART.get(e["model"], ""))
        if ref is None:
            continue
        versus = {"model": ref["model"]}
        for key, fields in (
            ("train_b8", ("step_ms", "activation_mib")),
            ("train_b8_cuda_fp16", ("step_ms", "peak_mib")),
        ):
            if key in e and key in ref:
                versus[key] = {f: e[key][f] / ref[key][f] for f in fields}
        e["versus_counterpart"] = versus


def _train_step(model: nn.Module, batch: int, imgsz: int, steps: int, device: torch.device | None = None) -> dict:
    """Time one forward+backward step on random data; measure the activations autograd saves and the peak memory.

    On CUDA the step runs under fp16 autocast, as Ultralytics trains there, and ``peak_mib`` is the allocator's peak;
    on the CPU there is no allocator peak to read, so ``activation_mib`` (bytes autograd saves) stands for memory.
    """
    device = device or torch.device("cpu")
    cuda = device.type == "cuda"
    model = copy.deepcopy(model).to(device).train()
    for p in model.parameters():
        p.requires_grad_(True)
    x = torch.rand(batch, 3, imgsz, imgsz, device=device)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    times, peaks = [], []
    for step in range(steps + 1):
        saved[0] = 0
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast(device.type, enabled=cuda):
            out = model(x)
            loss = sum(t.float().mean() for t in tensors(out))
        loss.backward()
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)
            peaks.append(torch.cuda.max_memory_allocated(device) / 2**20)
        if step:  # the first step warms up
            times.append((time.perf_counter() - t) * 1e3)
    result = {"step_ms": statistics.median(times), "activation_mib": saved[0] / 2**20}
    if cuda:
        result["peak_mib"] = max(peaks)
    return result


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

    imgsz, repeats, warmup, steps = (256, 3, 1, 1) if quick else (640, 30, 3, 3)
    repeats_b8 = 2 if quick else 5  # batch 8 is 8x slower: fewer rounds
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
        cpu = torch.device("cpu")
        rounds = {1: repeats, 8: repeats_b8}

        def onnxruntime(e: dict, batch: int) -> dict:
            return {"onnxruntime_fused": _onnx_session(e["_fused"], batch, imgsz, Path(tmp))}

        _time_forms(entries, cpu, torch.float32, imgsz, rounds, warmup, "torch", onnxruntime)
        for n, e in enumerate(TQDM(entries, desc="benchmark: ONNX Runtime profile")):
            e["profile_onnxruntime_b1"] = onnxruntime_profile(e["_fused"], imgsz, Path(tmp), repeats, f"model{n}")
        for e in TQDM(entries, desc="benchmark: training step"):
            e["train_b8"] = _train_step(e["_unfused"], 8, imgsz // 2, steps, cpu)
        if cuda:
            _cuda(entries, imgsz, rounds, warmup, steps, Path(tmp))
        for e in entries:
            e["fused_speedup_torch_b1"] = e["torch_unfused_b1"]["median_ms"] / e["torch_fused_b1"]["median_ms"]
            e["gflops_per_s_onnxruntime_b1"] = e["fused_gflops"] / (e["onnxruntime_fused_b1"]["median_ms"] / 1e3)
            if "_single_path" in e:
                e["fused_vs_single_path_torch_b1"] = (
                    e["torch_fused_b1"]["median_ms"] / e["torch_single_path_b1"]["median_ms"]
                )
            for key in [k for k in e if k.startswith("_")]:
                e.pop(key)
            report["models"].append(e)
        _versus_counterpart(report["models"])
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


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """A table cell: ``-`` for a value that does not apply."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{spec}}{suffix}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _median(entry: dict, key: str) -> float | None:
    return entry.get(key, {}).get("median_ms")


def _markdown(report: dict) -> str:
    m = report["machine"]
    s = report["settings"]
    models = report["models"]
    lines = [
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs ({m['torch_threads']} torch threads), torch {m['torch']}"
        f"{', ' + m['cuda'] if m['cuda'] else ', no GPU'}; {s['imgsz']} px; medians of {s['repeats_b1']} (batch 1) and "
        f"{s['repeats_b8']} (batch 8) interleaved rounds after warm-up.",
        "",
        "| model | GFLOPs (train / fused) | PyTorch b1 unfused / fused (ms) | fused speedup | single-path b1 (ms) | "
        "fused / single-path | ORT b1 / b8 (ms) | ORT GFLOP/s | train step b8 (ms) | activations (MiB) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in models:
        lines.append(
            _row(
                f"`{e['model']}`",
                f"{e['gflops']:.1f} / {e['fused_gflops']:.1f}",
                f"{_median(e, 'torch_unfused_b1'):.1f} / {_median(e, 'torch_fused_b1'):.1f}",
                f"{e['fused_speedup_torch_b1']:.2f}x",
                _fmt(_median(e, "torch_single_path_b1"), ".1f"),
                _fmt(e.get("fused_vs_single_path_torch_b1"), ".3f"),
                f"{_median(e, 'onnxruntime_fused_b1'):.1f} / {_median(e, 'onnxruntime_fused_b8'):.1f}",
                f"{e['gflops_per_s_onnxruntime_b1']:.1f}",
                f"{e['train_b8']['step_ms']:.0f}",
                f"{e['train_b8']['activation_mib']:.0f}",
            )
        )
    versus = [e for e in models if "train_b8" in e.get("versus_counterpart", {})]
    if versus:
        lines += [
            "",
            "Training cost against the stock YOLOv8 counterpart (ratios; batch 8, half the benchmark resolution):",
            "",
            "| model | vs | train step time | activation memory |"
            + (" CUDA fp16 step time | CUDA peak memory |" if m["cuda"] else ""),
            "|---|---|--:|--:|" + ("--:|--:|" if m["cuda"] else ""),
        ]
        for e in versus:
            v = e["versus_counterpart"]
            cells = [f"`{e['model']}`", f"`{v['model']}`"]
            cells += [f"{v['train_b8'][k]:.2f}x" for k in ("step_ms", "activation_mib")]
            if m["cuda"]:
                c = v.get("train_b8_cuda_fp16", {})
                cells += [_fmt(c.get(k), ".2f", "x") for k in ("step_ms", "peak_mib")]
            lines.append(_row(*cells))
    lines += _density_markdown(models)
    if m["cuda"]:
        lines += _cuda_markdown(models)
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
        *(f"| {k} | {_fmt(v, '.3f')} |" for k, v in report["targets"].items()),
    ]
    return "\n".join(lines) + "\n"


def _density_markdown(models: list[dict]) -> list[str]:
    """Where ONNX Runtime's batch-1 time goes, per model: convolutions by kernel size, and the other nodes."""
    rows = [e for e in models if "profile_onnxruntime_b1" in e]
    if not rows:
        return []
    lines = [
        "",
        "Compute density in ONNX Runtime, batch 1, from its profiler (each node's median time inside the whole fused "
        "model): convolutions by kernel size (GFLOPs / ms / achieved GFLOP/s), their share of the node time, and the "
        "time in activations not fused into a conv (SiLU), layout reorders and the other nodes (concat, split, "
        "pooling, upsampling, the head's decode).",
        "",
        "| model | 3x3 convs | 1x1 convs | conv share | activations (ms) | layout (ms) | other nodes (ms) | "
        "node total (ms) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in rows:
        d = e["profile_onnxruntime_b1"]
        groups = (
            f"{d[k]['gflops']:.2f} / {d[k]['ms']:.1f} / {_fmt(d[k]['gflops_per_s'], '.0f')}" for k in ("3x3", "1x1")
        )
        lines.append(
            _row(
                f"`{e['model']}`",
                *groups,
                f"{d['conv_share']:.0%}",
                *(f"{d[k]:.1f}" for k in ("activation_ms", "layout_ms", "rest_ms", "total_ms")),
            )
        )
    return lines


def _cuda_markdown(models: list[dict]) -> list[str]:
    lines = [
        "",
        "CUDA, fp16 (PyTorch; TensorRT through Ultralytics' `engine` export where TensorRT is installed):",
        "",
        "| model | PyTorch b1 unfused / fused (ms) | fused speedup | single-path b1 (ms) | PyTorch b8 fused (ms) | "
        "TensorRT b1 / b8 (ms) | GFLOP/s PyTorch / TensorRT | train step b8 (ms) | peak memory (MiB) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in models:
        unfused, fused = _median(e, "cuda_fp16_unfused_b1"), _median(e, "cuda_fp16_fused_b1")
        train = e.get("train_b8_cuda_fp16", {})
        trt = (_fmt(_median(e, f"tensorrt_fp16_fused_b{b}"), ".2f") for b in (1, 8))
        gflops_per_s = (_fmt(e.get(f"gflops_per_s_{k}_fp16_b1"), ".0f") for k in ("cuda", "tensorrt"))
        lines.append(
            _row(
                f"`{e['model']}`",
                f"{unfused:.2f} / {fused:.2f}",
                f"{unfused / fused:.2f}x",
                _fmt(_median(e, "cuda_fp16_single_path_b1"), ".2f"),
                _fmt(_median(e, "cuda_fp16_fused_b8"), ".2f"),
                " / ".join(trt),
                " / ".join(gflops_per_s),
                _fmt(train.get("step_ms"), ".0f"),
                _fmt(train.get("peak_mib"), ".0f"),
            )
        )
    return lines


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
