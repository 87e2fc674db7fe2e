"""The model zoo: every shipped model YAML at every scale, its size and compute, and the README tables built from them.

``python -m yolo_efficientrep.zoo`` rewrites the tables in ``README.md`` between their ``<!-- generated:... -->``
markers, so no number in them is typed by hand; ``tests/test_zoo.py`` fails when the committed tables are out of date.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = (
    "COUNTERPARTS",
    "MIN_ULTRALYTICS",
    "MODEL_FAMILIES",
    "SCALES",
    "YOLOV6_V3",
    "CheckResult",
    "ModelStats",
    "check_model",
    "counterpart",
    "min_ultralytics",
    "measure",
    "model_stats",
    "render_tables",
    "scaled_name",
    "yolov6_comparison",
)

SCALES = "nsmlx"
# Shipped model YAMLs (without the scale letter), detection families first, then the task variants.
MODEL_FAMILIES = (
    "yolov8-efficientrep",
    "yolov8-cspbep",
    "yolov8-reppan",
    "yolov6-efficientrep",
    "yolov6-cspbep",
    "yolo11-efficientrep",
    "yolo26-efficientrep",
    "yolov8-efficientrep-qa",
    "yolov8-efficientrep-seg",
    "yolov8-efficientrep-pose",
    "yolov8-efficientrep-obb",
    "yolov8-efficientrep-cls",
    "yolo26-efficientrep-seg",
    "yolo26-efficientrep-pose",
    "yolo26-efficientrep-obb",
    "yolo26-efficientrep-cls",
)
STOCK_FAMILIES = ("yolov8", "yolov6", "yolo11", "yolo26")
# Families built on stock modules newer than the oldest supported Ultralytics (8.1): the release each needs (YOLO11's
# C3k2/C2PSA came with 8.3.0, YOLO26's end-to-end heads with 8.4.0). The integration refuses them on older releases
# with a message naming that release, found from the YAML itself; this table states it for docs, tests and `check`.
MIN_ULTRALYTICS = {
    "yolo11-efficientrep": "8.3.0",
    "yolo26-efficientrep": "8.4.0",
    "yolo26-efficientrep-seg": "8.4.0",
    "yolo26-efficientrep-pose": "8.4.0",
    "yolo26-efficientrep-obb": "8.4.0",
    "yolo26-efficientrep-cls": "8.3.0",  # stock yolo26-cls.yaml has no end-to-end head: C2PSA is the newest module
}
# The stock Ultralytics family each shipped family is sized against (its YAML header states both models' fused GFLOPs);
# benchmarks compare the n models with these. The faithful YOLOv6 families compare with the official YOLOv6 models
# instead (YOLOV6_V3, the yolov6 table), not with Ultralytics' unrelated yolov6.yaml.
COUNTERPARTS = {
    "yolov8-efficientrep": "yolov8",
    "yolov8-cspbep": "yolov8",
    "yolov8-reppan": "yolov8",
    "yolo11-efficientrep": "yolo11",
    "yolo26-efficientrep": "yolo26",
    "yolov8-efficientrep-qa": "yolov8",
    "yolov8-efficientrep-seg": "yolov8-seg",
    "yolov8-efficientrep-pose": "yolov8-pose",
    "yolov8-efficientrep-obb": "yolov8-obb",
    "yolov8-efficientrep-cls": "yolov8-cls",
    "yolo26-efficientrep-seg": "yolo26-seg",
    "yolo26-efficientrep-pose": "yolo26-pose",
    "yolo26-efficientrep-obb": "yolo26-obb",
    "yolo26-efficientrep-cls": "yolo26-cls",
}

# YOLOv6 v3.0 (meituan/YOLOv6 README, 640): parameters of the deployed (fused) models as YOLOv6's own code counts them
# (its README rounds them to 4.7 / 18.5 / 34.9 / 59.6 M) and the published GFLOPs.
YOLOV6_V3 = {
    "n": {"family": "yolov6-efficientrep", "params": 4.65e6, "gflops": 11.4},
    "s": {"family": "yolov6-efficientrep", "params": 18.54e6, "gflops": 45.3},
    "m": {"family": "yolov6-cspbep", "params": 34.86e6, "gflops": 85.8},
    "l": {"family": "yolov6-cspbep", "params": 59.61e6, "gflops": 150.7},
}


@dataclass
class ModelStats:
    """Size and compute of one model, in training form and after ``model.fuse()``."""

    name: str
    task: str
    layers: int
    params: int
    gflops: float
    fused_layers: int
    fused_params: int
    fused_gflops: float


def scaled_name(family: str, scale: str) -> str:
    """``yolov8-efficientrep-seg`` + ``n`` -> ``yolov8n-efficientrep-seg.yaml`` (Ultralytics' scale-letter naming)."""
    return re.sub(r"^(yolov?\d+)", rf"\g<1>{scale}", family) + ".yaml"


def counterpart(name: str) -> str | None:
    """The stock model a shipped model is sized against: ``yolo26n-efficientrep.yaml`` -> ``yolo26n.yaml`` (or None)."""
    match = re.fullmatch(r"(yolov?\d+)([nsmlx])(-.+)\.yaml", Path(name).name)
    family = f"{match[1]}{match[3]}" if match else None
    stock = COUNTERPARTS.get(family)
    return scaled_name(stock, match[2]) if stock else None


def min_ultralytics(name: str) -> str:
    """The oldest Ultralytics a shipped family or model builds with: ``yolo26n-efficientrep.yaml`` -> ``8.4.0``."""
    match = re.fullmatch(r"(yolov?\d+)[nsmlx]?(-.+?)(\.yaml)?", Path(name).name)
    family = f"{match[1]}{match[2]}" if match else name
    return MIN_ULTRALYTICS.get(family, "8.1.0")


def measure(model: nn.Module, imgsz: int) -> tuple[int, int, float]:
    """Layers (leaf modules, as Ultralytics' ``info()`` counts them), parameters and GFLOPs (Ultralytics' counter)."""
    from ultralytics.utils.torch_utils import get_flops

    layers = sum(1 for m in model.modules() if not m._modules)
    return layers, sum(p.numel() for p in model.parameters()), get_flops(model, imgsz)


def model_stats(name: str, imgsz: int = 640) -> ModelStats:
    """Build ``name`` with stock ``YOLO`` and measure it before and after Ultralytics' own ``fuse()``."""
    from ultralytics import YOLO

    wrapper = YOLO(name)
    trained = measure(wrapper.model, imgsz)
    fused = measure(wrapper.model.fuse(verbose=False), imgsz)
    return ModelStats(name, wrapper.task, *trained, *fused)


def yolov6_comparison(imgsz: int = 640) -> list[dict]:
    """Compare each whole fused yolov6-* model (backbone, neck and EffiDeHead) with the official YOLOv6 v3 model."""
    from ultralytics import YOLO

    rows = []
    for scale, ref in YOLOV6_V3.items():
        name = scaled_name(ref["family"], scale)
        _, params, gflops = measure(YOLO(name).model.fuse(verbose=False), imgsz)
        rows.append(
            {
                "model": f"YOLOv6-{scale.upper()} v3.0",
                "yaml": name,
                "official_params": ref["params"],
                "official_gflops": ref["gflops"],
                "params": params,
                "gflops": gflops,
                "params_ratio": params / ref["params"],
                "gflops_ratio": gflops / ref["gflops"],
            }
        )
    return rows


def _zoo_table(stats: list[ModelStats]) -> str:
    lines = [
        "| model | task | layers | params (M) | GFLOPs | fused layers | fused params (M) | fused GFLOPs | "
        "fused GFLOPs vs stock |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    by_name = {s.name: s for s in stats}
    for s in stats:
        ref = by_name.get(counterpart(s.name) or "")  # stock rows in the table: the detection families
        versus = f"{s.fused_gflops / ref.fused_gflops:.2f}x `{ref.name}`" if ref else "-"
        lines.append(
            f"| `{s.name}` | {s.task} | {s.layers} | {s.params / 1e6:.2f} | {s.gflops:.1f} | {s.fused_layers} | "
            f"{s.fused_params / 1e6:.2f} | {s.fused_gflops:.1f} | {versus} |"
        )
    return "\n".join(lines)


def _yolov6_table(rows: list[dict]) -> str:
    lines = [
        "| official model | plugin YAML | official params (M) | plugin params (M) | ratio | official GFLOPs | "
        "plugin GFLOPs | ratio |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | `{r['yaml']}` | {r['official_params'] / 1e6:.2f} | {r['params'] / 1e6:.2f} | "
            f"{r['params_ratio']:.3f} | {r['official_gflops']:.2f} | {r['gflops']:.2f} | {r['gflops_ratio']:.3f} |"
        )
    return "\n".join(lines)


def render_tables() -> dict[str, str]:
    """Compute every table: ``{"models": ..., "yolov6": ...}`` as Markdown."""
    import ultralytics

    names = [scaled_name(f, s) for f in MODEL_FAMILIES + STOCK_FAMILIES for s in SCALES]
    note = f"\n\n<sub>Generated by `python -m yolo_efficientrep.zoo` with ultralytics {ultralytics.__version__}.</sub>"
    return {
        "models": _zoo_table([model_stats(n) for n in names]) + note,
        "yolov6": _yolov6_table(yolov6_comparison()) + note,
    }


def update_readme(readme: Path, tables: dict[str, str]) -> str:
    """Return ``readme``'s text with each table placed between its ``<!-- generated:NAME -->`` markers."""
    text = readme.read_text()
    for key, table in tables.items():
        start, end = f"<!-- generated:{key} -->", f"<!-- /generated:{key} -->"
        if start not in text or end not in text:
            raise ValueError(f"{readme} has no {start} ... {end} markers for the '{key}' table")
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
    return text


def main(argv: list[str] | None = None) -> None:
    """Regenerate the README tables (``--check`` only reports whether they are current)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README tables are out of date")
    args = parser.parse_args(argv)
    text = update_readme(args.readme, render_tables())
    if args.check:
        raise SystemExit(0 if text == args.readme.read_text() else 1)
    args.readme.write_text(text)


if __name__ == "__main__":
    main()


@dataclass
class CheckResult:
    """Outcome of ``check_model``: does a YAML build through stock Ultralytics and fuse exactly."""

    name: str
    plugin_blocks: int
    rep_units: int
    batchnorms_left: int
    max_rel_error: float
    ok: bool
    error: str = ""
    skipped: str = ""  # why the model was not built: it needs a newer Ultralytics than the installed one


def check_model(name: str, imgsz: int = 96, rtol: float = 1e-4) -> CheckResult:
    """Build ``name`` through stock ``YOLO``, randomize every BN, and compare outputs before/after ``model.fuse()``."""
    from ultralytics import YOLO

    from ._utils import randomize_batchnorm
    from .blocks import RepVGGBlock
    from .integration import BLOCKS, UnsupportedVersionError

    try:
        model = YOLO(name).model.eval()
        plugin = tuple(cls for cls, _ in BLOCKS.values())
        blocks_used = sum(isinstance(m, plugin) for m in model.model)
        reps = sum(isinstance(m, RepVGGBlock) for m in model.modules())  # QARepVGGBlock(V2) included
        randomize_batchnorm(model, seed=0)
        with torch.no_grad():
            x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
            before = _first_tensor(model(x))
            model.fuse(verbose=False)
            after = _first_tensor(model(x))
        left = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        error = ((after - before).abs().max() / before.abs().max().clamp_min(1e-12)).item()
        return CheckResult(name, blocks_used, reps, left, error, blocks_used > 0 and left == 0 and error <= rtol)
    except UnsupportedVersionError as e:  # a family for a newer Ultralytics: reported, not a failure of the plugin
        return CheckResult(name, 0, 0, -1, float("nan"), False, skipped=str(e))
    except Exception as e:  # reported as a failed row, the check goes on with the next model
        return CheckResult(name, 0, 0, -1, float("nan"), False, f"{type(e).__name__}: {e}")


def _first_tensor(y):
    while isinstance(y, (list, tuple)):
        y = y[0]
    return y
