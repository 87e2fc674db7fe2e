"""Render the benchmark's ``report.json`` (written by ``measure.py``) without measuring anything again.

    python benchmarks/render.py [report=docs/benchmarks/report.json] [out=docs/benchmarks] [readme=README.md]

writes ``report.md`` and the plots to ``out`` and, with ``readme=``, the report into that README's
``<!-- generated:benchmark -->`` section (the rest of the README is kept byte for byte; a README without the markers
is an error and is left untouched).

Every ratio is printed with its spread: the median of per-round ratios and, in parentheses, their interquartile range,
rounded to the decimal the IQR supports (IQR 0.05 -> two decimals, 0.3 -> one).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

__all__ = ("fmt_ratio", "markdown", "plots", "render", "write_readme")


def _decimals(iqr: float | None) -> int:
    """Decimals a value with this spread supports: the first significant digit of the IQR, from 0 to 3."""
    if iqr is None or not math.isfinite(iqr) or iqr <= 0:
        return 3 if iqr == 0 else 2
    return min(3, max(0, -math.floor(math.log10(iqr))))


def fmt_ratio(r: dict | float | None, suffix: str = "x") -> str:
    """``{median, iqr}`` as ``1.87x (0.05)``, rounded to what the IQR supports; a plain number to two decimals."""
    if r is None:
        return "-"
    if not isinstance(r, dict):
        return "-" if isinstance(r, float) and math.isnan(r) else f"{r:.2f}{suffix}"
    if r["median"] is None or (isinstance(r["median"], float) and math.isnan(r["median"])):
        return "-"
    d = _decimals(r.get("iqr"))
    spread = f" ({r['iqr']:.{d}f})" if r.get("iqr") is not None else ""
    return f"{r['median']:.{d}f}{suffix}{spread}"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """A table cell: ``-`` for a value that does not apply."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{spec}}{suffix}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _median(entry: dict, key: str) -> float | None:
    return entry.get(key, {}).get("median_ms")


