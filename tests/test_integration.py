"""Registration into stock Ultralytics: parsing, scaling, fusing, YAML lookup, reversibility and error messages."""

from __future__ import annotations

import re
import sys

import pytest
import torch
from conftest import ASSETS, count, randomize_bn, ultralytics_log
from torch import nn
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.nn.modules import Conv
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import checks

import yolo_efficientrep as yer
from yolo_efficientrep import integration

EVERYBLOCK = ASSETS / "yolov8-everyblock.yaml"


def _everyblock(scale: str) -> str:
    return str(ASSETS / f"yolov8{scale}-everyblock.yaml")


def _summary(model):
    """Per layer: module name and the channel/repeat numbers that matter for scaling."""
    rows = {}
    for m in model.model:
        name = type(m).__name__
        if isinstance(m, yer.RepVGGBlock):
            rows[m.i] = (name, m.conv1.conv.in_channels, m.conv1.conv.out_channels)
        elif isinstance(m, yer.RepBlock):
            rows[m.i] = (
                name,
                m.m[0].conv1.conv.in_channels
                if isinstance(m.m[0], yer.RepVGGBlock)
                else m.m[0].conv1.conv1.conv.in_channels,
                m.m[-1].c2 if isinstance(m.m[-1], yer.RepVGGBlock) else m.m[-1].conv2.c2,
                len(m.m),
            )
        elif isinstance(m, yer.BepC3):
            rows[m.i] = (name, m.cv1.conv.in_channels, m.cv3.conv.out_channels, m.cv1.conv.out_channels, len(m.m.m))
        elif isinstance(m, yer.BiFusion):
            rows[m.i] = (
                name,
                m.upsample.upsample.in_channels,
                m.cv1.conv.in_channels,
                m.cv2.conv.in_channels,
                m.cv3.conv.out_channels,
            )
        elif isinstance(m, (yer.SimConv, yer.SimSPPF, yer.CSPSPPF, yer.BottleRep, yer.Transpose)):
            first = next(c for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d)))
            last = [c for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))][-1]
            rows[m.i] = (name, first.in_channels, last.out_channels)
    return rows


def test_everyblock_yaml_channels_and_repeats_follow_stock_scaling_at_n():
    model = YOLO(_everyblock("n")).model
    assert _summary(model) == {
        0: ("RepVGGBlock", 3, 16),
        1: ("SimConv", 16, 32),
        2: ("RepBlock", 32, 32, 2),  # 6 * 0.33 -> 2 units
        3: ("RepVGGBlock", 32, 64),
        4: ("BepC3", 64, 64, 42, 2),  # 12 * 0.33 -> 4 -> 2 BottleReps, hidden int(64 * 2/3) = 42
        5: ("RepVGGBlock", 64, 128),
        6: ("RepBlock", 128, 128, 3),  # 18 * 0.33 -> 6 -> 3 BottleReps
        7: ("RepVGGBlock", 128, 256),
        8: ("BottleRep", 256, 256),
        9: ("SimCSPSPPF", 256, 256),
        10: ("CSPSPPF", 256, 256),
        11: ("SimSPPF", 256, 256),
        12: ("SimConv", 256, 64),
        13: ("BiFusion", 64, 128, 64, 64),  # inputs: layer 12, layer 6, layer 4
        14: ("RepBlock", 64, 64, 4),
        15: ("SimConv", 64, 32),
        16: ("Transpose", 32, 32),
        18: ("BepC3", 96, 32, 16, 2),  # Concat(32 + 64)
        19: ("SimConv", 32, 32),
        21: ("RepBlock", 64, 64, 4),
        22: ("RepVGGBlock", 64, 64),
        24: ("RepBlock", 128, 128, 4),
    }
    assert model.model[-1].cv2[0][0].conv.in_channels == 32  # Detect sees the BepC3 output


