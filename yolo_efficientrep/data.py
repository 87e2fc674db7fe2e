"""Offline datasets: ``shapes``, small synthetic sets for every Ultralytics task, generated deterministically.

- ``data=shapes.yaml`` (detect), ``shapes-seg.yaml`` (polygon masks), ``shapes-pose.yaml`` (triangles with their three
  vertices as keypoints) and ``shapes-obb.yaml`` (rotated rectangles) resolve to the plugin's ``cfg/datasets`` YAMLs.
  The integration generates a missing dataset (``generate_dataset``: real JPEGs with exact labels, into Ultralytics'
  datasets directory) before Ultralytics' own dataset check looks for its images, so the log says what happened: data
  generated, nothing downloaded. The YAMLs' ``download:`` scripts make the same call, for a YAML used without the
  plugin's integration (e.g. copied elsewhere).
- ``data=shapes-cls`` (classify) is a folder dataset; the integration generates it on first use the same way.

No network is involved.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ("DATASETS", "GENERATED_FOLDERS", "SHAPE_NAMES", "TASK_NAMES", "generate_dataset", "generate_shapes")

SHAPE_NAMES = ("circle", "rectangle", "triangle")
TASK_NAMES = {  # class names per task
    "detect": SHAPE_NAMES,
    "segment": SHAPE_NAMES,
    "classify": SHAPE_NAMES,
    "pose": ("triangle",),
    "obb": ("square", "bar"),
}
MIN_CONTRAST = 64  # least max-channel difference between a shape and the mean background under it
# Every shipped dataset: its generate_shapes() arguments, by the name used in data= (YAML stem or folder name).
# "shapes" is sized for the README's quick start: enough images that a few minutes of CPU training give a detector
# that visibly works (mAP50 well above 0.5); the others are for smoke runs of each task.
DATASETS = {
    "shapes": {"task": "detect", "n_train": 512, "n_val": 32, "size": 160},
    "shapes-seg": {"task": "segment"},
    "shapes-pose": {"task": "pose"},
    "shapes-obb": {"task": "obb"},
    "shapes-cls": {"task": "classify"},
}
GENERATED_FOLDERS = {"shapes-cls": DATASETS["shapes-cls"]}  # folder datasets (no YAML), generated under datasets_dir


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour gradient with sensor-like noise."""
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = (low + (high - low) * ramp).repeat(size, axis=1)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def _polygon(cls: int, cx: int, cy: int, half: int, hh: int) -> np.ndarray:
    """Outline of shape ``cls`` (circle: 32-gon, rectangle, upright triangle: top, bottom-left, bottom-right)."""
    if cls == 0:
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        return np.stack([cx + half * np.cos(angles), cy + half * np.sin(angles)], 1)
    if cls == 1:
        return np.array([(cx - half, cy - hh), (cx + half, cy - hh), (cx + half, cy + hh), (cx - half, cy + hh)], float)
    return np.array([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], float)


def _color(rng: np.random.Generator, image: np.ndarray, cx: int, cy: int, half: int) -> tuple[int, int, int]:
    """A random fill colour that differs visibly from the background around ``(cx, cy)``.

    Without the check, about one shape in twelve (8% of uniform random colour pairs) would differ from its background
    by less than ``MIN_CONTRAST`` in every channel: labelled objects that are hard to see even for a person.
    """
    patch = image[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1].reshape(-1, 3).mean(0)
    for _ in range(32):
        color = rng.integers(0, 256, 3)
        if np.abs(color - patch).max() >= MIN_CONTRAST:
            break
    return tuple(int(c) for c in color)


def _free(boxes: list[tuple[int, int, int]], cx: int, cy: int, half: int) -> bool:
    """Whether a shape at ``(cx, cy)`` would hide at most part of the shapes already drawn (centres kept apart)."""
    return all(max(abs(cx - x), abs(cy - y)) >= max(half, h) for x, y, h in boxes)


