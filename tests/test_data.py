"""The offline ``shapes`` dataset: deterministic, real boxes, generated through Ultralytics' own dataset check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ultralytics_log

from yolo_efficientrep.data import DATASETS, SHAPE_NAMES, _color, generate_shapes


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = generate_shapes(tmp_path / "a", n_train=6, n_val=3, size=96)
    b = generate_shapes(tmp_path / "b", n_train=6, n_val=3, size=96)
    assert _digest(a) == _digest(b)
    c = generate_shapes(tmp_path / "c", n_train=6, n_val=3, size=96, seed=1)
    assert _digest(a) != _digest(c)


def test_images_and_boxes_are_real(tmp_path):
    import cv2

    root = generate_shapes(tmp_path / "shapes", n_train=8, n_val=4, size=128)
    for split, count in (("train", 8), ("val", 4)):
        images = sorted((root / "images" / split).glob("*.jpg"))
        assert len(images) == count
        for image in images:
            pixels = cv2.imread(str(image))
            assert pixels.shape == (128, 128, 3) and pixels.std() > 5
            rows = np.loadtxt(root / "labels" / split / f"{image.stem}.txt", ndmin=2)
            assert 1 <= len(rows) <= 4
            assert set(rows[:, 0].astype(int)) <= set(range(len(SHAPE_NAMES)))
            xy, wh = rows[:, 1:3], rows[:, 3:5]
            assert (wh > 0.05).all() and (xy - wh / 2 >= -1e-6).all() and (xy + wh / 2 <= 1 + 1e-6).all()


def test_every_class_box_is_the_drawn_shapes_extent(monkeypatch):
    """For circles, rectangles and triangles alike, the label box is exactly where the shape's pixels are.

    The background is made flat and every shape gets its own colour, so each shape's pixels can be found; the shape
    drawn last is whole (its box equals its pixels' extent to the pixel), earlier ones may be partly covered (their
    visible pixels stay inside their box).
    """
    from yolo_efficientrep import data

    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    calls = []
    monkeypatch.setattr(data, "_background", lambda rng, size: np.zeros((size, size, 3), np.uint8))
    monkeypatch.setattr(data, "_color", lambda *args: calls.append(1) or palette[len(calls) - 1])
    size, whole = 128, set()
    for seed in range(40):
        calls.clear()
        image, lines = data._draw(np.random.default_rng(seed), size)
        for k, line in enumerate(lines):
            cls, x, y, w, h = (float(v) for v in line.split())
            ys, xs = np.nonzero((image == palette[k]).all(-1))
            assert len(xs), (seed, k)
            x0, x1, y0, y1 = (x - w / 2) * size, (x + w / 2) * size, (y - h / 2) * size, (y + h / 2) * size
            assert x0 - 1 <= xs.min() and xs.max() + 1 <= x1 + 1 and y0 - 1 <= ys.min() and ys.max() + 1 <= y1 + 1
            if k == len(lines) - 1:  # on top: the box is the pixels' extent
                extent = (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1)
                np.testing.assert_allclose(extent, (x0, x1, y0, y1), atol=1.01, err_msg=f"seed {seed}, class {cls}")
                whole.add(int(cls))
    assert whole == {0, 1, 2}  # every class was checked whole


class _OneShape:
    """A seeded generator that makes ``data._draw`` draw exactly one shape (its count draw is ``integers(1, 5)``)."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def integers(self, low, high=None, *args, **kwargs):
        return 1 if (low, high) == (1, 5) else self._rng.integers(low, high, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._rng, name)


@pytest.mark.parametrize(("task", "classes"), [("segment", {0, 1, 2}), ("pose", {0}), ("obb", {0, 1})])
def test_every_task_label_is_the_drawn_shape(monkeypatch, task, classes):
    """Segment polygons, pose boxes and vertices, OBB corners: each label is where its shape's pixels are.

    One shape per image on a flat background, so every shape pixel belongs to the labelled shape; seeds are drawn
    until every class of the task has been checked (asserted), pose's unlabelled distractor shapes skipped.
    """
    import cv2

    from yolo_efficientrep import data

    size, seen = 128, set()
    monkeypatch.setattr(data, "_background", lambda rng, size: np.zeros((size, size, 3), np.uint8))
    monkeypatch.setattr(data, "_color", lambda *args: (255, 255, 255))
    for seed in range(60):
        image, lines = data._draw(_OneShape(seed), size, task)
        pixels = (image == 255).all(-1)
        ys, xs = np.nonzero(pixels)
        assert len(xs) and len(lines) <= 1, seed
        if not lines:  # pose: a circle or rectangle distractor, not labelled
            assert task == "pose"
            continue
        values = np.array(lines[0].split(), float)
        cls, where = int(values[0]), f"{task} seed {seed}, class {int(values[0])}"
        extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)  # pixel edges
        if task == "segment":
            polygon = values[1:].reshape(-1, 2) * size
            mask = np.zeros_like(image[..., 0])
            cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
            iou = (mask.astype(bool) & pixels).sum() / (mask.astype(bool) | pixels).sum()
            # polygons are filled from the same outline; a circle is drawn round and labelled as a 32-gon
            assert iou == 1.0 if cls else iou > 0.9, (where, iou)
            np.testing.assert_allclose([*polygon.min(0), *polygon.max(0) + 1], extent, atol=1.01, err_msg=where)
        elif task == "pose":
            x, y, w, h = values[1:5] * size
            np.testing.assert_allclose([x - w / 2, y - h / 2, x + w / 2, y + h / 2], extent, atol=1.01, err_msg=where)
            vertices = values[5:].reshape(3, 3)[:, :2] * size
            top, left, right = vertices  # apex, bottom-left, bottom-right
            assert abs(top[1] - ys.min()) <= 1 and abs(left[0] - xs.min()) <= 1 and abs(right[0] - xs.max()) <= 1
            assert abs(left[1] - ys.max()) <= 1 and abs(right[1] - ys.max()) <= 1, where
            assert abs(top[0] - xs[ys == ys.min()].mean()) <= 1.5, where  # the apex is the top row's middle
        else:  # obb: four corners; every pixel inside the quadrilateral, whose extent is the pixels'
            corners = values[1:].reshape(4, 2) * size
            np.testing.assert_allclose(
                [*corners.min(0), *corners.max(0)], extent - [0, 0, 1, 1], atol=1.01, err_msg=where
            )
            contour = corners.astype(np.float32).reshape(-1, 1, 2)
            inside = [cv2.pointPolygonTest(contour, (float(px), float(py)), True) for px, py in zip(xs, ys)]
            assert min(inside) >= -1.0, where
            assert pixels.sum() >= 0.8 * cv2.contourArea(contour), where  # the shape fills its corners
        seen.add(cls)
    assert seen == classes  # every class of the task was checked