def test_everyblock_yaml_channels_and_repeats_follow_stock_scaling_at_l():
    model = YOLO(_everyblock("l")).model
    summary = _summary(model)
    assert summary[0] == ("RepVGGBlock", 3, 64)
    assert summary[2] == ("RepBlock", 128, 128, 6)  # depth 1.0
    assert summary[4] == ("BepC3", 256, 256, 170, 6)  # int(256 * 2/3) = 170, 12 -> 6 BottleReps
    assert summary[6] == ("RepBlock", 512, 512, 9)  # 18 -> 9 BottleReps
    assert summary[7] == ("RepVGGBlock", 512, 512)  # 1024 capped by max_channels 512
    assert summary[13] == ("BiFusion", 256, 512, 256, 256)
    assert summary[18] == ("BepC3", 384, 128, 64, 6)
    assert summary[24] == ("RepBlock", 512, 512, 12)


@pytest.mark.parametrize("scale", "nsmlx")
def test_everyblock_yaml_builds_and_runs_at_every_scale(scale):
    model = YOLO(_everyblock(scale)).model.eval()
    assert model.yaml["scale"] == scale
    with torch.no_grad():
        y = model(torch.zeros(1, 3, 64, 64))
    assert y[0].shape == (1, 4 + 3, 64 + 16 + 4)


def test_plugin_rows_carry_ultralytics_layer_attributes():
    model = YOLO(_everyblock("n")).model
    bifusion = model.model[13]
    assert (bifusion.i, bifusion.f, bifusion.type) == (13, [-1, 6, 4], "yolo_efficientrep.blocks.BiFusion")
    assert bifusion.np == sum(p.numel() for p in bifusion.parameters())
    assert {4, 6, 12, 15, 18, 21} <= set(model.save)


def test_activation_rule(keep_default_act, tmp_path):
    model = YOLO(_everyblock("n")).model
    assert isinstance(model.model[0].act, nn.ReLU)  # rep default
    assert all(isinstance(m.act, nn.SiLU) for m in model.model[24].m)  # per-row {act: nn.SiLU()}
    text = EVERYBLOCK.read_text().replace("nc: 3", "nc: 3\nactivation: nn.Hardswish()")
    (tmp_path / "yolov8-act.yaml").write_text(text)
    model = YOLO("yolov8n-act.yaml").model
    assert isinstance(model.model[0].act, nn.Hardswish)  # the YAML key overrides the block default
    assert isinstance(model.model[4].cv1.act, nn.Hardswish)
    assert all(isinstance(m.act, nn.SiLU) for m in model.model[24].m)  # the row still wins


def test_yolov8_efficientrep_layout():
    model = YOLO("yolov8n-efficientrep.yaml").model
    names = [type(m).__name__ for m in model.model]
    assert names[:10] == [
        "RepVGGBlock",
        "RepVGGBlock",
        "RepBlock",
        "RepVGGBlock",
        "RepBlock",
        "RepVGGBlock",
        "RepBlock",
        "RepVGGBlock",
        "RepBlock",
        "SPPF",
    ]
    assert names[16] == names[19] == "RepVGGBlock" and names[-1] == "Detect"
    assert all(model.model[i].conv1.conv.stride == (2, 2) for i in (0, 1, 3, 5, 7, 16, 19))
    assert "Conv" not in names and "C2f" not in names


@pytest.mark.parametrize("name", ["yolov8n.yaml", "yolo11n.yaml", "yolov6n.yaml"])
def test_stock_models_unaffected(name, keep_default_act):
    from ultralytics.nn.modules import Conv

    try:
        checks.check_yaml(name.replace("n.yaml", ".yaml"))
    except FileNotFoundError:
        pytest.skip(f"{name} does not exist in this Ultralytics version")

    def build():
        Conv.default_act = nn.SiLU()  # activation: leaks across builds before 8.4.175
        torch.manual_seed(0)
        model = DetectionModel(name, verbose=False).eval()
        with torch.no_grad():
            out = model(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))[0]
        return sum(p.numel() for p in model.parameters()), [type(m) for m in model.modules()], out

    registered = build()
    yer.unregister()
    try:
        assert not yer.is_registered()
        stock = build()
    finally:
        yer.register()
    assert registered[0] == stock[0]
    assert registered[1] == stock[1]
    torch.testing.assert_close(registered[2], stock[2], rtol=0, atol=0)


