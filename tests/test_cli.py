"""The ``yolo-efficientrep`` command (subprocesses, as users run it)."""

from __future__ import annotations

import os
import time

import pytest
import torch
from conftest import bin_path, needs_newer_ultralytics, run, run_python, save_checkpoint

from yolo_efficientrep import zoo


def _cli(*args):
    return run([bin_path("yolo-efficientrep"), *args])


def test_list_shows_every_yaml_and_its_scales():
    result = _cli("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    for family in zoo.MODEL_FAMILIES:
        assert f"{family}.yaml" in out and zoo.scaled_name(family, "n") in out
    assert "shapes.yaml" in out and "n, s, m, l, x" in out
    assert "data=shapes-cls" in out  # the folder dataset has no YAML but is listed too


def test_check_passes_on_every_shipped_yaml():
    result = _cli("check")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    names = [zoo.scaled_name(f, "n") for f in zoo.MODEL_FAMILIES]
    rows = [line.rstrip() for line in out.splitlines() if line.split()[:1] and line.split()[0] in names]
    assert [row.split()[0] for row in rows] == names
    for row in rows:  # a family for a newer Ultralytics (YOLO11/YOLO26 on 8.1) is listed as skipped, naming the release
        need = needs_newer_ultralytics(row.split()[0])
        assert row.endswith(f"skipped (needs ultralytics>={need})" if need else " ok"), row


def test_check_fails_on_a_broken_fuse(tmp_path):
    """A RepVGGBlock whose fuse drops the 1x1 branch must make `check` exit non-zero."""
    sitecustom = tmp_path / "sitecustomize.py"
    sitecustom.write_text(
        "import yolo_efficientrep.blocks as b\n"
        "def broken(self):\n"
        "    k, bias = b._kernel_bias(self.conv1)\n"
        "    return k, bias\n"
        "b.RepVGGBlock.get_equivalent_kernel_bias = broken\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = run([bin_path("yolo-efficientrep"), "check"], env={"PYTHONPATH": path})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "FAIL" in out


def test_info_compares_unfused_and_fused():
    result = _cli("info", "model=yolov8s-cspbep.yaml", "imgsz=320")
    assert result.returncode == 0, result.stderr
    stats = zoo.model_stats("yolov8s-cspbep.yaml", 320)
    out = result.stdout + result.stderr
    assert f"{stats.params:,}" in out and f"{stats.fused_params:,}" in out
    assert f"{stats.fused_gflops:.1f}" in out and "GFLOPs at 320x320" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["info"], "missing model="),
        (
            ["info", "modle=yolov8n.yaml"],
            "invalid argument 'modle=yolov8n.yaml'; valid arguments: imgsz=..., model=...",
        ),
        (["list", "x=1"], "valid arguments: none"),
    ],
)
def test_bad_arguments_are_explained(args, message):
    result = _cli(*args)
    assert result.returncode != 0
    assert message in result.stderr


def test_deploy_reports_a_missing_checkpoint_and_argument(tmp_path):
    result = _cli("deploy", f"model={tmp_path / 'nope.pt'}")
    assert result.returncode == 1
    assert f"yolo-efficientrep deploy: no checkpoint at '{tmp_path / 'nope.pt'}'" in result.stdout + result.stderr
    result = _cli("deploy")
    assert result.returncode != 0 and "yolo-efficientrep deploy: missing model=..." in result.stderr
    result = _cli("deploy", "model=a.pt", "fuse=True")
    assert result.returncode != 0 and "valid arguments: half=..., model=..., out=..." in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=best.pt"], "yolo-efficientrep quantize: missing data=..."),
        (["data=shapes.yaml"], "yolo-efficientrep quantize: missing model=..."),
        (["model=best.pt", "data=shapes.yaml", "formats=onnx,tflite"], "unknown formats ['tflite']"),
        (["model=best.pt", "data=shapes.yaml", "int8=True"], "invalid argument 'int8=True'"),
    ],
)
def test_quantize_bad_arguments(args, message):
    result = _cli("quantize", *args)
    assert result.returncode != 0 and message in result.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Failures: one clear line on stderr, exit 1, nothing half-written (tracker issue 13)


def _one_line_failure(result, message):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    return lines[0]


