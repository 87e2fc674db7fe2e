"""Official YOLOv6 checkpoints -> Ultralytics: exactness against YOLOv6's own outputs, every layout, refusals."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import types
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ASSETS, bin_path, randomize_bn, run, run_python
from torch import nn
from ultralytics import YOLO

from yolo_efficientrep.convert import ConvertError, YOLOv6StandIn, _load, convert_yolov6, read_yolov6
from yolo_efficientrep.heads import EffiDeHead

FIXTURES = ASSETS / "yolov6"
KEYS = FIXTURES / "keys"
DISTILL, DFL = "yolov6n-v0.4-distill", "yolov6n-v0.3-dfl-nc3"
# YOLOv6's outputs are float32 forwards of float16 weights; ours folds BN in another order: allow float rounding only.
BOX_RTOL, SCORE_ATOL = 1e-3, 1e-3


def _reference(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.io.pt", weights_only=True)


def _errors(model: nn.Module, ref: dict) -> tuple[float, float]:
    """Largest box error relative to the largest box coordinate, largest score error, vs YOLOv6's ``(1, A, 5 + nc)``."""
    with torch.no_grad():
        y = model(ref["input"])[0][0].T  # (A, 4 + nc)
    want = ref["output"][0]
    assert y.shape[0] == want.shape[0] and y.shape[1] == want.shape[1] - 1
    assert torch.all(want[:, 4] == 1)  # YOLOv6's constant objectness, which Ultralytics' contract has no column for
    box = ((y[:, :4] - want[:, :4]).abs().max() / want[:, :4].abs().max()).item()
    return box, (y[:, 4:] - want[:, 5:]).abs().max().item()


def _assert_matches(path: Path, ref: dict) -> tuple[float, float]:
    """``path`` loaded by stock ``YOLO`` equals YOLOv6's output, before and after ``model.fuse()``."""
    model = YOLO(path).model.float().eval()
    unfused = _errors(model, ref)
    fused = _errors(model.fuse(verbose=False), ref)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for box, score in (unfused, fused):
        assert box <= BOX_RTOL and score <= SCORE_ATOL, (unfused, fused)
    return max(unfused[0], fused[0]), max(unfused[1], fused[1])


def _tree(name: str) -> nn.Module:
    """The fixture's pickled YOLOv6 model as inert stand-ins (for building variants)."""
    return _load(FIXTURES / f"{name}.pt")["model"]


@contextlib.contextmanager
def _yolov6_classes():
    """Fake ``yolov6.*`` modules while saving, so stand-in trees pickle under YOLOv6's own class paths."""
    added = []

    def fake(path: str) -> type:
        module, _, name = path.rpartition(".")
        for k in range(1, module.count(".") + 2):
            part = ".".join(module.split(".")[:k])
            if part not in sys.modules:
                sys.modules[part] = types.ModuleType(part)
                added.append(part)
        mod = sys.modules[module]
        if not hasattr(mod, name):
            cls = type(name, (nn.Module,), {"__module__": module, "forward_fuse": lambda self, x: x})
            cls.__qualname__ = name
            setattr(mod, name, cls)
        return getattr(mod, name)

    try:
        yield fake
    finally:
        for part in added:
            sys.modules.pop(part, None)


def _save_tree(tree: nn.Module, path: Path, fused_forward: bool = False, **extra) -> Path:
    """Save a stand-in tree as YOLOv6 does (``{'model': Model, ...}``), under YOLOv6's class paths."""
    tree = deepcopy(tree)
    with _yolov6_classes() as fake:
        for m in tree.modules():
            if isinstance(m, YOLOv6StandIn):
                m.__class__ = fake(type(m).yolov6_class)
                if fused_forward and type(m).__name__ in {"ConvModule", "SimConv", "Conv"}:
                    m.forward = m.forward_fuse  # YOLOv6's fuse_model() pickles this bound method
        torch.save({"model": tree, "optimizer": None, "ema": None, "updates": None, "epoch": 299, **extra}, path)
    return path