def test_register_is_idempotent_and_unregister_restores_stock_exactly():
    wrapped = tasks.parse_model
    original = wrapped.__wrapped__
    original_check_file = checks.check_file.__wrapped__
    from ultralytics.data import utils as data_utils

    original_check_cls = data_utils.check_cls_dataset.__wrapped__
    yer.register()
    yer.register()
    assert tasks.parse_model is wrapped and not integration._is_ours(tasks.parse_model.__wrapped__)
    yer.unregister()
    try:
        assert tasks.parse_model is original
        assert checks.check_file is original_check_file
        assert data_utils.check_cls_dataset is original_check_cls
        assert not any(name in vars(tasks) for name in yer.BLOCKS)
        for module in list(sys.modules.values()):
            if module is not None and getattr(module, "__name__", "").startswith("ultralytics"):
                assert not integration._is_ours(getattr(module, "check_file", None))
                assert not integration._is_ours(getattr(module, "check_cls_dataset", None))
                assert not integration._is_ours(getattr(module, "check_requirements", None))
        with pytest.raises(FileNotFoundError):
            YOLO("yolov8n-efficientrep.yaml")
        with pytest.raises(KeyError):
            DetectionModel(_everyblock("n"), verbose=False)
        yer.unregister()  # harmless twice
    finally:
        yer.register()
    assert yer.is_registered()
    assert isinstance(YOLO("yolov8n-efficientrep.yaml").model.model[0], yer.RepVGGBlock)


def test_register_refuses_a_conflicting_class_and_changes_nothing():
    class RepBlock(nn.Module):  # e.g. a fork's own RepBlock
        pass

    yer.unregister()
    tasks.RepBlock = RepBlock
    try:
        with pytest.raises(
            yer.RegistrationError, match=r"RepBlock -> .*test_integration.*RepBlock.*Nothing was changed"
        ):
            yer.register()
        assert not yer.is_registered() and "RepVGGBlock" not in vars(tasks)
        assert tasks.RepBlock is RepBlock
    finally:
        del tasks.RepBlock
        yer.register()


def test_parse_refuses_a_name_rebound_after_registration():
    class RepVGGBlock(nn.Module):
        pass

    tasks.RepVGGBlock = RepVGGBlock
    try:
        with pytest.raises(yer.RegistrationError, match=r"layer 0 \(RepVGGBlock\).*test_integration"):
            YOLO("yolov8n-efficientrep.yaml")
    finally:
        tasks.RepVGGBlock = yer.RepVGGBlock


def test_unsupported_ultralytics_version(monkeypatch):
    import ultralytics

    monkeypatch.setattr(ultralytics, "__version__", "8.0.239")
    with pytest.raises(yer.UnsupportedVersionError, match=r"ultralytics>=8\.1,<8\.5; found ultralytics 8\.0\.239"):
        yer.register()
    monkeypatch.setattr(ultralytics, "__version__", "8.5.0")
    with pytest.raises(yer.UnsupportedVersionError, match="found ultralytics 8.5.0"):
        yer.register()


def _write_yaml(tmp_path, rows, name="yolov8-bad.yaml", extra=""):
    import yaml

    body = {"nc": 3, "scales": {"n": [0.33, 0.25, 1024]}, "backbone": rows[:-1], "head": rows[-1:]}
    (tmp_path / name).write_text(extra + yaml.safe_dump(body, sort_keys=False))
    return name.replace("yolov8-", "yolov8n-")


