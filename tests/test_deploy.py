"""Plugin-free deployment: plugin blocks rewritten as stock Ultralytics modules, loaded where the plugin cannot be."""

from __future__ import annotations

import json
import pickle
import textwrap
import types
from copy import deepcopy
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ASSETS, BLOCK_PLUGIN, build_or_refused, count, randomize_bn, run_python, save_checkpoint
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.modules import C3, SPPF, Bottleneck, Concat, Conv, ConvTranspose

from yolo_efficientrep import RepVGGBlock, SimConv, find_yaml
from yolo_efficientrep._utils import tensors
from yolo_efficientrep.data import TASK_NAMES
from yolo_efficientrep.deployment import DEPLOY_RTOL, DeployError, deploy, max_relative_error, to_stock
from yolo_efficientrep.zoo import MODEL_FAMILIES, scaled_name

DATA = {"seg": "shapes-seg.yaml", "pose": "shapes-pose.yaml", "obb": "shapes-obb.yaml", "cls": "shapes-cls"}


def _data_for(family: str) -> str:
    return DATA.get(family.rpartition("-")[2], "shapes.yaml")


def _is_plugin(m: nn.Module) -> bool:
    return any(c.__module__.startswith("yolo_efficientrep") for c in type(m).__mro__)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, and a random BottleRep shortcut weight of either sign."""
    randomize_bn(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(getattr(m, "alpha", None), torch.Tensor):
            m.alpha.copy_(torch.rand(1, generator=g) * 3 - 1.5)
    return model.eval()


def _everyblock(tmp_path: Path, scale: str = "n") -> Path:
    file = tmp_path / f"yolov8{scale}-everyblock.yaml"
    file.write_text((ASSETS / "yolov8-everyblock.yaml").read_text())
    return file


def _check_graph(model: nn.Module) -> None:
    """Each layer's index is its position, inputs come from earlier layers, and ``save`` holds exactly those read."""
    read = set()
    for i, m in enumerate(model.model):
        assert m.i == i
        for j in [m.f] if isinstance(m.f, int) else m.f:
            assert j == -1 or 0 <= j < i, (i, m.f)
            read |= {j} - {-1}
    assert model.save == sorted(read)


@pytest.mark.parametrize("name", ["everyblock", *(scaled_name(f, "n") for f in MODEL_FAMILIES)])
def test_every_model_becomes_stock_with_the_same_outputs(name, tmp_path):
    source = str(_everyblock(tmp_path)) if name == "everyblock" else name
    built = build_or_refused(lambda: YOLO(source), name)  # YOLO11/YOLO26 families: refused on Ultralytics 8.1
    if built is None:
        return
    model = _randomize(built.model)
    stock = to_stock(model)

    assert not [type(m).__name__ for m in stock.modules() if _is_plugin(m)]
    assert max_relative_error(model, stock) <= DEPLOY_RTOL
    _check_graph(stock)
    fused, stock_fused = deepcopy(model).fuse(verbose=False), deepcopy(stock).fuse(verbose=False)
    assert max_relative_error(model, stock_fused) <= DEPLOY_RTOL
    assert count(stock_fused, nn.BatchNorm2d) == 0
    # one conv per fused rep unit; a BottleRep whose shortcut weight is not 0 or 1 adds a depthwise scaling conv, an
    # EffiDeHead one stem copy per level
    scaled = sum(
        type(m).__name__ == "BottleRep" and m.shortcut and float(m.alpha) not in (0.0, 1.0) for m in model.modules()
    )
    stems = sum(m.nl for m in model.modules() if type(m).__name__ == "EffiDeHead")  # each stem runs in both branches
    assert count(stock_fused, nn.Conv2d) == count(fused, nn.Conv2d) + scaled + stems
    assert count(stock_fused, nn.ConvTranspose2d) == count(fused, nn.ConvTranspose2d)
    assert (stock.names, stock.stride.tolist(), stock.yaml) == (model.names, model.stride.tolist(), model.yaml)


