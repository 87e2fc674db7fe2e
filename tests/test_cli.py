"""The ``yolo-efficientrep`` command (subprocesses, as users run it)."""

from __future__ import annotations

import os

import pytest
from conftest import bin_path, run

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


def test_check_passes_on_every_shipped_yaml():
    result = _cli("check")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    rows = [line for line in out.splitlines() if line.startswith(tuple(f"yolov{v}n-" for v in (6, 8)))]
    assert len(rows) == len(zoo.MODEL_FAMILIES) and all(row.split()[-1] == "ok" for row in rows)


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
    assert f"{stats.fused_gflops:.1f}" in out


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