DETECT = [[-1], 1, "Detect", ["nc"]]


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        (
            [[-1, 1, "RepVGGBlock", [64, 3, 2, None, 1, 1, True, False, True, 7]], DETECT],
            yer.ModelConfigError,
            r"layer 0 \(RepVGGBlock.*do not fit RepVGGBlock\(c1",
        ),
        ([[-1, 1, "RepVGGBlock", [64, 4, 2]], DETECT], yer.ModelConfigError, r"layer 0 \(RepVGGBlock.*odd kernel size"),
        (
            [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 1, "RepBlock", ["wide"]], DETECT],
            yer.ModelConfigError,
            r"layer 1 \(RepBlock.*first argument must be the output channels",
        ),
        (
            [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 1, "BiFusion", [64]], DETECT],
            yer.ModelConfigError,
            r"layer 1 \(BiFusion.*'from' must be a list of input layers",
        ),
        (
            [[-1, 1, "RepVGGBlock", [64, 3, 2]], [[-1, 0], 1, "RepBlock", [64]], DETECT],
            yer.ModelConfigError,
            r"layer 1 \(RepBlock.*'from' must be a single input layer",
        ),
        (
            [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 2, "BepC3", [64, 0.5, {"act": "nn.Nope()"}]], DETECT],
            yer.ModelConfigError,
            r"layer 1 \(BepC3.*unknown activation 'nn.Nope\(\)'",
        ),
        (
            [[-1, 1, "RepVGGBlok", [64, 3, 2]], DETECT],
            yer.UnknownModuleError,
            r"layer 0: unknown module 'RepVGGBlok'; did you mean RepVGGBlock",
        ),
        (
            [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "nn.Nope", []], DETECT],
            yer.UnknownModuleError,
            r"layer 1: unknown module 'nn.Nope'",
        ),
    ],
    ids=[
        "too-many-args",
        "even-kernel",
        "c2-not-a-number",
        "bifusion-single-input",
        "repblock-two-inputs",
        "bad-activation",
        "unknown-name",
        "unknown-torch-name",
    ],
)
def test_bad_yaml_rows_name_the_layer_and_module(tmp_path, rows, error, message):
    name = _write_yaml(tmp_path, rows)
    with pytest.raises(error, match=message):
        YOLO(name)


def test_unknown_module_error_is_still_a_key_error(tmp_path):
    name = _write_yaml(tmp_path, [[-1, 1, "Nonsense", [64]], DETECT])
    with pytest.raises(KeyError, match="unknown module 'Nonsense'"):
        YOLO(name)


def test_bad_yaml_activation_names_the_key(tmp_path, keep_default_act):
    name = _write_yaml(tmp_path, [[-1, 1, "RepVGGBlock", [64, 3, 2]], DETECT], extra="activation: nn.Nope()\n")
    # The plugin's own check, before Ultralytics evaluates the string (which would fail with its own error)
    with pytest.raises(yer.ModelConfigError, match=r"^model YAML 'activation: nn\.Nope\(\)': unknown activation"):
        YOLO(name)


def test_bare_yaml_names_resolve_and_a_local_file_wins(tmp_path):
    assert isinstance(YOLO("yolov8s-efficientrep.yaml").model.model[0], yer.RepVGGBlock)
    assert YOLO("yolov8s-efficientrep.yaml").model.model[0].conv1.conv.out_channels == 32  # scale s
    local = (yer.cfg_dir() / "models" / "yolov8-efficientrep.yaml").read_text().replace("nc: 80", "nc: 7")
    (tmp_path / "yolov8-efficientrep.yaml").write_text(local)
    assert YOLO("yolov8n-efficientrep.yaml").model.model[-1].nc == 7


def test_misspelled_yaml_lists_the_plugin_yamls():
    with pytest.raises(
        FileNotFoundError, match=r"does not exist.*Did you mean yolov8-efficientrep\.yaml.*model YAMLs shipped.*reppan"
    ) as e:
        YOLO("yolov8n-efficientrepp.yaml")
    assert "shapes" not in str(e.value)  # a model name gets model YAMLs as suggestions, not dataset files
    with pytest.raises(FileNotFoundError, match=r"Did you mean shapes\.yaml"):
        checks.check_file("shapez.yaml")


