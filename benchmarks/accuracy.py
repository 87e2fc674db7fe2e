"""Accuracy study: which activation (and, for yolov8n-efficientrep, which width) each YOLOv8-layout family should use.

The plugin's YOLOv8-layout models have no pretrained weights, so users train them from scratch, mostly on short
schedules; this study measures that regime on a task the project's models were never tuned on, against stock
yolov8n (and yolo11n for reference), and records the trade-off table the README shows.

    python benchmarks/accuracy.py generate            # the "clutter" dataset (deterministic, offline)
    python benchmarks/accuracy.py train --variants screen --seeds 0 --jobs 2
    python benchmarks/accuracy.py train --variants confirm --seeds 0,1,2 --jobs 2
    python benchmarks/accuracy.py latency             # fused PyTorch CPU / ONNX Runtime / OpenVINO, 640 px, batch 1
    python benchmarks/accuracy.py render              # docs/benchmarks/accuracy.md and the README's generated block

Training results are appended to ``docs/benchmarks/accuracy.json`` run by run (a rerun skips what is recorded, so an
interrupted study continues where it stopped); ``render`` reads only that file.

The "clutter" dataset is harder than the quick start's ``shapes``: five classes (circle, ring, rotated rectangle,
rotated triangle, cross) from 14 to 72 px, two to seven per image, allowed to overlap (labels are the visible extent;
an object less than 40% visible is dropped), on textured backgrounds with unlabelled line and arc clutter, and a
lower colour contrast than ``shapes``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "benchmarks" / "accuracy.json"
REPORT = REPO / "docs" / "benchmarks" / "accuracy.md"
BEGIN, END = "<!-- generated:accuracy -->", "<!-- /generated:accuracy -->"

CLASSES = ("circle", "ring", "rectangle", "triangle", "cross")
DATA = {"n_train": 320, "n_val": 96, "size": 128, "seed": 2026}
# One fixed recipe for every model: Ultralytics' defaults except what a CPU run needs. nbs=16 (the nominal batch)
# makes every batch an optimizer step: with the default 64 a 320-image epoch is only 5 steps. Earlier tries (seed 0)
# left yolov8n at mAP50-95 0.004-0.010, too little to rank models; with these objects (14-72 px) and 20 epochs it
# reaches 0.13-0.18 over 3 seeds, in 2.5-4 min per run on one core (two runs share a 2-core machine).
# val=False skips the per-epoch validation; the final epoch is validated all the same, and the recorded numbers come
# from a separate validation of last.pt in the same process.
RECIPE = {"epochs": 20, "imgsz": 128, "batch": 16, "nbs": 16, "device": "cpu", "workers": 0, "deterministic": True}
MIN_VISIBLE = 0.4  # an object less visible than this (after later objects cover it) is not labelled
MIN_CONTRAST = 72  # least max-channel difference between an object and the mean background under it

# name -> (shipped or stock YAML, top-level overrides). "relu": the plugin blocks' own ReLU, stock SPPF/Detect SiLU (no
# `activation:` key); "silu"/"hardswish" set the top-level `activation:` key, which switches every layer.
FAMILIES = ("yolov8-efficientrep", "yolov8-cspbep", "yolov8-reppan", "yolov8-efficientrep-qa")
ACTIVATIONS = {"relu": None, "silu": "nn.SiLU()", "hardswish": "nn.Hardswish()"}
STOCK = {"yolov8n": "yolov8n.yaml", "yolo11n": "yolo11n.yaml"}


def variants() -> dict[str, dict]:
    """Every model the study can train: stock references, each family x activation, and the width variants."""
    out = {name: {"yaml": yaml, "stock": True} for name, yaml in STOCK.items()}
    for family in FAMILIES:
        for act, spec in ACTIVATIONS.items():
            out[f"{family.replace('yolov8', 'yolov8n')}-{act}"] = {"family": family, "activation": spec}
    for width in (0.25, 0.225):
        for act in ("relu", "silu"):
            spec = ACTIVATIONS[act]
            out[f"yolov8n-efficientrep-w{width:g}-{act}"] = {
                "family": "yolov8-efficientrep",
                "activation": spec,
                "width": width,
            }
    return out


GROUPS = {
    # the flagship decision first, on every seed; then each family's activation on one seed
    "first": ["yolov8n", "yolov8n-efficientrep-relu", "yolov8n-efficientrep-silu"],
    "screen": [
        *(f"{f.replace('yolov8', 'yolov8n')}-{a}" for f in FAMILIES[1:] for a in ("relu", "silu")),
        "yolov8n-efficientrep-w0.25-silu",
        "yolo11n",
        "yolov8n-efficientrep-hardswish",
    ],
}


# --------------------------------------------------------------------------------------------------- the dataset
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour gradient with blotchy low-frequency texture and sensor noise."""
    import cv2

    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    image = low + (high - low) * ramp
    blotches = cv2.resize(rng.normal(0, 28, (6, 6, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    image = image + blotches + rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    """Unlabelled distractors: straight strokes and open arcs of random colour, thin enough to be told from objects."""
    import cv2

    size = image.shape[0]
    for _ in range(int(rng.integers(3, 9))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p, q = rng.integers(0, size, 2), rng.integers(0, size, 2)
            cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), color, thickness, cv2.LINE_AA)
        else:
            centre = tuple(int(v) for v in rng.integers(0, size, 2))
            axes = tuple(int(v) for v in rng.integers(4, size // 3, 2))
            start = float(rng.uniform(0, 360))
            sweep = float(rng.uniform(40, 200))  # open: never a closed ring
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), start, start + sweep, color, thickness)


def _object_mask(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """A filled mask of one object of class ``cls``, of random size, position and rotation."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    half = int(np.exp(rng.uniform(np.log(7), np.log(36))))  # log-uniform: as many small objects as large ones
    cx, cy = (int(v) for v in rng.integers(half // 2, size - half // 2, 2))  # may be cut by the image border
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def poly(points):
        pts = np.asarray(points, float) @ rot.T + (cx, cy)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)

    if cls == 0:
        cv2.circle(mask, (cx, cy), half, 1, -1)
    elif cls == 1:  # ring: an annulus with a hole of 45-65% of the radius
        cv2.circle(mask, (cx, cy), half, 1, -1)
        cv2.circle(mask, (cx, cy), max(1, int(half * rng.uniform(0.45, 0.65))), 0, -1)
    elif cls == 2:
        hh = half * rng.uniform(0.35, 1.0)
        poly([(-half, -hh), (half, -hh), (half, hh), (-half, hh)])
    elif cls == 3:
        poly([(0, -half), (-half * 0.9, half * 0.7), (half * 0.9, half * 0.7)])
    else:  # cross: two bars of width 30-45% of the length
        w = half * rng.uniform(0.3, 0.45)
        poly([(-half, -w), (half, -w), (half, w), (-half, w)])
        poly([(-w, -half), (w, -half), (w, half), (-w, half)])
    return mask


def draw_clutter(
    rng: np.random.Generator, size: int
) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """One image and its labels ``(cls, x_center, y_center, width, height)``, normalized, from the visible pixels."""
    image = _background(rng, size)
    _clutter(rng, image)

    def objects():  # drawn lazily, each just before it is painted (the dataset's random stream depends on the order)
        for _ in range(int(rng.integers(2, 8))):
            cls = int(rng.integers(len(CLASSES)))
            yield cls, _object_mask(rng, cls, size).astype(bool)

    return image, paint(rng, image, objects())


def paint(rng: np.random.Generator, image: np.ndarray, objects: Iterable[tuple[int, np.ndarray]]) -> list[tuple]:
    """Fill each ``(class, mask)`` in turn (later ones cover earlier ones); label what stays visible of each."""
    size = image.shape[0]
    owner = np.full(image.shape[:2], -1, np.int16)  # which object each pixel shows
    drawn: list[tuple[int, int]] = []  # (class, full area) per painted object
    for cls, mask in objects:
        if mask.sum() < 12:
            continue
        patch = image[mask].reshape(-1, 3).mean(0)
        for _ in range(32):
            color = rng.integers(0, 256, 3)
            if np.abs(color - patch).max() >= MIN_CONTRAST:
                break
        shade = rng.normal(0, 6, (int(mask.sum()), 3))  # objects are not perfectly flat either
        image[mask] = np.clip(color + shade, 0, 255).astype(np.uint8)
        owner[mask] = len(drawn)
        drawn.append((cls, int(mask.sum())))
    labels = []
    for k, (cls, area) in enumerate(drawn):
        ys, xs = np.nonzero(owner == k)
        if len(xs) < MIN_VISIBLE * area:
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        labels.append((cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size))
    return labels


def generate(root: Path, n_train: int, n_val: int, size: int, seed: int) -> Path:
    """Write the clutter dataset (YOLO layout) and its YAML to ``root``; reuse one made with the same parameters."""
    import cv2

    yaml_file = root / "clutter.yaml"
    spec = {"n_train": n_train, "n_val": n_val, "size": size, "seed": seed}
    header = f"# generated by benchmarks/accuracy.py {json.dumps(spec)}"
    if yaml_file.exists() and yaml_file.read_text().splitlines()[:1] == [header]:
        return yaml_file
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
        for k in range(count):
            image, labels = draw_clutter(rng, size)
            cv2.imwrite(str(staging / "images" / split / f"{split}_{k:05d}.jpg"), image)
            lines = "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)
            (staging / "labels" / split / f"{split}_{k:05d}.txt").write_text(lines)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES))
    (staging / "clutter.yaml").write_text(
        f"{header}\npath: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}"
    )
    if root.exists():
        import shutil

        shutil.rmtree(root)
    os.replace(staging, root)
    return yaml_file


def data_root() -> Path:
    """Where the clutter data is generated (``ACCURACY_DATA``, else the temporary directory)."""
    return Path(os.environ.get("ACCURACY_DATA", Path(tempfile.gettempdir()) / "yolo-efficientrep-clutter"))


# --------------------------------------------------------------------------------------------------- the models
def model_yaml(name: str, workdir: Path) -> str:
    """A model YAML path for variant ``name``: the shipped/stock file, or a copy with the variant's overrides."""
    v = variants()[name]
    if v.get("stock"):
        return v["yaml"]
    import yaml

    import yolo_efficientrep as yer

    d = yaml.safe_load(yer.find_yaml(v["family"] + ".yaml").read_text())
    # "relu" is the YAML without an `activation:` key (the plugin blocks' own ReLU, stock SPPF/Detect SiLU): the
    # families' default until this study chose SiLU, which the shipped YAMLs now set at the top level.
    d.pop("activation", None)
    if v.get("activation"):
        d["activation"] = v["activation"]
    if v.get("width"):
        d["scales"]["n"][1] = v["width"]
    d["scale"] = "n"
    workdir.mkdir(parents=True, exist_ok=True)
    # The scale letter is in the file name and the file exists, so Ultralytics' scale-free lookup is never needed.
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    return str(workdir / f"{name}.yaml")


def train_one(name: str, seed: int, out: Path) -> None:
    """Train variant ``name`` with ``seed`` on the clutter data (in this process) and write its numbers to ``out``."""
    from ultralytics import YOLO

    data = generate(data_root(), **DATA)
    work = Path(tempfile.mkdtemp(prefix="acc-run-"))
    model = YOLO(model_yaml(name, work))
    start = time.perf_counter()
    model.train(
        data=str(data),
        seed=seed,
        project=str(work),
        name="run",
        exist_ok=True,
        val=False,
        plots=False,
        verbose=False,
        **RECIPE,
    )
    minutes = (time.perf_counter() - start) / 60
    last = work / "run" / "weights" / "last.pt"
    metrics = YOLO(last).val(
        data=str(data),
        imgsz=RECIPE["imgsz"],
        batch=16,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(work),
        name="val",
    )
    fused = YOLO(last).model.fuse(verbose=False)
    out.write_text(
        json.dumps(
            {
                "variant": name,
                "seed": seed,
                "map50_95": float(metrics.box.map),
                "map50": float(metrics.box.map50),
                "train_minutes": round(minutes, 2),
                "params_fused": sum(p.numel() for p in fused.parameters()),
            }
        )
    )


def _load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"recipe": RECIPE, "data": DATA, "runs": []}


def _save(record: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, RESULTS)


def train(names: list[str], seeds: list[int], jobs: int) -> None:
    """Train every (variant, seed) not yet recorded, ``jobs`` at a time, each in its own process and Ultralytics home.

    Ultralytics trains on ``cpu_count - 1`` threads (one on a 2-core machine), so two jobs use both cores.
    """
    record = _load()
    if record["recipe"] != RECIPE or record["data"] != DATA:
        raise SystemExit(f"{RESULTS} was recorded with another recipe or dataset; move it away to start over")
    done = {(r["variant"], r["seed"]) for r in record["runs"]}
    todo = [(n, s) for s in seeds for n in names if (n, s) not in done]
    generate(data_root(), **DATA)

    def run(item):
        name, seed = item
        home = Path(tempfile.mkdtemp(prefix="acc-home-"))
        out = home / "result.json"
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(home)}
        cmd = [sys.executable, __file__, "one", name, str(seed), str(out)]
        proc = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True)
        if proc.returncode:
            print(f"FAILED {name} seed {seed}:\n{proc.stderr[-3000:]}", flush=True)
            return None
        return json.loads(out.read_text())

    with ThreadPoolExecutor(jobs) as pool:
        for result in pool.map(run, todo):
            if result:
                record = _load()
                record["runs"].append({**result, "load": round(os.getloadavg()[1], 2), "date": time.strftime("%F")})
                _save(record)
                print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------------- latency