def test_each_block_maps_to_the_documented_stock_modules(tmp_path):
    model = _randomize(YOLO(str(_everyblock(tmp_path))).model)
    stock = to_stock(model)
    old = [type(m).__name__ for m in model.model]
    new = [type(m).__name__ for m in stock.model]
    assert old[13] == "BiFusion" and len(new) == len(old) + 5
    # RepVGGBlock/SimConv -> Conv, RepBlock -> Sequential, BepC3 -> C3, BottleRep -> Bottleneck (behind a scaling
    # Conv for alpha not in {0, 1}), CSPSPPF -> C3, SimSPPF -> SPPF, BiFusion -> six layers, Transpose -> ConvTranspose
    assert new[:13] == [
        *("Conv", "Conv", "Sequential", "Conv", "C3", "Conv", "Sequential", "Conv", "Bottleneck", "C3", "C3", "SPPF"),
        "Conv",
    ]
    assert new[13:19] == ["ConvTranspose", "Conv", "Conv", "Conv", "Concat", "Conv"]
    assert new[19:] == [
        *("Sequential", "Conv", "ConvTranspose", "Concat", "C3", "Conv", "Concat", "Sequential", "Conv", "Concat"),
        *("Sequential", "Detect"),
    ]
    assert [m.f for m in stock.model[13:19]] == [-1, 6, 4, -1, [13, 14, -1], -1]
    assert stock.model[-1].f == [23, 26, 29]  # was [18, 21, 24]: each index after the BiFusion moved by five
    assert isinstance(stock.model[8], Bottleneck) and stock.model[8].add  # alpha fixed at 1 (no buffer)
    scaler, bottleneck = stock.model[6][0]  # BottleRep mode with a random alpha buffer: scaling conv + Bottleneck
    assert isinstance(scaler, Conv) and scaler.conv.groups == scaler.conv.in_channels == scaler.conv.out_channels
    assert isinstance(bottleneck, Bottleneck) and bottleneck.add
    assert all(isinstance(u, Conv) for u in stock.model[2])  # plain RepBlock: one Conv per unit
    assert isinstance(stock.model[11], SPPF) and isinstance(stock.model[10], C3)
    assert isinstance(stock.model[17], Concat) and isinstance(stock.model[13], ConvTranspose)


@pytest.mark.parametrize("alpha", [1.0, 0.0, 0.37, -2.5])
def test_bottlerep_shortcut_weight_folds_exactly(alpha):
    model = randomize_bn(YOLO("yolov8n-cspbep.yaml").model)
    bottle_reps = [m for m in model.modules() if type(m).__name__ == "BottleRep"]
    for m in bottle_reps:
        m.alpha.fill_(alpha)
    stock = to_stock(model)
    assert max_relative_error(model, stock) <= DEPLOY_RTOL
    assert max_relative_error(model, deepcopy(stock).fuse(verbose=False)) <= DEPLOY_RTOL
    bottlenecks = [m for m in stock.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == len(bottle_reps)
    assert all(b.add == (alpha != 0.0) for b in bottlenecks)
    pairs = [s for s in stock.modules() if isinstance(s, nn.Sequential) and [type(m) for m in s] == [Conv, Bottleneck]]
    scalers = [s[0] for s in pairs]
    assert len(scalers) == (len(bottle_reps) if alpha not in (0.0, 1.0) else 0)
    assert all(torch.all(s.conv.weight == alpha) for s in scalers)


def test_unfused_single_conv_units_are_copied_bit_for_bit():
    """A branch-free RepVGGBlock is already one conv+BN: its tensors are copied unchanged, with no arithmetic."""
    model = randomize_bn(YOLO("yolov6l-cspbep.yaml").model)  # L trains its stride-2 RepVGGBlocks without branches
    single = {i: m for i, m in enumerate(model.model) if type(m) is RepVGGBlock and m.conv2 is None}
    assert sorted(single) == [0, 1, 3, 5, 7]
    stock = to_stock(model)
    for i, unit in single.items():
        conv = stock.model[i]
        assert type(conv) is Conv and conv.conv is not unit.conv1.conv  # a copy: the source model is untouched
        assert torch.equal(conv.conv.weight, unit.conv1.conv.weight)
        for name in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(conv.bn, name), getattr(unit.conv1.bn, name))


def test_a_subclass_of_a_plugin_block_is_refused_with_its_layer():
    class ShiftedRep(RepVGGBlock):  # computes something no stock module is known to match
        def forward(self, x):
            return super().forward(x) + 1

    model = YOLO("yolov8n-efficientrep.yaml").model
    i = next(i for i, m in enumerate(model.model) if type(m) is RepVGGBlock)
    old = model.model[i]
    model.model[i] = ShiftedRep(old.c1, old.c2, 3, 2)
    model.model[i].f, model.model[i].i = old.f, old.i
    with pytest.raises(DeployError, match=rf"model\.{i}: .*ShiftedRep has no known stock equivalent .* refused"):
        to_stock(model)