def _fuse_and_compare(model, x):
    """Fuse with Ultralytics' model.fuse(); assert unchanged outputs and no BatchNorm left; return the fused output."""
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        after = model(x)[0]
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert count(model, nn.BatchNorm2d) == 0
    return after


def test_whole_model_fuse_is_exact_and_leaves_no_batchnorm():
    torch.manual_seed(0)
    model = randomize_bn(YOLO("yolov8n-efficientrep.yaml").model)
    reps = count(model, yer.RepVGGBlock)
    assert reps == 17 and count(model, nn.BatchNorm2d) > 50  # 7 stride-2 units + 10 RepBlock units
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    after = _fuse_and_compare(model, x)
    assert count(model, yer.RepVGGBlock) == reps
    assert all(m.fused and not hasattr(m, "conv1") for m in model.modules() if isinstance(m, yer.RepVGGBlock))
    assert model.is_fused()
    with torch.no_grad():
        model.fuse(verbose=False)  # fusing twice is harmless
        torch.testing.assert_close(model(x)[0], after, rtol=0, atol=0)


def test_everyblock_model_fuse_is_exact():
    torch.manual_seed(0)
    model = randomize_bn(YOLO(_everyblock("s")).model)
    _fuse_and_compare(model, torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(3)))
    convs_per_rep = [
        sum(isinstance(c, nn.Conv2d) for c in m.modules()) for m in model.modules() if isinstance(m, yer.RepVGGBlock)
    ]
    assert convs_per_rep and set(convs_per_rep) == {1}


def test_fuse_through_the_yolo_api_counts_parameters():
    model = YOLO("yolov8n-efficientrep.yaml")
    unfused = sum(p.numel() for p in model.model.parameters())
    # What fusing must remove, from the unfused structure: per rep unit the 1x1 kernel and every BN's affine pair, one
    # bias of c2 coming back; per other conv+BN its BN pair, again one bias coming back.
    reps = [m for m in model.model.modules() if isinstance(m, yer.RepVGGBlock)]
    inner = {id(u.conv1) for u in reps} | {id(u.conv2) for u in reps if u.conv2 is not None}
    removed = 0
    for u in reps:
        c2 = u.conv1.conv.out_channels
        removed += c2 + (u.conv2.conv.weight.numel() + 2 * c2 if u.conv2 is not None else 0)
        removed += 2 * u.bn.num_features if u.bn is not None else 0
    for m in model.model.modules():
        if isinstance(m, Conv) and hasattr(m, "bn") and id(m) not in inner:
            removed += m.bn.num_features
    assert len(reps) > 10 and removed > 0
    model.fuse()
    fused = sum(p.numel() for p in model.model.parameters())
    assert fused == unfused - removed
    assert count(model.model, nn.BatchNorm2d) == 0


def test_weights_only_allow_list_gains_exactly_the_plugin_classes():
    from torch import serialization

    ours = {cls for cls, _ in yer.BLOCKS.values()}
    registered = set(serialization.get_safe_globals())
    assert ours <= registered
    yer.unregister()
    try:
        assert not (ours & set(serialization.get_safe_globals()))
        assert set(serialization.get_safe_globals()) == registered - ours
    finally:
        yer.register()
    assert set(serialization.get_safe_globals()) == registered


def test_missing_export_dependency_names_the_extra(monkeypatch):
    """Offline with AutoInstall off, Ultralytics cannot install onnx itself: the message names the plugin's extra."""
    from importlib import metadata

    real_version = metadata.version

    def version(name):
        if name.lower() == "onnxslim":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.setattr(checks, "AUTOINSTALL", False)
    with ultralytics_log() as records:
        assert checks.check_requirements(("onnx>=1.12.0", "onnxslim>=0.1.82")) is False
        assert checks.check_requirements("pytest") is True  # satisfied: nothing said
    messages = [r.getMessage() for r in records]
    assert "yolo-efficientrep: onnxslim missing; install the export dependencies with pip install " in "".join(messages)
    assert "pip install '.[export]' in a clone of yolo-efficientrep" in "".join(messages)
    assert sum("yolo-efficientrep" in m for m in messages) == 1