# --------------------------------------------------------------------------------------------------------- fixtures
@pytest.mark.slow
@pytest.mark.parametrize("name", [DISTILL, DFL])
def test_fixture_converts_without_yolov6_and_matches_its_output(name, tmp_path):
    code = f"""
import importlib.abc, sys, torch
class _NoYOLOv6(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "yolov6":
            raise ModuleNotFoundError("No module named 'yolov6'", name=name)
sys.meta_path.insert(0, _NoYOLOv6())
try:
    import yolov6
    raise SystemExit("yolov6 importable")
except ModuleNotFoundError:
    pass
from yolo_efficientrep import convert_yolov6
convert_yolov6({str(FIXTURES / f"{name}.pt")!r}, "converted.pt", data={"shapes.yaml" if "nc3" in name else None!r})
assert not any(m.startswith("yolov6") for m in sys.modules)
"""
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    if name == DISTILL:
        assert "YOLOv6 v3.0-N (0.4.x layout), effidehead_distill_ns head, nc=80, training form, float16" in log
        assert "5.07M parameters as stored" in log and "4.65M parameters fused" in log
    else:
        assert "YOLOv6 v3.0-N (0.3.0 layout), effidehead head, nc=3, training form, float16" in log
        assert "reg_max=17" in log
    box, score = _assert_matches(tmp_path / "converted.pt", _reference(name))
    assert box < 1e-4 and score < 1e-4  # measured: ~2e-5 (float32 BN folding); a structural mistake is >1e-1


def test_converted_checkpoint_metadata(tmp_path):
    out = convert_yolov6(FIXTURES / f"{DISTILL}.pt", tmp_path / "n.pt", verbose=False)
    ckpt = torch.load(out, weights_only=False)
    model = ckpt["model"]
    assert ckpt["train_args"]["task"] == "detect" and ckpt["train_args"]["model"] == "yolov6n-efficientrep.yaml"
    assert model.names[0] == "person" and model.names[79] == "toothbrush" and len(model.names) == 80
    assert model.stride.tolist() == [8, 16, 32] and type(model.model[-1]) is EffiDeHead
    assert model.model[-1].reg_max == 1 and model.yaml["nc"] == 80
    assert next(model.parameters()).dtype == torch.float16  # exact: training-form float16 tensors are copied
    assert ckpt["yolov6"]["head"] == "effidehead_distill_ns" and ckpt["yolov6"]["release"] == "0.4.x"
    wrapper = YOLO(out)
    assert wrapper.task == "detect" and wrapper.names == model.names