def test_a_model_without_a_layer_graph_is_refused():
    with pytest.raises(DeployError, match="expected an Ultralytics model .* got torch.nn.modules.container.Sequential"):
        to_stock(nn.Sequential(SimConv(3, 8)))


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints


def _checkpoint(family: str, path: Path, seed: int = 0) -> Path:
    """An Ultralytics training checkpoint of ``family`` (scale n) for its offline data: random BN, EMA in fp16."""
    from ultralytics import __version__
    from ultralytics.nn import tasks

    data = _data_for(family)
    task = {"seg": "segment", "pose": "pose", "obb": "obb", "cls": "classify"}.get(family.rpartition("-")[2], "detect")
    names = dict(enumerate(TASK_NAMES[task]))
    model_cls = {
        "detect": tasks.DetectionModel,
        "segment": tasks.SegmentationModel,
        "pose": tasks.PoseModel,
        "obb": tasks.OBBModel,
        "classify": tasks.ClassificationModel,
    }[task]
    kwargs = (
        {"data_kpt_shape": tuple(yaml.safe_load(find_yaml(data).read_text())["kpt_shape"])} if task == "pose" else {}
    )
    name = scaled_name(family, "n")
    torch.manual_seed(seed)  # the conv weights too: the same checkpoint whichever test ran before
    model = _randomize(model_cls(name, nc=len(names), verbose=False, **kwargs), seed)
    for head in model.modules():  # outputs like a trained model's, so that there are detections to compare:
        if isinstance(getattr(head, "cv3", None), nn.ModuleList):
            for branch in head.cv3:
                nn.init.zeros_(branch[-1].bias)  # class logits near 0, not the prior's -5
        if hasattr(head, "proto"):
            for branch in head.cv4:
                nn.init.ones_(branch[-1].bias)  # positive mask coefficients: masks not empty (empty ones are dropped)
    model.names = names  # set by Ultralytics' trainer (set_model_attributes), like kpt_shape below
    if task == "pose":
        model.kpt_shape = kwargs["data_kpt_shape"]
    train_args = {"task": task, "mode": "train", "model": name, "data": data, "imgsz": 64, "epochs": 1, "batch": 8}
    ckpt = {
        "date": "2026-11-22T00:00:00",
        "version": __version__,
        "epoch": 0,
        "best_fitness": 0.5,
        "model": None,
        "ema": model.half(),
        "updates": 4,
        "optimizer": {"state": {}},
        "train_args": train_args,
        "train_metrics": {"fitness": 0.5},
    }
    torch.save(ckpt, path)
    return path


def _pickled_globals(file: Path) -> set[str]:
    """Every class or function the pickle of a checkpoint references (loads it, recording each lookup)."""
    found = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            found.add(f"{module}.{name}")
            return super().find_class(module, name)

    recording = types.ModuleType("recording_pickle")
    recording.Unpickler, recording.load = Recording, pickle.load
    torch.load(file, map_location="cpu", weights_only=False, pickle_module=recording)
    return found


def test_deploy_writes_a_checkpoint_that_needs_no_plugin(tmp_path):
    src = _checkpoint("yolov6-efficientrep", tmp_path / "best.pt")
    before = src.read_bytes()
    out = deploy(src)
    assert out == tmp_path / "best-deploy.pt" and src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-deploy.pt", "best.pt"]  # no temporary file left

    found = _pickled_globals(out)
    assert not [g for g in found if g.startswith("yolo_efficientrep")]
    assert {g.partition(".")[0] for g in found} <= {"ultralytics", "torch", "collections", "builtins", "__builtin__"}
    assert any(g.startswith("yolo_efficientrep") for g in _pickled_globals(src))  # the source did need the plugin

    old, new = torch.load(src, weights_only=False), torch.load(out, weights_only=False)
    assert new["ema"] is None and new["optimizer"] is None and new["epoch"] == -1
    assert new["train_args"] == old["train_args"] and new["train_metrics"] == old["train_metrics"]
    model = new["model"]
    assert (model.names, model.stride.tolist(), model.yaml) == (
        old["ema"].names,
        old["ema"].stride.tolist(),
        old["ema"].yaml,
    )
    assert next(model.parameters()).dtype == torch.float32
    record = new["deploy"]
    assert record["source"] == "best.pt" and record["dtype"] == "float32"
    assert record["plugin_layers"] == sum(_is_plugin(m) for m in old["ema"].model) > 15
    assert record["layers"] == [23, 33]  # two BiFusions, five extra layers each
    assert 0 < record["max_rel_error"] <= DEPLOY_RTOL and record["fused_max_rel_error"] <= DEPLOY_RTOL
    assert max_relative_error(old["ema"].float(), model) <= DEPLOY_RTOL