def _logged(build) -> tuple[list[str], BaseException | None]:
    """Messages Ultralytics' logger emits while ``build()`` runs, and the error it raised (if any)."""
    error = None
    with ultralytics_log() as records:
        try:
            build()
        except Exception as e:
            error = e
    return [r.getMessage() for r in records], error


def test_layer_table_shows_the_plugin_rows_not_their_stand_ins():
    messages, error = _logged(lambda: DetectionModel("yolov6n-efficientrep.yaml", verbose=True))
    assert error is None
    header = next(i for i, m in enumerate(messages) if "arguments" in m)
    rows = [m for m in messages[header + 1 :] if re.match(r"^\s*\d+\s", m)]
    assert [int(r.split()[0]) for r in rows] == list(range(23))  # every layer once, no probe rows
    assert "yolo_efficientrep.blocks.RepVGGBlock" in rows[0] and "yolo_efficientrep.blocks.BiFusion" in rows[11]
    assert "yolo_efficientrep.heads.EffiDeHead" in rows[22] and "ultralytics.nn.modules.conv.Concat" in rows[17]
    stand_ins = ("ultralytics.nn.modules.conv.Conv ", "ultralytics.nn.modules.block.C3 ", "modules.head.Detect ")
    assert not [r for r in rows if any(s in r + " " for s in stand_ins)]


def test_a_failing_build_still_logs_the_table_it_reached(tmp_path):
    # A stock row that Ultralytics itself cannot build, after a plugin row: the plugin holds the table back while
    # Ultralytics builds the stand-ins; on the failure the rows built so far are released, not lost.
    rows = [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 1, None, 1, 1, True, "extra"]], DETECT]
    name = _write_yaml(tmp_path, rows)
    messages, error = _logged(lambda: DetectionModel(name, verbose=True))
    assert isinstance(error, TypeError), error
    header = next(i for i, m in enumerate(messages) if "arguments" in m)
    assert re.match(r"^\s*0\s+-1\s+1\s", messages[header + 1])  # layer 0 (as built) precedes the error


def test_repeats_on_a_single_unit_row_stack_copies(tmp_path):
    rows = [[-1, 1, "RepVGGBlock", [64, 3, 2]], [-1, 9, "RepVGGBlock", [128, 3, 1]], DETECT]  # depth 0.33: 3 copies
    model = randomize_bn(YOLO(_write_yaml(tmp_path, rows)).model)
    stack = model.model[1]
    assert isinstance(stack, nn.Sequential) and [type(m) for m in stack] == [yer.RepVGGBlock] * 3
    assert [(m.c1, m.c2) for m in stack] == [(16, 32), (32, 32), (32, 32)]  # width 0.25: 64 -> 16, 128 -> 32
    assert stack[0].bn is None and stack[1].bn is not None and stack[2].bn is not None
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        torch.testing.assert_close(model(x)[0], before, rtol=1e-4, atol=1e-4)


def test_parse_model_wrapper_passes_any_signature_through():
    """A future parse_model(d, ch, verbose, new_arg=...) keeps working: the wrapper forwards what it does not read."""
    seen = []

    def future_parse_model(d, ch, verbose=True, new_arg=None):
        seen.append((ch, verbose, new_arg))
        return tasks.__dict__["parse_model"].__wrapped__(d, ch, verbose)

    future_parse_model.__module__ = tasks.__name__
    wrapped = integration._wrap_parse_model(future_parse_model)
    stock = {"nc": 3, "backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": [[-1, 1, "Conv", [16, 3, 2]]]}
    plugin = {"nc": 3, "backbone": [[-1, 1, "RepVGGBlock", [16, 3, 2]]], "head": [[-1, 1, "Conv", [16, 3, 2]]]}
    wrapped(stock, 3, new_arg="a")
    model, _ = wrapped(plugin, ch=3, verbose=False, new_arg="b")
    assert seen == [(3, True, "a"), (3, False, "b")]
    assert isinstance(model[0], yer.RepVGGBlock)
