"""The examples run as shipped."""

from __future__ import annotations

import sys

import pytest
from conftest import HOME, REPO, run


@pytest.mark.slow
def test_quickstart_script(tmp_path):
    result = run([sys.executable, str(REPO / "examples" / "quickstart.py")], cwd=tmp_path, timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    error = float(out.split("max |fused - unfused| = ")[1].split()[0])
    assert error < 1e-3
    assert "BatchNorm2d left: 0" in out
    exported = out.split("exported: ")[1].split()[0]
    assert exported.endswith(".torchscript") and str(HOME / "runs") in exported
    assert not list(tmp_path.iterdir()) or all(p.name != "runs" for p in tmp_path.iterdir())


@pytest.mark.slow
def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import os

    import nbformat
    from nbclient import NotebookClient

    for key in [k for k in os.environ if k.startswith("PYTEST_")]:  # the kernel is a user session, not a test
        monkeypatch.delenv(key)
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = "".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert "BatchNorm2d left: 0" in outputs
    assert "torch.Size([1, 7, 336])" in outputs  # 4 box + 3 shape classes, 16 + 64 + 256 anchors at 128 px
    assert "plotted 2 epochs" in outputs


@pytest.mark.slow
def test_finetune_yolov6_script_with_a_fixture_checkpoint(tmp_path):
    from conftest import ASSETS

    script = REPO / "examples" / "finetune_yolov6.py"
    result = run([sys.executable, str(script), str(ASSETS / "yolov6" / "yolov6n-v0.4-distill.pt")], cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "found YOLOv6 v3.0-N (0.4.x layout), effidehead_distill_ns head, nc=80" in out
    assert "task: detect, classes: 80" in out
    assert float(out.split("fused vs unfused relative difference = ")[1].split()[0]) < 1e-4
    assert "Transferred " in out and "items from pretrained weights" in out
    assert 0 <= float(out.split("fine-tuned mAP50-95 after 1 epoch: ")[1].split()[0]) <= 1
    assert (tmp_path / "yolov6n-v0.4-distill-ultralytics.pt").is_file()