def test_never_overwrites_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "shapes"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        generate_shapes(target, n_train=2, n_val=1)
    assert (target / "mine.txt").read_text() == "keep me"
    with pytest.raises(TypeError):
        generate_shapes(tmp_path / "broken", n_train="x")
    assert not (tmp_path / "broken").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]  # no staging directory left behind


def test_bare_name_dataset_generates_through_ultralytics(tmp_path, monkeypatch):
    """Generated before Ultralytics looks: its log says so, and never 'images not found' or 'download'."""

    import ultralytics.data.utils as data_utils
    from ultralytics import YOLO

    # As in `yolo train`, the model is built before the data is checked; on Ultralytics 8.1, whose data module is
    # still importing when the plugin registers, that is where the plugin's dataset wrapper is put in place.
    YOLO("yolov8n-efficientrep.yaml")
    monkeypatch.setattr(data_utils, "DATASETS_DIR", tmp_path / "datasets")  # a first use, whatever ran before
    with ultralytics_log() as records:
        data = data_utils.check_det_dataset("shapes.yaml")
        again = data_utils.check_det_dataset("shapes.yaml")  # second use: nothing generated, nothing said
    assert data["names"] == dict(enumerate(SHAPE_NAMES)) and data["nc"] == 3 and again["val"] == data["val"]
    root = tmp_path / "datasets" / "shapes"
    assert Path(data["path"]) == root
    spec = DATASETS["shapes"]
    assert len(list((root / "images" / "train").glob("*.jpg"))) == spec["n_train"]
    assert len(list((root / "labels" / "val").glob("*.txt"))) == spec["n_val"]
    log = "\n".join(r.getMessage() for r in records)
    assert log.count("yolo-efficientrep: generated the offline 'shapes' dataset") == 1, log
    assert f"({spec['n_train']} train + {spec['n_val']} val images, {spec['size']}x{spec['size']})" in log
    assert "Dataset download" not in log and "images not found" not in log, log


def test_shape_colours_stand_out_from_their_background():
    rng = np.random.default_rng(0)
    for grey in (0, 40, 128, 215, 255):
        image = np.full((64, 64, 3), grey, np.uint8)
        colours = np.array([_color(rng, image, 32, 32, 10) for _ in range(200)])
        assert (np.abs(colours - grey).max(1) >= 64).all()  # a clearly visible step in at least one channel


def test_shapes_do_not_cover_each_other(tmp_path):
    root = generate_shapes(tmp_path / "shapes", n_train=64, n_val=1, size=160)
    rows = [np.loadtxt(f, ndmin=2) for f in sorted((root / "labels" / "train").glob("*.txt"))]
    assert sum(len(r) for r in rows) / len(rows) > 2  # several objects per image on average
    pixel = 1 / 160

    def inside(a, b):  # centre of a strictly inside box b, by more than a pixel
        return abs(a[1] - b[1]) < b[3] / 2 - pixel and abs(a[2] - b[2]) < b[4] / 2 - pixel

    covered = [(a, b) for r in rows for i, a in enumerate(r) for b in r[i + 1 :] if inside(a, b) or inside(b, a)]
    assert not covered  # every shape keeps a visible part: no centre hidden under another shape


@pytest.mark.parametrize(("task", "columns"), [("segment", None), ("pose", 14), ("obb", 9)])
def test_task_labels_have_the_task_format(tmp_path, task, columns):
    root = generate_shapes(tmp_path / task, n_train=6, n_val=2, size=96, task=task)
    rows = [
        line.split() for f in sorted((root / "labels" / "train").glob("*.txt")) for line in f.read_text().splitlines()
    ]
    assert rows
    for row in rows:
        values = np.array(row[1:], float)
        if columns:
            assert len(row) == columns
        else:  # polygon: an even number of coordinates, at least a triangle
            assert len(values) % 2 == 0 and len(values) >= 6
        coords = np.concatenate([values[:4], values[4:].reshape(-1, 3)[:, :2].ravel()]) if task == "pose" else values
        assert (coords >= 0).all() and (coords <= 1).all()
    if task == "pose":
        assert all(row[0] == "0" and row[7::3] == ["2", "2", "2"] for row in rows)  # all vertices visible


def test_classification_folders(tmp_path):
    root = generate_shapes(tmp_path / "cls", n_train=3, n_val=2, size=64, task="classify")
    for split, count in (("train", 3), ("val", 2)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(SHAPE_NAMES)
        assert all(len(list((root / split / name).glob("*.jpg"))) == count for name in SHAPE_NAMES)


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'depth'"):
        generate_shapes(tmp_path / "x", task="depth")
    assert not (tmp_path / "x").exists()