def test_names_from_data_and_mismatch(tmp_path):
    out = convert_yolov6(FIXTURES / f"{DFL}.pt", tmp_path / "a.pt", data="shapes.yaml", verbose=False)
    import yaml

    from yolo_efficientrep import find_yaml

    names = yaml.safe_load(find_yaml("shapes.yaml").read_text())["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else names
    assert YOLO(out).names == names and len(names) == 3
    out = convert_yolov6(FIXTURES / f"{DFL}.pt", tmp_path / "b.pt", names=["a", "b", "c"], verbose=False)
    assert YOLO(out).names == {0: "a", 1: "b", 2: "c"}
    with pytest.raises(ConvertError, match=r"has 3 classes but .* predicts 80; convert without data="):
        convert_yolov6(FIXTURES / f"{DISTILL}.pt", tmp_path / "c.pt", data="shapes.yaml")
    assert not (tmp_path / "c.pt").exists()


# --------------------------------------------------------------------------------------------------------- variants
def _flat(tree: nn.Module) -> dict[str, torch.Tensor]:
    return dict(tree.state_dict())


def _to_v03_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """0.4.x key names -> 0.3.0 (SimConv/Conv units hold conv/bn directly; CSP-SPPF not nested)."""
    out = {}
    for k, v in state.items():
        k = re.sub(r"\.block\.(conv|bn)\.", r".\1.", k).replace("ERBlock_5.2.cspsppf.", "ERBlock_5.2.")
        out[k] = v
    return out


def _fold(w, bn_prefix, state, eps=1e-3):
    std = (state[f"{bn_prefix}.running_var"].float() + eps).sqrt()
    t = state[f"{bn_prefix}.weight"].float() / std
    return w.float() * t.reshape(-1, 1, 1, 1), state[f"{bn_prefix}.bias"].float() - state[
        f"{bn_prefix}.running_mean"
    ] * t


def _to_deploy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """YOLOv6's fuse_model() + switch_to_deploy(), re-done from the maths on a 0.4.x state dict."""
    out = {k: v.float() for k, v in state.items()}
    for unit in sorted({k[: k.index(".rbr_dense.")] for k in state if ".rbr_dense." in k}):
        w3, b3 = _fold(out.pop(f"{unit}.rbr_dense.conv.weight"), f"{unit}.rbr_dense.bn", out)
        w1, b1 = _fold(out.pop(f"{unit}.rbr_1x1.conv.weight"), f"{unit}.rbr_1x1.bn", out)
        w, b = w3 + nn.functional.pad(w1, [1, 1, 1, 1]), b3 + b1
        if f"{unit}.rbr_identity.weight" in out:
            eye = torch.zeros_like(w3)
            eye[torch.arange(w3.shape[0]), torch.arange(w3.shape[0]), 1, 1] = 1
            wi, bi = _fold(eye, f"{unit}.rbr_identity", out)
            w, b = w + wi, b + bi
        for k in [k for k in out if k.startswith(f"{unit}.rbr_")]:
            del out[k]
        out[f"{unit}.rbr_reparam.weight"], out[f"{unit}.rbr_reparam.bias"] = w, b
    for conv in sorted({k[: -len(".conv.weight")] for k in out if k.endswith(".conv.weight") and ".rbr_" not in k}):
        if f"{conv}.bn.weight" in out:
            w, b = _fold(out[f"{conv}.conv.weight"], f"{conv}.bn", out)
            out[f"{conv}.conv.weight"], out[f"{conv}.conv.bias"] = w, b
            for k in [k for k in out if k.startswith(f"{conv}.bn.")]:
                del out[k]
    return out


def _variant(kind: str, tmp_path: Path) -> tuple[Path, str, str]:
    """Build a checkpoint variant from a fixture; return it, the fixture whose output it must give, and the log line."""
    path = tmp_path / f"{kind}.pt"
    g = torch.Generator().manual_seed(0)
    if kind == "fp32-tree-fused-forward":  # a pickled fp32 module tree with YOLOv6's pickled forward_fuse methods
        _save_tree(_tree(DISTILL).float(), path, fused_forward=True)
        return path, DISTILL, "training form, float32"
    if kind == "bare-state-dict":
        torch.save(_flat(_tree(DISTILL)), path)
        return path, DISTILL, "from 'state_dict'"
    if kind == "training-checkpoint":  # ema is what YOLOv6 evaluates; 'model' differs; numpy metadata
        ema = _tree(DISTILL)
        model = deepcopy(ema)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g).to(p.dtype))
        optimizer = {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.01, "params": [0]}]}
        with _yolov6_classes() as fake:
            for tree in (ema, model):
                for m in tree.modules():
                    if isinstance(m, YOLOv6StandIn):
                        m.__class__ = fake(type(m).yolov6_class)
            results = (np.float64(0.375), np.float64(0.52))
            torch.save(
                {"model": model, "ema": ema, "updates": 1234, "optimizer": optimizer, "epoch": 12, "results": results},
                path,
            )
        return path, DISTILL, "from 'ema'"
    if kind == "deploy-form":
        torch.save(_to_deploy(_flat(_tree(DISTILL))), path)
        return path, DISTILL, "deploy form"
    if kind == "fuse_ab-v0.4":  # anchor-aided head: extra _ab branches, inference branches keep their names
        state = {k: v for k, v in _flat(_tree(DISTILL)).items() if "reg_preds_dist" not in k}
        for i, c in enumerate((32, 64, 128)):
            state[f"detect.cls_preds_ab.{i}.weight"] = torch.randn(240, c, 1, 1, generator=g).half()
            state[f"detect.cls_preds_ab.{i}.bias"] = torch.randn(240, generator=g).half()
            state[f"detect.reg_preds_ab.{i}.weight"] = torch.randn(12, c, 1, 1, generator=g).half()
            state[f"detect.reg_preds_ab.{i}.bias"] = torch.randn(12, generator=g).half()
        torch.save(state, path)
        return path, DISTILL, "effidehead_fuseab head"
    if kind == "fuse_ab-v0.3":  # 0.3.0 names its inference branches *_af
        state = {}
        for k, v in _flat(_tree(DFL)).items():
            state[re.sub(r"^detect\.(cls|reg)_preds\.", r"detect.\1_preds_af.", k)] = v
        for i, c in enumerate((32, 64, 128)):
            state[f"detect.cls_preds_ab.{i}.weight"] = torch.randn(9, c, 1, 1, generator=g).half()
            state[f"detect.reg_preds_ab.{i}.weight"] = torch.randn(12, c, 1, 1, generator=g).half()
        torch.save(state, path)
        return path, DFL, "(0.3.0 layout), effidehead_fuseab head"
    if kind == "distill-v0.3":  # 0.3.0 distill: reg_preds is the DFL branch, reg_preds_lrtb the distances
        state = {}
        for k, v in _to_v03_layout(_flat(_tree(DISTILL))).items():
            k = re.sub(r"^detect\.reg_preds\.", "detect.reg_preds_lrtb.", k)
            state[re.sub(r"^detect\.reg_preds_dist\.", "detect.reg_preds.", k)] = v
        torch.save(state, path)
        return path, DISTILL, "(0.3.0 layout), effidehead_distill_ns head"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "fp32-tree-fused-forward",
        "bare-state-dict",
        "training-checkpoint",
        "deploy-form",
        "fuse_ab-v0.4",
        "fuse_ab-v0.3",
        "distill-v0.3",
    ],
)
def test_variant_converts_exactly(kind, tmp_path, caplog):
    path, fixture, expect = _variant(kind, tmp_path)
    with caplog.at_level("INFO", logger="ultralytics"):
        out = convert_yolov6(path, tmp_path / "out.pt", data="shapes.yaml" if fixture == DFL else None)
    assert expect in caplog.text
    box, score = _assert_matches(out, _reference(fixture))
    assert box < 1e-4 and score < 1e-4, (box, score)
    if kind == "deploy-form":  # exact in float32, and still trainable: the 1x1 and identity branches start at zero
        model = YOLO(out).model
        assert next(model.parameters()).dtype == torch.float32
        unit = model.model[2].m[1]
        assert torch.all(unit.conv2.conv.weight == 0) and torch.all(unit.bn.weight == 0)


