"""Bad input fails clearly and early, saying what and where (tracker issue 13); nothing is lost or half-written."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import save_checkpoint
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

import yolo_efficientrep as yer
from yolo_efficientrep import integration
from yolo_efficientrep.deployment import deploy

# ---------------------------------------------------------------------------------------------------------------------
# Training from weights that would not transfer


def _train(weights, tmp_path):
    return YOLO(weights).train(
        data="shapes.yaml", epochs=1, imgsz=32, batch=4, device="cpu", workers=0, project=str(tmp_path), name="t",
        plots=False, val=False,
    )  # fmt: skip


def test_training_a_fused_checkpoint_is_refused(tmp_path):
    model = YOLO("yolov8n-efficientrep.yaml")
    save_checkpoint(model, tmp_path / "unfused.pt")
    model.fuse()
    save_checkpoint(model, tmp_path / "fused.pt")
    with pytest.raises(
        yer.NotTrainableError, match=r"the model is fused: .*\(\d+ of them, e\.g\. model\.0\).*last\.pt"
    ):
        _train(tmp_path / "fused.pt", tmp_path)
    assert not list(tmp_path.rglob("last.pt"))  # refused before anything was trained or written
    target = DetectionModel("yolov8n-efficientrep.yaml", verbose=False)
    target.load(YOLO(tmp_path / "unfused.pt").model)  # the unfused checkpoint transfers every tensor
    reference = YOLO(tmp_path / "unfused.pt").model.float().state_dict()
    torch.testing.assert_close(target.state_dict()["model.0.conv1.conv.weight"], reference["model.0.conv1.conv.weight"])


def test_training_a_deploy_checkpoint_is_refused(tmp_path):
    save_checkpoint(YOLO("yolov8n-efficientrep.yaml"), tmp_path / "best.pt")
    out = deploy(tmp_path / "best.pt", verbose=False)
    with pytest.raises(yer.NotTrainableError, match=r"deploy checkpoint: .*for predict, val and export; train from"):
        _train(out, tmp_path)
    with pytest.raises(yer.NotTrainableError, match="deploy checkpoint"):
        YOLO("yolov8n-efficientrep.yaml").load(str(out))


# ---------------------------------------------------------------------------------------------------------------------
# Model YAMLs


def _yaml(tmp_path, rows, extra="", name="yolov8-bad.yaml", scales="scales:\n  n: [0.33, 0.25, 1024]\n"):
    """Write a model YAML whose last row is the head; return the scale-n name to build it by."""
    import yaml

    body = yaml.safe_dump({"backbone": rows[:-1], "head": rows[-1:]}, sort_keys=False)
    (tmp_path / name).write_text(f"nc: 3\n{scales}{extra}{body}")
    return name.replace("yolov8-", "yolov8n-")


DETECT = [[-1], 1, "Detect", ["nc"]]
REP_AND_CONV = [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 2]], [-1, 2, "RepBlock", [64]], DETECT]


@pytest.mark.parametrize(
    ("spec", "plugin", "stock"),
    [
        ("relu", nn.ReLU, nn.ReLU),
        ("silu", nn.SiLU, nn.SiLU),
        ("ReLU()", nn.ReLU, nn.ReLU),
        ("nn.ReLU", nn.ReLU, nn.ReLU),
        ("nn.Hardswish()", nn.Hardswish, nn.Hardswish),
        ("torch.nn.LeakyReLU(0.1)", nn.LeakyReLU, nn.LeakyReLU),
        ("true", nn.ReLU, nn.SiLU),  # each block family's own default
        ("false", nn.Identity, nn.Identity),
    ],
)
def test_every_documented_activation_spelling_works_for_plugin_and_stock_blocks(
    tmp_path, keep_default_act, spec, plugin, stock
):
    model = DetectionModel(_yaml(tmp_path, REP_AND_CONV, extra=f"activation: {spec}\n"), verbose=False)
    assert type(model.model[0].act) is plugin
    assert all(type(unit.act) is plugin for unit in model.model[2].m)
    assert type(model.model[1].act) is stock
    if spec.startswith("torch.nn.LeakyReLU"):
        assert model.model[0].act.negative_slope == model.model[1].act.negative_slope == 0.1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nn.Nope()", r"model YAML 'activation: nn.Nope\(\)': unknown activation 'nn.Nope\(\)'"),
        ("3", r"model YAML 'activation: 3': expected true, false or a torch.nn activation"),
        (
            "\"__import__('os').getcwd()\"",
            r"model YAML 'activation: __import__\('os'\).getcwd\(\)': unknown activation",
        ),
        ("nn.LeakyReLU(slope=2)", r"model YAML 'activation: nn.LeakyReLU\(slope=2\)': unknown activation"),
    ],
)
def test_a_wrong_activation_names_the_key(tmp_path, keep_default_act, spec, message):
    with pytest.raises(yer.ModelConfigError, match=message):
        DetectionModel(_yaml(tmp_path, REP_AND_CONV, extra=f"activation: {spec}\n"), verbose=False)


def test_every_block_owns_its_activation(tmp_path, keep_default_act):
    rows = [*REP_AND_CONV[:-1], [-1, 2, "RepBlock", [64, False, "RepVGGBlock", {"act": "nn.PReLU()"}]], DETECT]
    model = DetectionModel(_yaml(tmp_path, rows, extra="activation: nn.PReLU()\n"), verbose=False)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) > 6 and len({id(m) for m in prelus}) == len(prelus)  # one slope per block, none shared
    with torch.no_grad():
        model.model[0].act.weight.fill_(0.5)
    assert model.model[2].m[0].act.weight.item() == pytest.approx(0.25)  # untouched: PReLU's initial slope

    shared = nn.PReLU()
    block = yer.RepBlock(8, 8, 3, act=shared)
    assert len({id(u.act) for u in block.m}) == 3 and all(u.act is not shared for u in block.m)


def test_unregister_restores_every_reference_to_parse_model(tmp_path):
    import ultralytics.nn
    from ultralytics.nn import tasks

    wrapped = tasks.parse_model
    assert ultralytics.nn.parse_model in (wrapped, wrapped.__wrapped__)
    yer.unregister()
    try:
        assert ultralytics.nn.parse_model is tasks.parse_model is wrapped.__wrapped__
        with pytest.raises(KeyError) as e:  # stock behaviour for a name stock Ultralytics does not know
            DetectionModel(_yaml(tmp_path, REP_AND_CONV), verbose=False)
        assert "another plugin" not in str(e.value)
    finally:
        yer.register()
    assert ultralytics.nn.parse_model is tasks.parse_model and integration._is_ours(ultralytics.nn.parse_model)


def test_the_autoload_hint_is_not_given_when_autoload_is_already_off(monkeypatch):
    from ultralytics.nn import tasks

    class RepBlock(nn.Module):
        pass

    yer.unregister()
    tasks.RepBlock = RepBlock
    try:
        with pytest.raises(yer.RegistrationError, match="set YOLO_EFFICIENTREP_AUTOLOAD=0"):
            yer.register()
        monkeypatch.setenv("YOLO_EFFICIENTREP_AUTOLOAD", "0")
        with pytest.raises(yer.RegistrationError) as e:
            yer.register()
        assert "AUTOLOAD" not in str(e.value) and "do not import yolo_efficientrep" in str(e.value)
    finally:
        del tasks.RepBlock
        yer.register()


C = [-1, 1, "RepVGGBlock", [32, 3, 2]]  # a plain first layer


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([C, [-1, 1, "RepBlock", [-16]], DETECT], r"layer 1 \(RepBlock, row .*output channels c2 must be a positive"),
        ([C, [-1, 1, "SimConv", [0]], DETECT], r"layer 1 \(SimConv, .*c2 must be a positive number, got 0"),
        ([C, [-1, 1, "SimConv", [float("nan")]], DETECT], r"layer 1 \(SimConv, .*c2 must be a positive .*got nan"),
        ([C, [-1, "three", "RepBlock", [32]], DETECT], r"layer 1 \(RepBlock, .*repeats must be .* got 'three'"),
        ([C, [-1, -3, "RepBlock", [32]], DETECT], r"layer 1 \(RepBlock, .*repeats must be a whole number >= 1, got -3"),
        ([C, [7, 1, "SimConv", [32]], DETECT], r"layer 1 \(SimConv, .*'from' 7 names a layer that does not exist"),
        ([C, [-5, 1, "SimConv", [32]], DETECT], r"layer 1 \(SimConv, .*'from' -5 points before the first layer"),
        ([C, [2, 1, "SimConv", [32]], DETECT], r"'from' 2 is not an earlier layer; layer 1 reads layers 0 to 0"),
        ([C, C, [[-1, 0, 9], 1, "BiFusion", [32]], DETECT], r"layer 2 \(BiFusion, .*'from' 9 names a layer that"),
        ([C, [-1, 1, "RepVGGBlock", [32, 3, 0]], DETECT], r"layer 1 \(RepVGGBlock, .*stride s=0 must be a positive"),
        ([C, [-1, 1, "SimConv", [32, 3, 1, None, 1, 0]], DETECT], r"layer 1 \(SimConv, .*dilation d=0 must be"),
        ([C, [-1, 1, "SimSPPF", [32, 6]], DETECT], r"layer 1 \(SimSPPF, .*needs an odd max-pool kernel.*k=6"),
        (
            [C, C, [-1, 1, "Transpose", [32, 3, 2]], [[-1, 0], 1, "Concat", [1]], DETECT],
            r"layer 3 \(Concat, .*inputs disagree in size: 33x33 \(from -1\), 32x32 \(from 0\) for a 64x64",
        ),
        (
            [C, C, C, [[0, 1, 2], 1, "BiFusion", [32]], DETECT],  # [lower, current, higher]: the wrong order
            r"layer 3 \(BiFusion, .*\[higher, current, lower\] levels, sized H/2, H and 2H; got 32x32 \(from 0\), "
            r"16x16 \(from 1\), 8x8 \(from 2\)",
        ),
    ],
    ids=["c2-negative", "c2-zero", "c2-nan", "repeats-string", "repeats-negative", "from-beyond-end",
         "from-before-start", "from-later-layer", "bifusion-input-out-of-range", "stride-0", "dilation-0",
         "simsppf-even-k", "transpose-k3-concat", "bifusion-wrong-order"],
)  # fmt: skip
def test_bad_rows_name_the_layer_and_the_module(tmp_path, rows, message):
    with pytest.raises(yer.ModelConfigError, match=message):
        DetectionModel(_yaml(tmp_path, rows), verbose=False)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "nc: 3\n"])
def test_an_empty_model_yaml_is_explained(tmp_path, text):
    (tmp_path / "yolov8n-empty.yaml").write_text(text)
    with pytest.raises(yer.ModelConfigError, match=r"model YAML .*yolov8n-empty.yaml.* has no 'backbone' and 'head'"):
        YOLO("yolov8n-empty.yaml")


def test_missing_scale_letters_are_named(tmp_path):
    _yaml(tmp_path, REP_AND_CONV, scales="scales:\n  n: [0.33, 0.25, 1024]\n  s: [0.33, 0.5, 1024]\n")
    with pytest.raises(yer.ModelConfigError, match=r"scale 'x' is not one of its scales \(n, s\)"):
        YOLO("yolov8x-bad.yaml")
    with pytest.raises(FileNotFoundError, match=r"'q' is not one of the scales of yolov8-bad.yaml \(n, s\)"):
        YOLO("yolov8q-bad.yaml")
    with pytest.raises(FileNotFoundError, match=r"'q' is not one of the scales of yolov8-efficientrep.yaml \(n, s, m"):
        YOLO("yolov8q-efficientrep.yaml")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([-1, 2, "BepC3", [32, "1/0"]], r"layer 1 \(BepC3, .*'1/0' divides by zero"),
        ([-1, 2, "BepC3", [32, {"e": "1/0"}]], r"layer 1 \(BepC3, .*e: '1/0' divides by zero"),
        ([-1, 2, "BepC3", [32, "half"]], r"layer 1 \(BepC3, .*hidden-channel ratio e='half' must be a number"),
        ([-1, 2, "RepBlock", [32, {"block": "Conv"}]], r"layer 1 \(RepBlock, .*block=Conv is not a rep unit RepBlock"),
        ([-1, 2, "BepC3", [32, {"block": "RepVGGBlok"}]], r"block=RepVGGBlok .*did you mean RepVGGBlock\?"),
        ([-1, 2, "BepC3", [32, {"e": {"n": 0.5, "q": 0.25}}]], r"'e' maps scale letters \['n', 'q'\], but 'q' is not"),
    ],
    ids=["e-divides-by-zero", "e-keyword-divides-by-zero", "e-string", "block-stock-conv", "block-typo",
         "unknown-scale-letter"],
)  # fmt: skip
def test_misleading_messages_are_now_clear(tmp_path, row, message):
    with pytest.raises(yer.ModelConfigError, match=message) as e:
        DetectionModel(_yaml(tmp_path, [C, row, DETECT]), verbose=False)
    assert "1/01/0" not in str(e.value) and "not callable" not in str(e.value)


def test_repblock_with_block_bottlerep_means_yolov6s_bottlerep_mode():
    a, b = yer.RepBlock(16, 16, 4, block=yer.BottleRep), yer.RepBlock(16, 16, 4, bottle_rep=True)
    assert [type(u) for u in a.m] == [type(u) for u in b.m] == [yer.BottleRep, yer.BottleRep]  # n // 2, not n
    assert all(isinstance(u.conv1, yer.RepVGGBlock) and isinstance(u.alpha, torch.Tensor) for u in a.m)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


# ---------------------------------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_verbose_builds_print_whole_layer_tables():
    import logging
    import threading

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    def table(recs):
        """The layer rows of the tables in ``recs``: their index, module and arguments columns."""
        return [list(_ROW.match(r.getMessage()).group(1, 5)) for r in recs if _is_row(r.getMessage())]

    logger, handler = logging.getLogger("ultralytics"), Keep()
    logger.addHandler(handler)
    try:
        DetectionModel("yolov8n-efficientrep.yaml", verbose=True)
        reference = table(records)
        records.clear()
        threads = [
            threading.Thread(target=lambda: [DetectionModel("yolov8n-efficientrep.yaml", verbose=True) for _ in "ab"])
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        logger.removeHandler(handler)
    assert len(reference) == 23 and reference[2] == ["2", "yolo_efficientrep.blocks.RepBlock"]
    assert not any("modules.block.C3" in r.getMessage() for r in records)  # no stand-in row escaped
    for t in threads:
        assert table([r for r in records if r.thread == t.ident]) == reference * 2
    rows = [r for r in records if _is_row(r.getMessage())]
    for start in range(0, len(rows), len(reference)):  # each table printed in one piece, not interleaved
        assert len({r.thread for r in rows[start : start + len(reference)]}) == 1


_ROW = re.compile(r"^\s*(\d+)\s+(-?\d+|\[[-\d, ]*\])\s+(\d+)\s+(\d+)\s+([\w.]+)")  # Ultralytics' layer table row


def _is_row(message: str) -> bool:
    return _ROW.match(message) is not None
