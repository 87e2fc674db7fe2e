"""The quick start's last step: how well the model from README command 1 finds shapes, and a picture of it.

Run: python examples/quickstart_report.py runs/quickstart           (what README command 1 ends with)
     python examples/quickstart_report.py --record                  (maintainers: rerun README command 1's training
                                                                     verbatim, timed, in a fresh Ultralytics home;
                                                                     write docs/quickstart/ and the README's numbers)

The report loads ``best.pt`` with stock Ultralytics only (no plugin import: the start-up hook loads it), validates it,
predicts every validation image at Ultralytics' default confidence (0.25, as ``yolo predict``) and saves four of them,
with their boxes, as ``<run>/predictions.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "docs" / "quickstart"
BEGIN, END = "<!-- generated:quickstart -->", "<!-- /generated:quickstart -->"
TILES = 4  # validation images in the picture


def quick_start_commands(readme: Path = REPO / "README.md") -> list[str]:
    """The README's quick-start commands (code lines of its ``bash`` blocks, comments skipped)."""
    section = readme.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def train_step(command: str) -> list[str]:
    """The ``yolo train`` step of README command 1, as an argument list (environment prefix included)."""
    step = next(s for s in command.split(" && ") if " train " in f" {s} ")
    return shlex.split(step)


def split_env(step: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``VAR=value ... yolo train k=v ...`` into the environment prefix and the ``yolo`` arguments."""
    i = next(k for k, a in enumerate(step) if "=" not in a)
    return dict(a.split("=", 1) for a in step[:i]), step[i + 1 :]


def recipe(step: list[str]) -> dict[str, str]:
    """The ``key=value`` arguments of a ``yolo train`` step (without the environment prefix)."""
    return dict(a.split("=", 1) for a in split_env(step)[1] if "=" in a)


def label_digest(root: Path) -> str:
    """SHA-256 over a YOLO dataset's label files: changes whenever the generator draws something else."""
    h = hashlib.sha256()
    for path in sorted((root / "labels").rglob("*.txt")):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def report(run: Path, picture: Path | None = None) -> dict:
    """Validate and predict with ``run/weights/best.pt``; save the picture; return the numbers."""
    import numpy as np
    import yaml
    from PIL import Image
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    args = yaml.safe_load((run / "args.yaml").read_text())
    weights = run / "weights" / "best.pt"
    data = check_det_dataset(args["data"])
    images = sorted(Path(data["val"]).glob("*.jpg"))
    common = {"imgsz": args["imgsz"], "device": args["device"], "verbose": False}
    metrics = YOLO(weights).val(
        data=args["data"], batch=args["batch"], plots=False, project=str(run.parent), name=f"{run.name}-val", **common
    )
    results = list(YOLO(weights).predict([str(p) for p in images], stream=True, **common))  # default conf 0.25
    found = sum(len(r.boxes) > 0 for r in results)
    tiles = [r.plot(line_width=1)[..., ::-1] for r in results[:TILES]]  # BGR -> RGB
    grid = Image.fromarray(np.hstack(tiles)).quantize(256)  # a palette PNG: small enough to commit
    picture = picture or run / "predictions.png"
    picture.parent.mkdir(parents=True, exist_ok=True)
    grid.save(picture, optimize=True)
    numbers = {
        "mAP50": round(float(metrics.box.map50), 3),
        "mAP50-95": round(float(metrics.box.map), 3),
        "images_with_detections": found,
        "val_images": len(images),
        "conf": 0.25,
        "picture": str(picture),
        "label_digest": label_digest(Path(data["path"])),
    }
    print(
        f"validation: mAP50 {numbers['mAP50']:.2f}, mAP50-95 {numbers['mAP50-95']:.2f}; shapes found in {found} of "
        f"{len(images)} validation images at the default confidence 0.25; picture: {picture}"
    )
    return numbers


def _machine() -> dict:
    import torch
    import ultralytics

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "python": platform.python_version(),
    }


def _span(values: list[float], fmt: str) -> str:
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}-{high}"