# ------------------------------------------------------------------------------- N/S/M/L layouts from the key lists
# Plugin layer index of every YOLOv6 module (the plugin's yolov6-*.yaml); written here independently of the converter.
_V6_TO_LAYER = {
    "backbone.stem": 0, "backbone.ERBlock_2.0": 1, "backbone.ERBlock_2.1": 2, "backbone.ERBlock_3.0": 3,
    "backbone.ERBlock_3.1": 4, "backbone.ERBlock_4.0": 5, "backbone.ERBlock_4.1": 6, "backbone.ERBlock_5.0": 7,
    "backbone.ERBlock_5.1": 8, "backbone.ERBlock_5.2": 9, "neck.reduce_layer0": 10, "neck.Bifusion0": 11,
    "neck.Rep_p4": 12, "neck.reduce_layer1": 13, "neck.Bifusion1": 14, "neck.Rep_p3": 15, "neck.downsample2": 16,
    "neck.Rep_n3": 18, "neck.downsample1": 19, "neck.Rep_n4": 21, "detect": 22,
}  # fmt: skip


def _plugin_key(v6_key: str, scale: str, v03_distill: bool = False) -> str | None:
    """Where a YOLOv6 tensor lives in the plugin model (None: dropped at inference), from the documented layouts."""
    if v03_distill and v6_key.startswith("detect.reg_preds."):
        return None  # 0.3.0's distillation head: reg_preds is the DFL training branch, reg_preds_lrtb the inference one
    key = re.sub(r"\.block\.(conv|bn)\.", r".\1.", v6_key)
    key = re.sub(r"^backbone\.ERBlock_5\.2\.(cspsppf|sppf)\.", "backbone.ERBlock_5.2.", key)
    if re.search(r"^detect\.(proj|proj_conv\.weight)$|_ab\.|reg_preds_dist\.", key):
        return None
    prefix = max((p for p in _V6_TO_LAYER if key.startswith(p + ".")), key=len)
    layer, rest = _V6_TO_LAYER[prefix], key[len(prefix) + 1 :]
    if layer == 22:
        rest = re.sub(r"^cls_convs\.(\d)\.", r"cv3.\1.0.", rest)
        rest = re.sub(r"^reg_convs\.(\d)\.", r"cv2.\1.0.", rest)
        rest = re.sub(r"^cls_preds(_af)?\.(\d)\.", r"cv3.\2.1.", rest)
        rest = re.sub(r"^reg_preds(_af|_lrtb)?\.(\d)\.", r"cv2.\2.1.", rest)
    elif layer in (2, 4, 6, 8, 12, 15, 18, 21):  # stages: RepBlock (N/S) or BepC3 holding a BottleRep RepBlock (M/L)
        lead = "m." if scale in "ml" else ""
        rest = re.sub(rf"^{lead}conv1\.", f"{lead}m.0.", rest)
        rest = re.sub(rf"^{lead}block\.(\d+)\.", lambda g: f"{lead}m.{int(g[1]) + 1}.", rest)
    elif layer in (0, 1, 3, 5, 7) and scale == "l":  # L's stride-2 units: plain convs in a RepVGGBlock(branches=False)
        rest = "conv1." + rest
    rest = rest.replace("rbr_dense.", "conv1.").replace("rbr_1x1.", "conv2.").replace("rbr_identity.", "bn.")
    rest = rest.replace("upsample.upsample_transpose.", "upsample.upsample.")
    return f"model.{layer}.{rest}"