def markdown(report: dict) -> str:
    """The report as Markdown (``report.md`` and the README's benchmark section)."""
    m, s, models = report["machine"], report["settings"], report["models"]
    load = lambda key: " / ".join(f"{v:.2f}" for v in m[key]) if key in m else "not recorded"  # noqa: E731
    lines = [
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs ({m['torch_threads']} torch threads, ONNX Runtime "
        f"threads {m.get('onnxruntime_threads', 'default')}), torch {m['torch']}"
        f"{', ' + m['cuda'] if m['cuda'] else ', no GPU'}; load average (1 / 5 / 15 min) {load('loadavg_start')} at "
        f"the start, {load('loadavg_end')} at the end (a shared machine: other jobs ran beside this one). "
        f"{s['imgsz']} px; medians of {s['repeats_b1']} (batch 1) and {s['repeats_b8']} (batch 8) rounds after "
        f"{s['warmup']} warm-up calls; every runner once per round, in an order shuffled every round (seed "
        f"{s.get('seed', '-')}, orders in report.json); ONNX Runtime with thread spin-waiting off. Ratios: median of "
        "per-round ratios (IQR)." + (f" Run time {s['wall_s'] / 60:.0f} min." if "wall_s" in s else ""),
    ]
    for skip in report.get("skipped", []):
        lines += ["", f"Skipped `{skip['model']}`: it does not build here ({skip['error']})."]
    lines += [
        "",
        "| model | GFLOPs (train / fused) | PyTorch b1 unfused / fused (ms) | fused speedup | "
        "conv-only stack b1 (ms) | fused / conv-only | ORT b1 / b8 (ms) | ORT GFLOP/s | train step b8 (ms) | "
        "activations (MiB) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in models:
        lines.append(
            _row(
                f"`{e['model']}`",
                f"{e['gflops']:.1f} / {e['fused_gflops']:.1f}",
                f"{_median(e, 'torch_unfused_b1'):.1f} / {_median(e, 'torch_fused_b1'):.1f}",
                fmt_ratio(e["fused_speedup_torch_b1"]),
                _fmt(_median(e, "torch_plain_b1"), ".1f"),
                fmt_ratio(e.get("fused_vs_plain_torch_b1")),
                f"{_median(e, 'onnxruntime_fused_b1'):.1f} / {_median(e, 'onnxruntime_fused_b8'):.1f}",
                f"{e['gflops_per_s_onnxruntime_b1']:.0f}",
                f"{e['train_b8']['step_ms']['median_ms']:.0f}",
                f"{e['train_b8']['activation_mib']:.0f}",
            )
        )
    lines += [
        "",
        "Conv-only stack: every convolution of the fused model with its activation, rebuilt from plain `torch.nn` "
        "modules (no plugin, no Ultralytics) and run one after another on inputs of the shapes they see in the model. "
        "Fused / conv-only is what a model costs beyond its convolutions and activations (concatenation, split, "
        "upsampling, pooling, attention arithmetic, the head's decode, module dispatch); it replaces the former "
        "'fused vs single-path' figure, which timed the fused graph against the same graph rebuilt from stock "
        "modules and so measured nothing. Activations: bytes autograd saves for backward, each storage once, "
        f"parameters excluded (batch 8, {s.get('train_imgsz', s['imgsz'] // 2)} px; the input batch included).",
    ]
    versus = [e for e in models if "versus_counterpart" in e]
    if versus:
        lines += [
            "",
            "Against the stock counterpart (ratios, median of per-round ratios (IQR); training: batch 8, "
            f"{s.get('train_imgsz', s['imgsz'] // 2)} px, {s.get('train_rounds', '-')} shuffled rounds):",
            "",
            "| model | vs | ORT b1 latency | ORT GFLOP/s | train step time | activation memory |"
            + (" CUDA fp16 step time |" if m["cuda"] else ""),
            "|---|---|--:|--:|--:|--:|" + ("--:|" if m["cuda"] else ""),
        ]
        for e in versus:
            v = e["versus_counterpart"]
            cells = [
                f"`{e['model']}`",
                f"`{v['model']}`",
                fmt_ratio(v["onnxruntime_b1_latency"]),
                fmt_ratio(v["onnxruntime_b1_gflops_per_s"]),
                fmt_ratio(v["train_b8_step"]),
                fmt_ratio(v["train_b8_activation_memory"]),
            ]
            if m["cuda"]:
                cells.append(fmt_ratio(v.get("train_b8_cuda_fp16_step")))
            lines.append(_row(*cells))
    lines += _density_markdown(models)
    if m["cuda"]:
        lines += _cuda_markdown(models)
    if "accuracy" in report:
        lines += _accuracy_markdown(report["accuracy"])
    st = report["startup"]
    lines += [
        "",
        f"Interpreter start-up: {st['with_plugin']:.1f} ms with the plugin's hook, {st['without_plugin']:.1f} ms "
        f"without (difference {fmt_ratio(st.get('difference', st['difference_ms']), ' ms')}).",
        "",
        "| target | measured (IQR) |",
        "|---|--:|",
        *(f"| {k} | {fmt_ratio(v, '')} |" for k, v in report["targets"].items()),
    ]
    return "\n".join(lines) + "\n"


def _accuracy_markdown(a: dict) -> list[str]:
    names = [k for k in a if k.endswith(".yaml")]
    recipe = ", ".join(f"{k}={v}" for k, v in a["recipe"].items())
    accs = ", ".join(f"{n.removesuffix('.yaml')} {a[n]['map50_95']:.4f}" for n in names)
    rect = ", ".join(f"{a[n]['map50_95_rect']:.4f}" for n in names if "map50_95_rect" in a[n])
    onnx = [abs(a[n]["map50_95"] - a["int8"][n]["fp32"]["map50_95"]) for n in names if "fp32" in a["int8"].get(n, {})]
    agree = f" (largest difference here {max(onnx):.4f}, export rounding)" if onnx else ""
    lines = [
        "",
        f"Accuracy, fixed recipe ({recipe}): mAP50-95 {accs} (plugin / stock ratio {a['ratio']:.2f}). These FP32 "
        "numbers are PyTorch validations of `best.pt` at batch 1 with a square input (`rect=False`), as the INT8 "
        f"table's ONNX validations run, so they match the table's FP32 column{agree}. Ultralytics' default "
        "validation (`rect=True`, the recipe's batch) letterboxes each batch to a rectangle padded by half a stride, "
        f"a larger input (192 px for these 160 px images at imgsz 160), and reads {rect or '-'}: that different "
        "input size is why the previous report's accuracy line (0.1394, default validation) and INT8 table (0.1541, "
        "ONNX at the square input) disagreed for one checkpoint.",
    ]
    return lines + _int8_markdown(a["int8"])


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
        "| model | PyTorch b1 unfused / fused (ms) | conv-only b1 (ms) | PyTorch b8 fused (ms) | "
        "TensorRT b1 / b8 (ms) | GFLOP/s PyTorch / TensorRT | train step b8 (ms) | peak memory (MiB) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in models:
        train = e.get("train_b8_cuda_fp16", {})
        trt = (_fmt(_median(e, f"tensorrt_fp16_fused_b{b}"), ".2f") for b in (1, 8))
        gflops_per_s = (_fmt(e.get(f"gflops_per_s_{k}_fp16_b1"), ".0f") for k in ("cuda", "tensorrt"))
        lines.append(
            _row(
                f"`{e['model']}`",
                f"{_median(e, 'cuda_fp16_unfused_b1'):.2f} / {_median(e, 'cuda_fp16_fused_b1'):.2f}",
                _fmt(_median(e, "cuda_fp16_plain_b1"), ".2f"),
                _fmt(_median(e, "cuda_fp16_fused_b8"), ".2f"),
                " / ".join(trt),
                " / ".join(gflops_per_s),
                _fmt(train.get("step_ms", {}).get("median_ms"), ".0f"),
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
        f"Drop and drift are against the {settings['reference']} (validated at batch 1, square input); drift is the "
        "relative L2 change of the raw class-score outputs on validation images; speed-up is FP32 ONNX Runtime "
        "latency / INT8 latency (batch 1, medians of shuffled rounds).",
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


def plots(report: dict, out: Path) -> None:
    """``latency_vs_gflops.png`` and ``fused_speedup.png`` (with the per-round ratios' quartiles as error bars)."""
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
    ax.legend(fontsize=5)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_gflops.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3))
    names = [e["model"].removesuffix(".yaml") for e in models]
    ratios = [e["fused_speedup_torch_b1"] for e in models]
    ax.bar(names, [r["median"] for r in ratios], yerr=[r["iqr"] / 2 for r in ratios], capsize=3)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_ylabel("unfused / fused latency")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "fused_speedup.png", dpi=120)
    plt.close(fig)


def write_readme(readme: str | Path, text: str) -> None:
    """Put ``text`` between ``readme``'s benchmark markers; the rest stays byte for byte (no markers: ValueError)."""
    from yolo_efficientrep.zoo import update_readme

    readme = Path(readme)
    readme.write_text(update_readme(readme, {"benchmark": text.rstrip("\n")}))


def render(report: str | Path | dict, out: str | Path, readme: str | Path | None = None) -> str:
    """Write ``report.md`` and the plots to ``out`` (and the README section) from a report; returns the Markdown."""
    from yolo_efficientrep.zoo import update_readme

    if readme is not None:  # first: a README without the markers fails before anything is written
        update_readme(Path(readme), {"benchmark": ""})
    report = report if isinstance(report, dict) else json.loads(Path(report).read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    if readme is not None:
        write_readme(readme, text)
    (out / "report.md").write_text(text)
    plots(report, out)
    return text


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/render.py [report=...] [out=...] [readme=...]``."""
    from options import parse_options

    options = parse_options(argv, {"report": str, "out": str, "readme": str}, "render.py")
    out = options.get("out", "docs/benchmarks")
    render(options.get("report", str(Path(out) / "report.json")), out, options.get("readme"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