def test_deploy_out_path_and_float16(tmp_path):
    src = _checkpoint("yolov8-efficientrep", tmp_path / "last.pt")
    out = deploy(src, out=tmp_path / "export" / "edge.pt", half=True)
    assert out == tmp_path / "export" / "edge.pt"
    new = torch.load(out, weights_only=False)
    assert next(new["model"].parameters()).dtype == torch.float16 and new["deploy"]["dtype"] == "float16"
    assert 0 < new["deploy"]["float16_rel_drift"] < 1e-2  # measured and recorded, not hidden
    old = torch.load(src, weights_only=False)["ema"].float()
    assert max_relative_error(old, new["model"].float()) == pytest.approx(new["deploy"]["float16_rel_drift"])


def test_deploy_refuses_bad_input_and_writes_nothing(tmp_path, monkeypatch):
    src = _checkpoint("yolov8-cspbep", tmp_path / "best.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.pt"):
        deploy(tmp_path / "missing.pt")
    with pytest.raises(DeployError, match="is the input checkpoint"):
        deploy(src, out=src)
    with pytest.raises(DeployError, match="must end in .pt"):
        deploy(src, out=tmp_path / "best.onnx")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "state.pt")
    with pytest.raises(DeployError, match="not an Ultralytics checkpoint: it holds no 'ema' or 'model' module"):
        deploy(tmp_path / "state.pt")

    from yolo_efficientrep import deployment as deploy_module

    real = deploy_module.bias_batchnorm  # a conversion slip of 1e-3 in every fused bias must be caught
    monkeypatch.setattr(deploy_module, "bias_batchnorm", lambda bias, eps=1e-3: real(bias + 1e-3, eps))
    with pytest.raises(
        DeployError, match=r"differs from the plugin model by a relative error of .* nothing was written"
    ):
        deploy(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "state.pt"]


# ---------------------------------------------------------------------------------------------------------------------
# Loading where the plugin cannot be imported


def _tensors(y):
    return tensors(y, skip=("feats",))  # as deploy compares: the head's input maps are intermediate


def _predictions(results) -> list[torch.Tensor]:
    out = []
    for r in results:
        for attr in ("boxes", "masks", "keypoints", "obb", "probs"):
            value = getattr(r, attr, None)
            if value is not None:
                out.append(value.data.float().cpu())
    return out