def _listing(file: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in file.read_text().splitlines()[1:]:
        key, rest = line.split(" ", 1)
        shapes[key] = tuple(int(d) for d in re.findall(r"\d+", rest.split(")")[0]))
    return shapes


LISTINGS = sorted(p.name for p in KEYS.glob("*.txt"))


@pytest.mark.parametrize("listing", LISTINGS)
def test_official_layout_round_trip(listing, tmp_path):
    """Every tensor of every official model has a plugin counterpart of the same shape, and converts exactly."""
    release, name, head = re.match(r"v(0\.\d)\.0-yolov6(\w)-(\w+)\.txt", listing).groups()
    scale = name
    family = "yolov6-efficientrep" if scale in "ns" else "yolov6-cspbep"
    model = randomize_bn(YOLO(f"{family.replace('yolov6', f'yolov6{scale}')}.yaml").model, seed=3)
    ours = model.state_dict()
    shapes = _listing(KEYS / listing)
    g = torch.Generator().manual_seed(1)
    state, mapped = {}, set()
    for key, shape in shapes.items():
        target = _plugin_key(key, scale, v03_distill=release == "0.3" and head == "distill")
        if target is None or key.endswith("num_batches_tracked"):
            state[key] = torch.rand(shape, generator=g) if shape else torch.tensor(0)
            continue
        if target not in ours and key.endswith(".conv.bias"):  # 0.3.0 ConvWrapper: conv bias before the BN
            bias = torch.randn(shape, generator=g)
            state[key] = bias
            mean_key = re.sub(r"\.conv\.bias$", ".bn.running_mean", key)
            state[mean_key] = ours[_plugin_key(mean_key, scale)] + bias  # same BN output as the plugin model's
            continue
        assert target in ours, (key, target)
        assert tuple(ours[target].shape) == shape, (key, target, tuple(ours[target].shape), shape)
        if key not in state:
            state[key] = ours[target].clone()
        mapped.add(target)
    # ... and every plugin tensor has an official source (BN counters and the fixed DFL projection aside).
    assert {k for k in ours if not re.search(r"num_batches_tracked|\.dfl\.conv\.weight$", k)} <= mapped
    torch.save(
        {k: v.half() if v.is_floating_point() and scale in "ns" else v for k, v in state.items()}, tmp_path / "v6.pt"
    )
    out = convert_yolov6(tmp_path / "v6.pt", tmp_path / "out.pt", verbose=False)
    found, _ = read_yolov6(tmp_path / "v6.pt")
    assert found.scale == scale and found.release == ("0.3.0" if release == "0.3" else "0.4.x")
    assert (
        found.head == {"plain": "effidehead", "fuseab": "effidehead_fuseab", "distill": "effidehead_distill_ns"}[head]
    )
    if scale in "ns":  # the float16 copy of the reference is the reference the conversion must reproduce
        model = model.half().float()
    x = torch.rand(1, 3, 64, 64, generator=g)
    converted = YOLO(out).model.float().eval()
    with torch.no_grad():
        want, got = model.eval()(x)[0], converted(x)[0]
    assert (got - want).abs().max() / want.abs().max() < 1e-4


# ----------------------------------------------------------------------------------------------------------- refusals
def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ConvertError, match=r"refused to load global '(posix|os|nt)\.system'"):
        convert_yolov6(tmp_path / "evil.pt", tmp_path / "out.pt")
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def _refusal_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = (FIXTURES / f"{DISTILL}.pt").read_bytes()
    state = _flat(_tree(DISTILL))
    files = {}

    def write(name, obj=None, raw=None):
        path = tmp_path / name
        path.write_bytes(raw) if raw is not None else torch.save(obj, path)
        return path

    files["truncated"] = (write("t.pt", raw=good[: len(good) // 2]), r"not a readable PyTorch checkpoint")
    files["not-a-checkpoint"] = (write("r.pt", raw=b"hello, this is text"), r"not a readable PyTorch checkpoint")
    files["unrelated-state-dict"] = (
        write("u.pt", {"fc.weight": torch.zeros(2, 2)}),
        r"not a YOLOv6 detection checkpoint",
    )
    files["list"] = (write("l.pt", [1, 2]), r"holds a list, not a YOLOv6 model")
    files["p6"] = (
        write("p6.pt", {**state, "backbone.ERBlock_6.0.rbr_dense.conv.weight": torch.zeros(1)}),
        r"YOLOv6 P6 model",
    )
    v2 = {k.replace("neck.Bifusion0", "neck.upsample0"): v for k, v in state.items()}
    files["v2"] = (write("v2.pt", v2), r"YOLOv6 v1/v2 model \(Rep-PAN neck without BiFusion\)")
    files["custom-width"] = (
        write("w.pt", {**state, "backbone.stem.rbr_dense.conv.weight": torch.zeros(24, 3, 3, 3)}),
        r"unknown width",
    )
    extra = {**state, "neck.extra_layer.conv.weight": torch.zeros(4, 4, 1, 1)}
    files["extra-tensors"] = (write("x.pt", extra), r"holds 1 tensors a YOLOv6 v3.0-N does not have")
    deeper = {
        **state,
        **{k.replace("Rep_p4.block.2.", "Rep_p4.block.3."): v for k, v in state.items() if "Rep_p4.block.2." in k},
    }
    files["custom-depth"] = (write("d.pt", deeper), r"more than 4 units: a custom depth")
    files["ultralytics"] = (
        write("ul.pt", {"model": YOLO("yolov8n.yaml").model}),
        r"refused to load global 'ultralytics",
    )
    return files


def test_wrong_files_are_refused_clearly_and_nothing_is_written(tmp_path):
    for label, (path, message) in _refusal_files(tmp_path).items():
        out = tmp_path / f"{label}-out.pt"
        with pytest.raises(ConvertError, match=message) as raised:
            convert_yolov6(path, out)
        assert not out.exists(), label
        assert not list(tmp_path.glob(".*.tmp")), label
        assert "nothing was written" in str(raised.value), label
        if label not in {"truncated", "not-a-checkpoint", "ultralytics"}:  # readable: say what is supported
            assert "Supported: YOLOv6 v3.0 P5 detection models N, S, M and L" in str(raised.value), label


def test_output_path_is_checked_first_and_never_overwritten(tmp_path):
    src = FIXTURES / f"{DISTILL}.pt"
    (tmp_path / "keep.pt").write_text("precious")
    with pytest.raises(ConvertError, match=r"already exists; pass overwrite=True"):
        convert_yolov6(src, tmp_path / "keep.pt")
    assert (tmp_path / "keep.pt").read_text() == "precious"
    with pytest.raises(ConvertError, match=r"folder '.*missing' does not exist"):
        convert_yolov6(src, tmp_path / "missing" / "x.pt")
    with pytest.raises(ConvertError, match=r"must end in \.pt"):
        convert_yolov6(src, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at"):
        convert_yolov6(tmp_path / "absent.pt", tmp_path / "y.pt")
    convert_yolov6(src, tmp_path / "keep.pt", overwrite=True, verbose=False)
    assert YOLO(tmp_path / "keep.pt").task == "detect"


# -------------------------------------------------------------------------------------- the stock yolo command on it
@pytest.mark.slow
def test_stock_yolo_val_predict_export_and_fine_tune(tmp_path):
    nc3 = convert_yolov6(FIXTURES / f"{DFL}.pt", tmp_path / "nc3.pt", data="shapes.yaml", verbose=False)
    yolo = bin_path("yolo")
    common = ["imgsz=64", "batch=4", "device=cpu", "workers=0", f"project={tmp_path / 'runs'}", "exist_ok=True"]
    val = run([yolo, "val", f"model={nc3}", "data=shapes.yaml", "name=val", *common], cwd=tmp_path)
    assert val.returncode == 0, val.stderr[-3000:]
    assert re.search(r"all\s+\d+\s+\d+", val.stdout + val.stderr)

    coco = convert_yolov6(FIXTURES / f"{DISTILL}.pt", tmp_path / "coco.pt", verbose=False)
    image = tmp_path / "image.png"
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)).save(image)
    predict = run(
        [yolo, "predict", f"model={coco}", f"source={image}", "conf=0.5", "save_txt", "name=pred", *common],
        cwd=tmp_path,
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    labels = tmp_path / "runs" / "pred" / "labels" / "image.txt"
    expected = YOLO(coco).predict(image, imgsz=64, conf=0.5, device="cpu", verbose=False)[0]
    lines = labels.read_text().splitlines() if labels.exists() else []
    assert len(lines) == len(expected.boxes)
    got = np.array([[float(v) for v in line.split()] for line in lines]).reshape(-1, 5)
    want = np.concatenate([expected.boxes.cls[:, None].numpy(), expected.boxes.xywhn.numpy()], 1)
    np.testing.assert_allclose(got[np.lexsort(got.T)], want[np.lexsort(want.T)], atol=1e-5)

    track = run([yolo, "track", f"model={coco}", f"source={image}", "conf=0.5", "name=track", *common], cwd=tmp_path)
    assert track.returncode == 0, track.stderr[-3000:]  # Ultralytics' trackers need the test extra's lap offline

    # Fine-tune the nc=80 model on the 3-class shapes data: everything but the class predictors transfers.
    train = run([yolo, "train", f"model={coco}", "data=shapes.yaml", "epochs=1", "name=ft", *common], cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    total = len(YOLO(coco).model.state_dict())
    assert f"Transferred {total - 6}/{total} items from pretrained weights" in train.stdout + train.stderr

    export = run([yolo, "export", f"model={coco}", "format=onnx", "imgsz=64"], cwd=tmp_path)
    if "onnxscript" in export.stderr:  # Ultralytics < 8.3 exports through torch's dynamo exporter: stock limitation
        pytest.skip("this Ultralytics exports ONNX through torch's dynamo exporter, which needs onnxscript")
    assert export.returncode == 0, export.stderr[-3000:]
    import onnx
    import onnxruntime

    onnx_file = coco.with_suffix(".onnx")
    ops = {n.op_type for n in onnx.load(onnx_file).graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    x = torch.rand(1, 3, 64, 64)
    (onnx_y,) = onnxruntime.InferenceSession(str(onnx_file)).run(None, {"images": x.numpy()})
    torch_y = YOLO(coco).model.float().eval().fuse(verbose=False)(x)[0]
    np.testing.assert_allclose(onnx_y, torch_y.numpy(), rtol=1e-3, atol=1e-3)


def test_cli_convert(tmp_path):
    cli = bin_path("yolo-efficientrep")
    src = FIXTURES / f"{DFL}.pt"
    ok = run([cli, "convert", f"weights={src}", "out=m.pt", "data=shapes.yaml"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "YOLOv6 v3.0-N (0.3.0 layout), effidehead head, nc=3" in ok.stdout + ok.stderr
    assert YOLO(tmp_path / "m.pt").model.model[-1].reg_max == 17
    again = run([cli, "convert", f"weights={src}", "out=m.pt"], cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("yolo-efficientrep convert: out='m.pt' already exists")
    forced = run([cli, "convert", f"weights={src}", "out=m.pt", "data=shapes.yaml", "overwrite"], cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