def render(record: dict) -> str:
    """The README's quick-start expectations, from a recorded set of runs."""
    m, t, runs = record["machine"], record["training"], record["runs"]
    gpu = f"GPU {m['gpu']}" if m["gpu"] else "no GPU"
    n_val = runs[0]["val_images"]
    found = _span([r["images_with_detections"] for r in runs], "d")
    load = _span([r["load"] for r in runs], ".1f")
    # Ultralytics trains on one thread here; a run that had its core to itself used about as much CPU time as wall time.
    share = [r["cpu_minutes"] / r["train_minutes"] for r in runs]
    if min(share) < 0.9:
        shared = f"with the cores shared with other jobs (load average {load})"
    else:
        shared = f"with a core to itself (CPU time {_span([100 * v for v in share], '.0f')}% of the wall time)"
    keys = ("mAP50", "mAP50-95", "images_with_detections")
    same = all(r[k] == runs[0][k] for r in runs for k in keys)
    agreement = (
        f"Training is seeded: the {len(runs)} runs gave identical results"
        if same
        else "Training is seeded, yet the runs differ (see the ranges)"
    )
    return (
        f"{BEGIN}\n"
        f"What to expect, measured with command 1 verbatim ({len(runs)} runs, {record['date']}) on {m['cores']} CPU "
        f"cores ({m['cpu']}, {gpu}, torch {m['torch']}): training ({t['epochs']} epochs of "
        f"{record['dataset']['n_train']} images at {t['imgsz']} px) took "
        f"**{_span([r['train_minutes'] for r in runs], '.1f')} min** {shared}; Ultralytics trains on one thread "
        f"when the machine has two cores (it keeps one for the rest of the system). Validation reads "
        f"**mAP50 {_span([r['mAP50'] for r in runs], '.2f')}**, mAP50-95 {_span([r['mAP50-95'] for r in runs], '.2f')} "
        f"on the {n_val} validation images, and the model finds shapes in **{found} of {n_val}** of them at the "
        f"default confidence ({runs[0]['conf']}). {agreement}; the time depends on your CPU and on what else runs "
        f"on it.\n"
        f"{END}"
    )


def write_readme(record: dict, readme: Path = REPO / "README.md") -> None:
    """Replace the README's generated quick-start block."""
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + render(record) + rest.split(END, 1)[1])


def record_runs(n_runs: int) -> dict:
    """Run README command 1's training step from a fresh Ultralytics home ``n_runs`` times; report each run."""
    step = train_step(quick_start_commands()[0])
    env_prefix, yolo_args = split_env(step)
    args = recipe(step)
    runs = []
    for k in range(n_runs):
        home = Path(tempfile.mkdtemp(prefix="quickstart-record-"))
        env = {**os.environ, **env_prefix, "YOLO_CONFIG_DIR": str(home / "config")}
        cmd = [str(Path(sys.executable).with_name("yolo")), *(a.replace("$PWD", str(home)) for a in yolo_args)]
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, env=env, cwd=home, check=True)
        minutes = (time.perf_counter() - start) / 60
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the training process and its data loader workers
        cpu_minutes = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / 60
        load = os.getloadavg()[1]  # 5-minute average at the end of the run
        out = RECORD / "predictions.png" if k == n_runs - 1 else home / "predictions.png"
        run = home / "runs" / args["name"]
        report_cmd = [sys.executable, __file__, str(run), "--picture", str(out), "--json", str(home / "report.json")]
        subprocess.run(report_cmd, env=env, cwd=home, check=True)  # a fresh process in the run's Ultralytics home
        numbers = json.loads((home / "report.json").read_text())
        runs.append(
            {
                **numbers,
                "train_minutes": round(minutes, 2),
                "cpu_minutes": round(cpu_minutes, 2),
                "load": round(load, 2),
            }
        )
        print(runs[-1])
    from yolo_efficientrep.data import DATASETS

    record = {
        "command": shlex.join(step),
        "runs": runs,
        "picture": "docs/quickstart/predictions.png",
        "training": {k: int(args[k]) for k in ("epochs", "imgsz", "batch")},
        "dataset": DATASETS["shapes"],
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    for r in runs:
        r.pop("picture")
    RECORD.mkdir(parents=True, exist_ok=True)
    (RECORD / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    write_readme(record)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", type=Path, help="a training run directory, e.g. runs/quickstart")
    parser.add_argument("--picture", type=Path, help="where to save the picture (default: <run>/predictions.png)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--record", action="store_true", help="rerun command 1's training and record the numbers")
    parser.add_argument("--runs", type=int, default=2, help="timed training runs for --record")
    options = parser.parse_args()
    if options.record:
        record_runs(options.runs)
    elif options.run:
        numbers = report(options.run, options.picture)
        if options.json:
            options.json.write_text(json.dumps(numbers))
    else:
        parser.error("give a run directory or --record")


if __name__ == "__main__":
    main()
