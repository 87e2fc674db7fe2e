"""benchmarks/accuracy.py: the clutter dataset is exact and deterministic, variants are what they say, the report
is computed from the record alone."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import REPO
from torch import nn

spec = importlib.util.spec_from_file_location("accuracy_study", REPO / "benchmarks" / "accuracy.py")
acc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(acc)


def test_labels_are_the_visible_extent_of_every_class():
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(40):
        image, labels = acc.draw_clutter(rng, 128)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        for cls, x, y, w, h in labels:
            seen.add(cls)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= x - w / 2 and x + w / 2 <= 1 + 1e-6 and 0 <= y - h / 2 and y + h / 2 <= 1 + 1e-6
    assert seen == set(range(len(acc.CLASSES)))  # every class is drawn and labelled


def _squares() -> list[tuple[int, np.ndarray]]:
    """Two 40x40 squares; the second covers the right half of the first."""
    objects = []
    for cls, (x0, x1) in ((2, (10, 50)), (4, (30, 70))):
        m = np.zeros((128, 128), bool)
        m[20:60, x0:x1] = True
        objects.append((cls, m))
    return objects


def test_a_covered_object_is_boxed_by_what_shows_and_dropped_below_the_visible_share(monkeypatch):
    image = np.full((128, 128, 3), 127, np.uint8)
    labels = acc.paint(np.random.default_rng(0), image, _squares())
    assert len(labels) == 2
    (c0, x0, y0, w0, h0), (c1, x1, y1, w1, h1) = labels
    assert (c0, c1) == (2, 4)
    assert np.array([x0, y0, w0, h0]) * 128 == pytest.approx([20, 40, 20, 40])  # columns 10..29 still show
    assert np.array([x1, y1, w1, h1]) * 128 == pytest.approx([50, 40, 40, 40])
    assert (np.abs(image[20:60, 10:70].astype(int) - 127).max(-1) >= acc.MIN_CONTRAST - 20).all()  # shade sd 6
    monkeypatch.setattr(acc, "MIN_VISIBLE", 0.6)  # the first square is 50% visible: dropped at 0.6
    assert [c for c, *_ in acc.paint(np.random.default_rng(0), image, _squares())] == [4]


def test_the_dataset_is_deterministic_and_complete(tmp_path):
    a = acc.generate(tmp_path / "a", n_train=6, n_val=3, size=96, seed=1)
    b = acc.generate(tmp_path / "b", n_train=6, n_val=3, size=96, seed=1)
    for split, n in (("train", 6), ("val", 3)):
        la = sorted((a.parent / "labels" / split).glob("*.txt"))
        assert len(la) == n and len(list((a.parent / "images" / split).glob("*.jpg"))) == n
        assert [p.read_text() for p in la] == [(b.parent / "labels" / split / p.name).read_text() for p in la]
    assert "names:\n  0: circle\n  1: ring" in a.read_text()
    assert not list(tmp_path.glob(".*"))  # no staging directory left behind
    before = (a.parent / "labels" / "train" / "train_00000.txt").read_text()
    assert acc.generate(tmp_path / "a", n_train=6, n_val=3, size=96, seed=1) == a  # same parameters: reused
    assert (a.parent / "labels" / "train" / "train_00000.txt").read_text() == before
    acc.generate(tmp_path / "a", n_train=4, n_val=2, size=96, seed=2)  # other parameters: replaced, not reused
    assert len(list((a.parent / "images" / "train").glob("*.jpg"))) == 4 and '"seed": 2' in a.read_text()


def test_variants_override_exactly_the_activation_and_the_width(tmp_path):
    from ultralytics import YOLO

    import yolo_efficientrep as yer

    silu = YOLO(acc.model_yaml("yolov8n-efficientrep-silu", tmp_path)).model
    relu = YOLO(acc.model_yaml("yolov8n-efficientrep-relu", tmp_path)).model
    wide = YOLO(acc.model_yaml("yolov8n-efficientrep-w0.25-silu", tmp_path)).model
    rep = [m for m in silu.modules() if isinstance(m, yer.RepVGGBlock)]
    assert rep and all(isinstance(m.act, nn.SiLU) for m in rep)
    assert all(isinstance(m.act, nn.ReLU) for m in relu.modules() if isinstance(m, yer.RepVGGBlock))
    assert "activation" not in relu.yaml and isinstance(relu.model[9].cv1.act, nn.SiLU)  # stock SPPF keeps SiLU
    assert silu.yaml["scale"] == "n" and wide.yaml["scale"] == "n"
    widths = [
        [next(c for c in m.model[i].modules() if isinstance(c, nn.Conv2d)).out_channels for i in (0, 1, 3)]
        for m in (relu, silu, wide)
    ]
    assert widths == [[16, 32, 56], [16, 32, 56], [16, 32, 64]]  # 64/128/256 x 0.20 or 0.25, up to a multiple of 8
    last = [next(c for c in m.model[7].modules() if isinstance(c, nn.Conv2d)).out_channels for m in (silu, wide)]
    assert last == [208, 256]  # 1024 x 0.20 -> 208 (multiple of 8), x 0.25 -> 256
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(silu) == params(relu) < params(wide)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert silu.eval()(x)[0].shape == relu.eval()(x)[0].shape


def _record(maps: dict[str, list[float]], lat: dict[str, float] | None = None) -> dict:
    runs = [
        {"variant": n, "seed": s, "map50_95": v, "map50": 2 * v, "train_minutes": 1.0, "params_fused": 3_000_000}
        for n, values in maps.items()
        for s, v in enumerate(values)
    ]
    record = {"recipe": acc.RECIPE, "data": acc.DATA, "runs": runs}
    if lat:
        record["latency"] = {
            "imgsz": 640,
            "rounds": 4,
            "ms": {n: {"onnxruntime": [v, v, v * 1.1, v]} for n, v in lat.items()},
        }
    return record


def test_summary_compares_over_the_same_seeds_and_pairs_latency_rounds():
    record = _record(
        {"yolov8n": [0.10, 0.20, 0.30], "yolov8n-efficientrep-silu": [0.09, 0.18, 0.30], "yolo11n": [0.40]},
        {"yolov8n": 10.0, "yolov8n-efficientrep-silu": 9.0},
    )
    s = acc.summary(record)
    assert s["yolov8n-efficientrep-silu"]["map50_95"] == pytest.approx(0.19)
    assert s["yolov8n-efficientrep-silu"]["sd"] == pytest.approx(np.std([0.09, 0.18, 0.30], ddof=1))
    assert s["yolov8n-efficientrep-silu"]["vs_yolov8n"] == pytest.approx(0.57 / 0.60)
    assert s["yolo11n"]["vs_yolov8n"] == pytest.approx(0.40 / 0.10)  # seed 0 only, against yolov8n's seed 0
    ratio, iqr = s["yolov8n-efficientrep-silu"]["latency"]["onnxruntime"]
    assert ratio == pytest.approx(0.9) and iqr == pytest.approx(0.0)
    table = acc.render(record)
    assert "| `yolov8n-efficientrep-silu` | 3 | 0.190 (0.105) | 0.95x | 0.380 | 3.00M | - | 0.90x ± 0.00 | - |" in table
    assert table.index("`yolov8n`") < table.index("`yolov8n-efficientrep-silu`")


def test_report_rewrites_only_the_generated_block(tmp_path, monkeypatch):
    monkeypatch.setattr(acc, "RESULTS", tmp_path / "accuracy.json")
    monkeypatch.setattr(acc, "REPORT", tmp_path / "accuracy.md")
    (tmp_path / "accuracy.json").write_text(json.dumps(_record({"yolov8n": [0.1]})))
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{acc.BEGIN}\nold\n{acc.END}\nafter\n")
    acc.write_report(readme)
    text = readme.read_text()
    assert text.startswith(f"before\n{acc.BEGIN}\nAccuracy from scratch") and text.endswith(f"{acc.END}\nafter\n")
    assert "old" not in text
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="has no <!-- generated:accuracy -->"):
        acc.write_report(readme)
    assert readme.read_text() == "no markers\n"


def test_train_refuses_a_record_made_with_another_recipe(tmp_path, monkeypatch):
    monkeypatch.setattr(acc, "RESULTS", tmp_path / "accuracy.json")
    record = _record({"yolov8n": [0.1]})
    record["recipe"] = {**acc.RECIPE, "epochs": 3}
    (tmp_path / "accuracy.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="another recipe or dataset"):
        acc.train(["yolov8n"], [0], jobs=1)