def _draw(rng: np.random.Generator, size: int, task: str = "detect") -> tuple[np.ndarray, list[str]]:
    """Draw one image with 1-4 filled shapes; return it and its label lines in the task's YOLO format."""
    import cv2  # Ultralytics' own image dependency

    image, lines, placed = _background(rng, size), [], []
    for _ in range(int(rng.integers(1, 5))):
        for _ in range(16):  # a place that does not cover a drawn shape's centre, else the last try
            half = int(rng.integers(size // 12, size // 5))
            cx, cy = (int(v) for v in rng.integers(half + 1, size - half - 1, 2))
            if _free(placed, cx, cy, half):
                break
        placed.append((cx, cy, half))
        color = _color(rng, image, cx, cy, half)
        if task == "obb":  # squares and bars, rotated by any angle
            cls = int(rng.integers(2))
            w, h = (2 * half, 2 * half) if cls == 0 else (2 * half, max(4, half // 2))
            corners = cv2.boxPoints(((cx, cy), (w, h), float(rng.uniform(0, 180))))
            corners = np.clip(corners, 0, size - 1)
            cv2.fillPoly(image, [np.round(corners).astype(np.int32)], color)
            lines.append(f"{cls} " + " ".join(f"{v / size:.6f}" for v in corners.reshape(-1)))
            continue
        cls = 2 if task == "pose" and rng.random() < 0.6 else int(rng.integers(len(SHAPE_NAMES)))
        hh = int(rng.integers(max(2, half // 2), half + 1))
        outline = _polygon(cls, cx, cy, half, hh)
        if cls == 0:
            cv2.circle(image, (cx, cy), half, color, -1)
        else:
            cv2.fillPoly(image, [np.round(outline).astype(np.int32)], color)
        x0, y0 = outline.min(0)
        x1, y1 = outline.max(0) + 1
        box = f"{(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}"
        if task == "detect":
            lines.append(f"{cls} {box}")
        elif task == "segment":
            lines.append(f"{cls} " + " ".join(f"{v / size:.6f}" for v in outline.reshape(-1)))
        elif cls == 2:  # pose: triangles only, their vertices as visible keypoints; other shapes are distractors
            lines.append(f"0 {box} " + " ".join(f"{x / size:.6f} {y / size:.6f} 2" for x, y in outline))
    return image, lines


def _draw_single(rng: np.random.Generator, size: int, cls: int) -> np.ndarray:
    """One centred-ish shape of class ``cls`` for classification."""
    import cv2

    image = _background(rng, size)
    half = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(v) for v in rng.integers(half + 1, size - half - 1, 2))
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    outline = _polygon(cls, cx, cy, half, int(rng.integers(max(2, half // 2), half + 1)))
    if cls == 0:
        cv2.circle(image, (cx, cy), half, color, -1)
    else:
        cv2.fillPoly(image, [np.round(outline).astype(np.int32)], color)
    return image


def generate_shapes(
    path: str | os.PathLike,
    n_train: int = 128,
    n_val: int = 32,
    size: int = 256,
    seed: int = 0,
    task: str = "detect",
) -> Path:
    """Write a ``shapes`` dataset for ``task`` to ``path``; the same arguments give the same files.

    Detect, segment, pose and obb use the YOLO layout (``images/{train,val}``, ``labels/{train,val}``) with the task's
    label format; classify writes ``{train,val}/<class>/*.jpg``. The dataset is written to a temporary sibling directory
    and moved into place at the end, so an interrupted run leaves nothing half-written. An existing non-empty ``path``
    is never overwritten.

    Args:
        path (str | os.PathLike): Dataset root to create.
        n_train (int): Number of training images (per class for classify).
        n_val (int): Number of validation images (per class for classify).
        size (int): Square image size in pixels.
        seed (int): Random seed.
        task (str): One of ``detect``, ``segment``, ``pose``, ``obb``, ``classify``.

    Returns:
        (Path): The dataset root.

    Examples:
        >>> root = generate_shapes(tempfile.mkdtemp() + "/shapes", n_train=4, n_val=2)
        >>> sorted(p.name for p in (root / "labels" / "val").iterdir())
        ['val_00000.txt', 'val_00001.txt']
    """
    import cv2

    if task not in TASK_NAMES:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASK_NAMES)}")
    root = Path(path)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"refusing to overwrite the non-empty directory {root}; delete it to regenerate shapes")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))

    def write(image: np.ndarray, file: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(file), image):
            raise OSError(f"could not write {file}")

    try:
        rng = np.random.default_rng(seed)
        for split, count in (("train", n_train), ("val", n_val)):
            if task == "classify":
                for cls, name in enumerate(SHAPE_NAMES):
                    for k in range(count):
                        write(_draw_single(rng, size, cls), staging / split / name / f"{split}_{k:05d}.jpg")
                continue
            (staging / "labels" / split).mkdir(parents=True)
            for k in range(count):
                image, lines = _draw(rng, size, task)
                stem = f"{split}_{k:05d}"
                write(image, staging / "images" / split / f"{stem}.jpg")
                (staging / "labels" / split / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        if root.exists():
            root.rmdir()  # empty, checked above
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def generate_dataset(name: str, path: str | os.PathLike) -> Path:
    """Generate the shipped dataset ``name`` (a key of ``DATASETS``) at ``path`` and log what was written.

    Args:
        name (str): Dataset name as used in ``data=``, e.g. ``"shapes"`` or ``"shapes-cls"``.
        path (str | os.PathLike): Dataset root to create.

    Returns:
        (Path): The dataset root.
    """
    kwargs = DATASETS[name]
    start = time.perf_counter()
    root = generate_shapes(path, **kwargs)
    n_train, n_val = (len(list(root.rglob(f"{split}_*.jpg"))) for split in ("train", "val"))
    size = kwargs.get("size", inspect.signature(generate_shapes).parameters["size"].default)
    logging.getLogger("ultralytics").info(
        f"yolo-efficientrep: generated the offline '{name}' dataset ({n_train} train + {n_val} val images, "
        f"{size}x{size}) in {time.perf_counter() - start:.1f}s at {root}; nothing was downloaded"
    )
    return root