def test_failures_are_one_line_with_exit_1(tmp_path):
    from ultralytics import YOLO

    save_checkpoint(YOLO("yolov8n-efficientrep.yaml"), tmp_path / "last.pt")
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_text("not a checkpoint")
    bad = "nc: 3\nbackbone:\n  - [-1, 1, RepBlock, [wide]]\nhead:\n  - [[-1], 1, Detect, [nc]]\n"
    (tmp_path / "yolov8-bad.yaml").write_text(bad)
    unreadable = "cannot be read as a PyTorch checkpoint"
    truncated = tmp_path / "truncated.pt"
    cases = [
        (["deploy", f"model={truncated}"], f"yolo-efficientrep deploy: '{truncated}' {unreadable}"),
        (["deploy", f"model={tmp_path / 'garbage.pt'}"], "the file is truncated, damaged or not a .pt file"),
        (
            ["quantize", f"model={truncated}", "data=shapes.yaml"],
            f"yolo-efficientrep quantize: '{truncated}' {unreadable}",
        ),
        (["info", f"model={tmp_path / 'yolov8-bad.yaml'}"], "info: model YAML layer 0 (RepBlock, row"),
        (["info", "model=yolov8n-efficientrp.yaml"], "Did you mean yolov8-efficientrep.yaml"),
        (["info", "model=yolov8q-efficientrep.yaml"], "'q' is not one of the scales of yolov8-efficientrep.yaml"),
        (["info", "model=yolov8n.yaml", "imgsz=abc"], "yolo-efficientrep info: imgsz: expected an integer, got 'abc'"),
        (["info", "model=yolov8n.yaml", "imgsz=640,480"], "imgsz: expected one integer (the side of a square input)"),
    ]
    for args, message in cases:  # (Python warnings, e.g. torch's about TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, are not ours)
        line = _one_line_failure(run([bin_path("yolo-efficientrep"), *args], env={"PYTHONWARNINGS": "ignore"}), message)
        if "efficientrp" in args[-1]:
            assert "shapes" not in line  # a model name gets model YAMLs as suggestions, not dataset files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.pt", "last.pt", "truncated.pt", "yolov8-bad.yaml"]
    verbose = _cli("deploy", f"model={tmp_path / 'garbage.pt'}", "verbose")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr and unreadable in verbose.stderr


def test_deploy_keeps_an_existing_out_file_unless_overwrite(tmp_path):
    from ultralytics import YOLO

    save_checkpoint(YOLO("yolov8n-efficientrep.yaml"), tmp_path / "last.pt")
    (tmp_path / "best.pt").write_text("my notes")
    args = ["deploy", f"model={tmp_path / 'last.pt'}", f"out={tmp_path / 'best.pt'}"]
    result = run([bin_path("yolo-efficientrep"), *args], env={"PYTHONWARNINGS": "ignore"})
    _one_line_failure(result, "already exists; choose another path or pass overwrite=True to replace it")
    assert (tmp_path / "best.pt").read_text() == "my notes"
    result = _cli(*args, "overwrite")  # a bare boolean key, as in the stock yolo command
    assert result.returncode == 0, result.stderr
    assert "deploy" in torch.load(tmp_path / "best.pt", weights_only=False)


def test_help_answers_fast_without_torch_and_lists_every_command():
    from yolo_efficientrep.cli import COMMANDS

    start = time.perf_counter()
    result = _cli("help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and result.stderr == ""
    for name in COMMANDS:
        assert f"yolo-efficientrep {name}" in result.stdout
    assert elapsed < 1.0, elapsed
    probe = (
        "import sys\nfrom _yolo_efficientrep_cli import entrypoint\nsys.argv = ['yolo-efficientrep', 'help']\n"
        "try:\n    entrypoint()\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert not {'torch', 'ultralytics', 'yolo_efficientrep'} & set(sys.modules), sorted(sys.modules)\n"
    )
    assert run_python(probe).returncode == 0


def test_stock_dialect_bare_booleans_lists_and_suggestions():
    from yolo_efficientrep.cli import UsageError, parse

    assert parse(["deploy", "model=a.pt", "half", "overwrite=False"]) == (
        "deploy",
        {"model": "a.pt", "half": True, "overwrite": False},
    )
    assert parse(["quantize", "model=a.pt", "data=d.yaml", "formats=[onnx,openvino]", "per_channel"])[1] == {
        "model": "a.pt",
        "data": "d.yaml",
        "formats": ["onnx", "openvino"],
        "per_channel": True,
    }
    assert parse(["quantize", "model=a.pt", "data=d.yaml", "formats=[onnx]"])[1]["formats"] == ["onnx"]
    assert parse([]) == ("help", {})
    for argv, message in [
        (["lst"], "unknown command 'lst'; did you mean 'list'?"),
        (["trian"], "'train' is a stock Ultralytics command (use yolo train ...)"),
        (["yolov8n.yaml"], "unknown command 'yolov8n.yaml'. Commands: help, list"),  # info is no fall-through
        (["info", "modle=x"], "invalid argument 'modle=x'; valid arguments: imgsz=..., model=...; did you mean 'model"),
        (["info", "model"], "'model' needs a value, e.g. model=..."),
        (["deploy", "model=a.pt", "half=maybe"], "half: expected True or False, got 'maybe'"),
    ]:  # fmt: skip
        with pytest.raises(UsageError) as e:
            parse(argv)
        assert message in str(e.value)


def test_benchmark_command_points_to_the_repositorys_benchmark(capsys):
    """The benchmark left the wheel: the former command says where it lives now, with any arguments, and fails."""
    from yolo_efficientrep import cli

    for argv in (["benchmark"], ["benchmark", "quick=True", "models=[a.yaml]"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "'benchmark' is no longer a command" in err and "python benchmarks/run.py" in err, err
        assert "yolo-efficientrep info model=NAME" in err
    assert "benchmark" not in cli.COMMANDS and "benchmark" not in cli.__doc__
    import importlib.util

    assert importlib.util.find_spec("yolo_efficientrep.benchmark") is None  # not in the package any more