CHILD = BLOCK_PLUGIN + textwrap.dedent("""
    import json, sys, torch
    from ultralytics import YOLO
    ref = torch.load(sys.argv[1])
    args = json.loads(sys.argv[2])

    def rel(a, b):
        return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()

    def flat(y):  # the head's input maps ("feats", Ultralytics >= 8.4) are intermediate: an EffiDeHead's differ
        if isinstance(y, torch.Tensor):
            return [y]
        if isinstance(y, dict):
            y = [v for k, v in y.items() if k != "feats"]
        return [t for v in y for t in flat(v)] if isinstance(y, (list, tuple)) else []

    report = {}
    model = YOLO(args["weights"])
    net = model.model.float().eval()
    with torch.no_grad():
        report["unfused"] = max(rel(a, b) for a, b in zip(flat(net(ref["x"])), ref["outputs"], strict=True))
        net.fuse(verbose=False)
        report["fused"] = max(rel(a, b) for a, b in zip(flat(net(ref["x"])), ref["fused_outputs"], strict=True))
    report["batchnorms"] = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    report["task"], report["names"] = model.task, model.names

    model = YOLO(args["weights"])
    results = model.predict(args["images"], imgsz=64, conf=0.25, verbose=False)  # untrained: low scores
    preds = []
    for r in results:
        for attr in ("boxes", "masks", "keypoints", "obb", "probs"):
            value = getattr(r, attr, None)
            if value is not None:
                preds.append(value.data.float().cpu())
    torch.save(preds, args["predictions"])

    metrics = YOLO(args["weights"]).val(data=args["data"], imgsz=64, batch=8, workers=0, plots=False, verbose=False,
                                       project=args["project"], name="val", exist_ok=True)
    report["metrics"] = {k: float(v) for k, v in metrics.results_dict.items()}

    try:
        exported, fmt = YOLO(args["weights"]).export(format="onnx", imgsz=64), "onnx"
    except ModuleNotFoundError as e:  # Ultralytics < 8.3 exports ONNX through torch's dynamo exporter (onnxscript)
        if e.name != "onnxscript":
            raise
        exported, fmt = YOLO(args["weights"]).export(format="torchscript", imgsz=64), "torchscript"
    x1 = ref["x"][:1]
    if fmt == "onnx":
        import onnx, onnxruntime
        ops = [n.op_type for n in onnx.load(exported).graph.node]
        report["onnx_batchnorms"] = ops.count("BatchNormalization")
        session = onnxruntime.InferenceSession(exported, providers=["CPUExecutionProvider"])
        y = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x1.numpy()})[0])
    else:
        y = torch.jit.load(exported)(x1)
        y = flat(y)[0]
    report["export"] = [fmt, rel(y, ref["export_output"])]

    report["plugin_modules"] = sorted(k for k in sys.modules if k.partition(".")[0] == "yolo_efficientrep")
    try:
        import yolo_efficientrep  # noqa: F401
        report["importable"] = True
    except ModuleNotFoundError:
        report["importable"] = False
    print("REPORT", json.dumps(report))
""")


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_stock_ultralytics_predicts_validates_and_exports_without_the_plugin(family, tmp_path):
    from ultralytics.utils import SETTINGS

    if build_or_refused(lambda: YOLO(scaled_name(family, "n")), family) is None:
        return
    weights = deploy(_checkpoint(family, tmp_path / "best.pt"))
    data = _data_for(family)
    plugin = YOLO(tmp_path / "best.pt")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net = deepcopy(plugin.model).float().eval()
    with torch.no_grad():
        outputs = _tensors(net(x))
        net.fuse(verbose=False)  # drops the branch an end-to-end head does not select (YOLO26: one-to-one)
        fused_outputs = _tensors(net(x))
        export_output = _tensors(net(x[:1]))[0]
    # the plugin model's own validation, which also generates the dataset offline for the child
    metrics = plugin.val(
        data=data, imgsz=64, batch=8, workers=0, plots=False, verbose=False, project=str(tmp_path / "p"), name="val"
    )
    datasets = Path(SETTINGS["datasets_dir"])
    data_path = datasets / data if data == "shapes-cls" else find_yaml(data)
    images = sorted(
        (datasets / (data if data == "shapes-cls" else yaml.safe_load(find_yaml(data).read_text())["path"])).rglob(
            "*.jpg"
        )
    )[:2]
    expected = _predictions(YOLO(tmp_path / "best.pt").predict(images, imgsz=64, conf=0.25, verbose=False))
    torch.save(
        {"x": x, "outputs": outputs, "fused_outputs": fused_outputs, "export_output": export_output},
        tmp_path / "ref.pt",
    )

    args = {
        "weights": str(weights),
        "images": [str(p) for p in images],
        "data": str(data_path),
        "predictions": str(tmp_path / "pred.pt"),
        "project": str(tmp_path / "child"),
    }
    env = {"YOLO_EFFICIENTREP_AUTOLOAD": "0"}
    result = run_python(CHILD, env=env, cwd=tmp_path, args=[str(tmp_path / "ref.pt"), json.dumps(args)])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.rpartition("REPORT ")[2])

    assert report["plugin_modules"] == [] and report["importable"] is False
    assert report["unfused"] <= DEPLOY_RTOL and report["fused"] <= DEPLOY_RTOL and report["batchnorms"] == 0
    assert report["task"] == plugin.task and {int(k): v for k, v in report["names"].items()} == plugin.names
    got = torch.load(tmp_path / "pred.pt")
    assert len(got) == len(expected) and sum(len(t) for t in expected) > 0
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # Equal up to float rounding: a model whose random scores sit near the thresholds (the converted-size YOLOv6 heads)
    # may flip a detection when outputs differ by ~1e-5, which moves mAP in the 4th significant digit.
    want = {k: float(v) for k, v in metrics.results_dict.items()}
    assert report["metrics"] == pytest.approx(
        want, rel=1e-2, abs=1e-6
    )  # 8.1, yolov6-cspbep: 3e-3 (random scores near thresholds)
    fmt, error = report["export"]
    assert error <= 1e-4
    if fmt == "onnx":
        assert report["onnx_batchnorms"] == 0


