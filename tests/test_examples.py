"""The examples run as shipped."""

from __future__ import annotations

import sys

from conftest import HOME, REPO, run


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
