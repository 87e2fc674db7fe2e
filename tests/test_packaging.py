"""Packaging: the wheel's layout, and both a regular and an editable install working in a new environment."""

from __future__ import annotations

import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, run

BUILD = (
    "import sys, yolo_efficientrep.resources as r\n"
    "from ultralytics import YOLO\n"
    "m = YOLO('yolov8n-efficientrep.yaml')\n"
    "import yolo_efficientrep\n"
    "print(type(m.model.model[0]).__name__, yolo_efficientrep.__file__, r.cfg_dir())\n"
)


def _pip(*args):
    result = run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"], timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO))
    (path,) = out.glob("yolo_efficientrep-*.whl")
    return path


def _venv(root: Path) -> Path:
    """A new venv that sees this environment's packages (torch, ultralytics) but not its start-up hook."""
    result = run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    assert result.returncode == 0, result.stderr
    python = root / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # A plain path line: the parent's packages become importable, but its .pth files are not processed.
    (Path(site) / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_wheel_layout(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"yolo_efficientrep.pth", "yolo_efficientrep.start", "_yolo_efficientrep_hook.py"} <= names
    assert "_yolo_efficientrep_cli.py" in names  # the console script's launcher (help without importing torch)
    assert "yolo_efficientrep/cfg/models/yolov8-efficientrep.yaml" in names
    assert "yolo_efficientrep/cfg/datasets/shapes.yaml" in names
    assert not any(n.startswith("yolo_efficientrep/_startup") for n in names)
    # the benchmark is a development tool of the repository (benchmarks/), not part of the installed plugin
    assert not any(n.startswith("benchmarks/") or "/benchmarks/" in n for n in names), sorted(names)
    assert "yolo_efficientrep/benchmark.py" not in names and "yolo_efficientrep/_timing.py" in names
    archive = zipfile.ZipFile(wheel)
    assert archive.read("yolo_efficientrep.pth").decode().strip() == (
        "import _yolo_efficientrep_hook; _yolo_efficientrep_hook.install()"
    )
    assert archive.read("yolo_efficientrep.start").decode().strip() == "_yolo_efficientrep_hook:install"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = archive.read(metadata).decode()
    assert "Name: yolo-efficientrep" in text and "License-Expression: AGPL-3.0-or-later" in text
    requires = sorted(
        line.split()[1].split("[")[0].rstrip("<>=!~;,")
        for line in text.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert [r.split(">")[0].split("<")[0].lower() for r in requires] == ["numpy", "pyyaml", "torch", "ultralytics"]


def test_regular_install_from_the_wheel(wheel, tmp_path):
    python = _venv(tmp_path / "venv")
    # --ignore-installed: the parent environment (visible through the .pth) may hold the plugin already; never touch it
    _pip("--python", str(python), "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel))
    result = run([str(python), "-c", BUILD], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    kind, init, cfg = result.stdout.split()[-3:]
    assert kind == "RepVGGBlock"
    assert str(tmp_path / "venv") in init and cfg == str(Path(init).parent / "cfg")  # YAMLs from the wheel


def test_editable_install(tmp_path):
    python = _venv(tmp_path / "venv")
    _pip(
        "--python",
        str(python),
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--ignore-installed",
        "-e",
        str(REPO),
    )
    result = run([str(python), "-c", BUILD], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    kind, init, cfg = result.stdout.split()[-3:]
    assert kind == "RepVGGBlock"
    assert init == str(REPO / "yolo_efficientrep" / "__init__.py") and cfg == str(REPO / "cfg")
    startup = run([str(python), "-X", "importtime", "-c", "pass"])
    assert "_yolo_efficientrep_hook" in startup.stderr and "torch" not in startup.stderr