def test_restricted_loading_accepts_deploy_checkpoints_without_the_plugin(tmp_path):
    """ULTRALYTICS_SAFE_LOAD=1 unpickles only known torch/Ultralytics classes: a deploy checkpoint is made of those."""
    weights = deploy(_checkpoint("yolov6-efficientrep", tmp_path / "best.pt"))
    code = BLOCK_PLUGIN + textwrap.dedent(f"""
        import torch
        from ultralytics import YOLO
        from ultralytics.nn.tasks import _SafeLoad
        assert _SafeLoad.restricted()
        model = YOLO(r"{weights}")
        with torch.no_grad():
            y = model.model.float().eval()(torch.zeros(1, 3, 64, 64))
        print("LOADED", type(model.model).__name__, tuple(y[0].shape))
    """)
    result = run_python(code, env={"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_EFFICIENTREP_AUTOLOAD": "0"}, cwd=tmp_path)
    if "cannot import name '_SafeLoad'" in result.stderr:
        pytest.skip("this Ultralytics has no opt-in restricted loading (ULTRALYTICS_SAFE_LOAD)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED DetectionModel (1, 7, 84)" in result.stdout


def test_deploy_never_replaces_an_existing_file_and_checks_out_before_converting(tmp_path, monkeypatch):
    src = _checkpoint("yolov8-efficientrep", tmp_path / "last.pt")
    (tmp_path / "best.pt").write_text("my notes")
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "file").write_text("x")
    from yolo_efficientrep import deployment as deploy_module

    converted = []
    real_to_stock = deploy_module.to_stock
    monkeypatch.setattr(deploy_module, "to_stock", lambda m: converted.append(m) or real_to_stock(m))
    cases = [
        (tmp_path / "best.pt", r"out='.*best\.pt' already exists; choose another path or pass overwrite=True"),
        (tmp_path / "folder.pt", r"out='.*folder\.pt' is a folder"),
        (tmp_path / "file" / "sub" / "x.pt", r"'.*file' is a file, not a folder"),
    ]
    for out, message in cases:
        with pytest.raises(DeployError, match=message + r".*nothing was written"):
            deploy(src, out=out)
    real_access = deploy_module.os.access  # root may write anywhere, so the read-only folder is simulated
    monkeypatch.setattr(deploy_module.os, "access", lambda p, mode: Path(p) != tmp_path / "ro" and real_access(p, mode))
    (tmp_path / "ro").mkdir()
    with pytest.raises(DeployError, match=r"folder '.*ro' is not writable \(nothing was written\)"):
        deploy(src, out=tmp_path / "ro" / "edge.pt")
    assert converted == []  # every refusal came before the conversion
    assert (tmp_path / "best.pt").read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "file", "folder.pt", "last.pt", "ro"]
    assert list((tmp_path / "ro").iterdir()) == [] and list((tmp_path / "folder.pt").iterdir()) == []

    assert deploy(src, out=tmp_path / "best.pt", overwrite=True) == tmp_path / "best.pt"
    assert "deploy" in torch.load(tmp_path / "best.pt", weights_only=False) and len(converted) == 1


class ThirdPartyAct(nn.Module):  # stands for a module of another package: neither stock nor the plugin's
    def forward(self, x):
        return x


def test_deploy_refuses_third_party_modules_and_stock_checkpoints(tmp_path):
    model = YOLO("yolov8n-efficientrep.yaml").model
    model.model[-1].cv2[0][0].act = ThirdPartyAct()
    with pytest.raises(
        DeployError, match=r"model\.22\.cv2\.0\.0\.act \(test_deploy\.ThirdPartyAct\) is neither a stock"
    ):
        to_stock(model)
    torch.save({"model": model, "train_args": {}}, tmp_path / "mixed.pt")
    with pytest.raises(DeployError, match=r"ThirdPartyAct\) is neither a stock Ultralytics/torch module nor a yolo"):
        deploy(tmp_path / "mixed.pt")
    save_checkpoint(YOLO("yolov8n.yaml"), tmp_path / "stock.pt")
    with pytest.raises(DeployError, match=r"'.*stock\.pt' holds no yolo-efficientrep block: .*nothing to convert"):
        deploy(tmp_path / "stock.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.pt", "stock.pt"]