def latency(names: list[str], imgsz: int, rounds: int) -> None:
    """Fused latency at batch 1 in PyTorch CPU, ONNX Runtime and OpenVINO, shuffled interleaved rounds; -> RESULTS."""
    import onnxruntime as ort
    import openvino as ov
    import torch
    from ultralytics import YOLO

    work = Path(tempfile.mkdtemp(prefix="acc-latency-"))
    x = torch.rand(1, 3, imgsz, imgsz)
    runners = {}
    for name in names:
        model = YOLO(model_yaml(name, work / name))
        net = model.model.fuse(verbose=False).eval()
        onnx_file = Path(model.export(format="onnx", imgsz=imgsz, simplify=True, verbose=False))
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        compiled = ov.Core().compile_model(ov.convert_model(str(onnx_file)), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        feed = {session.get_inputs()[0].name: x.numpy()}
        runners[name] = {
            "torch": lambda net=net: net(x),
            "onnxruntime": lambda s=session, f=feed: s.run(None, f),
            "openvino": lambda c=compiled: c(x.numpy()),
        }
    times = {n: {b: [] for b in runners[n]} for n in runners}
    rng = random.Random(0)
    with torch.inference_mode():
        for r in range(rounds + 3):
            order = [(n, b) for n in runners for b in runners[n]]
            rng.shuffle(order)
            for n, b in order:
                t = time.perf_counter()
                runners[n][b]()
                if r >= 3:  # warm-up rounds are not recorded
                    times[n][b].append((time.perf_counter() - t) * 1e3)
    record = _load()
    record["latency"] = {
        "imgsz": imgsz,
        "rounds": rounds,
        "load": [round(v, 2) for v in os.getloadavg()],
        "ms": {n: {b: v for b, v in times[n].items()} for n in times},
    }
    _save(record)
    for n in times:
        print(n, {b: round(statistics.median(v), 1) for b, v in times[n].items()})


# --------------------------------------------------------------------------------------------------- report
def _ratio_iqr(a: list[float], b: list[float]) -> tuple[float, float]:
    """Median of a / median of b, and the interquartile range of per-round ratios (rounds paired in time)."""
    ratios = sorted(x / y for x, y in zip(a, b))
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(a) / statistics.median(b), q3 - q1


def summary(record: dict) -> dict[str, dict]:
    """Per variant: mean/sd of mAP over seeds, ratio to yolov8n over common seeds, latency ratios with IQR."""
    by = {}
    for r in record["runs"]:
        by.setdefault(r["variant"], []).append(r)
    out = {}
    for name, runs in by.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        maps = [r["map50_95"] for r in runs]
        common = [r["seed"] for r in runs if any(b["seed"] == r["seed"] for b in by.get("yolov8n", []))]
        ref = [b["map50_95"] for b in by.get("yolov8n", []) if b["seed"] in common]
        own = [r["map50_95"] for r in runs if r["seed"] in common]
        out[name] = {
            "seeds": [r["seed"] for r in runs],
            "map50_95": statistics.mean(maps),
            "sd": statistics.stdev(maps) if len(maps) > 1 else None,
            "map50": statistics.mean(r["map50"] for r in runs),
            "vs_yolov8n": statistics.mean(own) / statistics.mean(ref) if ref else None,
            "params_fused": runs[0]["params_fused"],
            "train_minutes": statistics.mean(r["train_minutes"] for r in runs),
        }
    lat = record.get("latency")
    if lat and "yolov8n" in lat["ms"]:
        for name in out:
            if name in lat["ms"]:
                out[name]["latency"] = {
                    b: _ratio_iqr(lat["ms"][name][b], lat["ms"]["yolov8n"][b]) for b in lat["ms"][name]
                }
                out[name]["latency_ms"] = {b: statistics.median(v) for b, v in lat["ms"][name].items()}
    return out


def render(record: dict) -> str:
    """The markdown table of a record."""
    rows = summary(record)
    lat = record.get("latency", {})
    lines = [
        f"Accuracy from scratch on the generated `clutter` data ({DATA['n_train']} train / {DATA['n_val']} val images, "
        f"{DATA['size']} px, {len(CLASSES)} classes, overlaps and clutter), recipe {json.dumps(RECIPE)}, Ultralytics' "
        "defaults otherwise; mean over seeds (sd), ratio to yolov8n over the same seeds. Latency: fused model, "
        f"batch 1, {lat.get('imgsz', '-')} px, median of {lat.get('rounds', '-')} shuffled interleaved rounds, ratio "
        "to yolov8n (± IQR of the per-round ratios); lower is faster.",
        "",
        "| model | seeds | mAP50-95 (sd) | vs yolov8n | mAP50 | fused params | PyTorch CPU | ONNX Runtime | OpenVINO |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = sorted(rows, key=lambda n: (n not in STOCK, n))
    for name in order:
        r = rows[name]
        sd = f" ({r['sd']:.3f})" if r["sd"] is not None else ""
        vs = f"{r['vs_yolov8n']:.2f}x" if r["vs_yolov8n"] is not None else "-"
        cells = []
        for backend in ("torch", "onnxruntime", "openvino"):
            v = r.get("latency", {}).get(backend)
            cells.append(f"{v[0]:.2f}x ± {v[1]:.2f}" if v else "-")
        lines.append(
            f"| `{name}` | {len(r['seeds'])} | {r['map50_95']:.3f}{sd} | {vs} | {r['map50']:.3f} | "
            f"{r['params_fused'] / 1e6:.2f}M | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def write_report(readme: Path | None) -> None:
    """Write ``REPORT`` and the README's generated block from ``RESULTS``."""
    record = _load()
    text = render(record)
    REPORT.write_text("# Accuracy study (generated by benchmarks/accuracy.py)\n\n" + text + "\n")
    if readme:
        content = readme.read_text()
        if BEGIN not in content or END not in content:
            raise SystemExit(f"{readme} has no {BEGIN} ... {END} block")
        head, rest = content.split(BEGIN, 1)
        readme.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    print(text)


def main() -> None:
    """Command line: generate, train, latency, render."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate")
    t = sub.add_parser("train")
    t.add_argument("--variants", default="screen", help="a group name or comma-separated variant names")
    t.add_argument("--seeds", default="0")
    t.add_argument("--jobs", type=int, default=2)
    one = sub.add_parser("one")
    one.add_argument("name")
    one.add_argument("seed", type=int)
    one.add_argument("out", type=Path)
    lt = sub.add_parser("latency")
    lt.add_argument("--variants", default="screen")
    lt.add_argument("--imgsz", type=int, default=640)
    lt.add_argument("--rounds", type=int, default=20)
    rd = sub.add_parser("render")
    rd.add_argument("--readme", type=Path, default=REPO / "README.md")
    a = parser.parse_args()

    def names(spec: str) -> list[str]:
        chosen = GROUPS.get(spec) or spec.split(",")
        unknown = [n for n in chosen if n not in variants()]
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {', '.join(variants())}")
        return chosen

    if a.cmd == "generate":
        print(generate(data_root(), **DATA))
    elif a.cmd == "train":
        train(names(a.variants), [int(s) for s in a.seeds.split(",")], a.jobs)
    elif a.cmd == "one":
        train_one(a.name, a.seed, a.out)
    elif a.cmd == "latency":
        latency(names(a.variants), a.imgsz, a.rounds)
    else:
        write_report(a.readme)


if __name__ == "__main__":
    main()
