"""Offline datasets: ``shapes``, a small synthetic detection set generated deterministically on first use.

``data=shapes.yaml`` resolves to the plugin's ``cfg/datasets/shapes.yaml``. Its ``download:`` script (run by
Ultralytics' own ``check_det_dataset`` when the images are missing, exactly like the stock dataset YAMLs) calls
``generate_shapes`` to write real JPEG images with exact YOLO boxes into Ultralytics' datasets directory. No network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ("SHAPE_NAMES", "generate_shapes")

SHAPE_NAMES = ("circle", "rectangle", "triangle")


def _draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Draw one image: a smooth random background and 1-4 filled shapes; return it and its normalized boxes."""
    import cv2  # Ultralytics' own image dependency

    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = (low + (high - low) * ramp).repeat(size, axis=1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(len(SHAPE_NAMES)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        half = int(rng.integers(size // 16, size // 5))
        cx, cy = (int(v) for v in rng.integers(half, size - half, 2))
        if cls == 0:
            cv2.circle(image, (cx, cy), half, color, -1)
            x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        elif cls == 1:
            hw, hh = half, int(rng.integers(max(2, half // 2), half + 1))
            cv2.rectangle(image, (cx - hw, cy - hh), (cx + hw, cy + hh), color, -1)
            x0, y0, x1, y1 = cx - hw, cy - hh, cx + hw, cy + hh
        else:
            pts = np.array([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], np.int32)
            cv2.fillPoly(image, [pts], color)
            x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        boxes.append((cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0 + 1) / size, (y1 - y0 + 1) / size))
    return image, boxes


def generate_shapes(
    path: str | os.PathLike, n_train: int = 128, n_val: int = 32, size: int = 256, seed: int = 0
) -> Path:
    """Write the ``shapes`` detection dataset (YOLO layout) to ``path``; the same arguments give the same files.

    The dataset is written to a temporary sibling directory and moved into place at the end, so an interrupted run
    leaves nothing half-written. An existing non-empty ``path`` is never overwritten.

    Args:
        path (str | os.PathLike): Dataset root to create, holding ``images/{train,val}`` and ``labels/{train,val}``.
        n_train (int): Number of training images.
        n_val (int): Number of validation images.
        size (int): Square image size in pixels.
        seed (int): Random seed.

    Returns:
        (Path): The dataset root.

    Examples:
        >>> root = generate_shapes(tempfile.mkdtemp() + "/shapes", n_train=4, n_val=2)
        >>> sorted(p.name for p in (root / "labels" / "val").iterdir())
        ['val_00000.txt', 'val_00001.txt']
    """
    import cv2

    root = Path(path)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"refusing to overwrite the non-empty directory {root}; delete it to regenerate shapes")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        rng = np.random.default_rng(seed)
        for split, count in (("train", n_train), ("val", n_val)):
            (staging / "images" / split).mkdir(parents=True)
            (staging / "labels" / split).mkdir(parents=True)
            for k in range(count):
                image, boxes = _draw(rng, size)
                stem = f"{split}_{k:05d}"
                if not cv2.imwrite(str(staging / "images" / split / f"{stem}.jpg"), image):
                    raise OSError(f"could not write {stem}.jpg under {staging}")
                lines = (f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in boxes)
                (staging / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        if root.exists():
            root.rmdir()  # empty, checked above
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root
