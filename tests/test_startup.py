"""Fresh-interpreter behaviour: the start-up hook, the stock ``yolo`` command and the off-switch (subprocesses)."""

from __future__ import annotations

import sys
import textwrap

import pytest
from conftest import bin_path, run, run_python

BUILD = """
import sys
from ultralytics import YOLO
model = YOLO("yolov8n-efficientrep.yaml")
print(type(model.model.model[0]).__module__, type(model.model.model[0]).__name__)
"""


def test_fresh_interpreter_sees_the_plugin_without_importing_it():
    result = run_python(BUILD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["yolo_efficientrep.blocks", "RepVGGBlock"]


def test_plugin_loads_when_ultralytics_nn_tasks_loads():
    code = """
import sys
assert "yolo_efficientrep" not in sys.modules and "torch" not in sys.modules
import ultralytics.nn.tasks as tasks
assert "yolo_efficientrep" in sys.modules
print(tasks.parse_model._yolo_efficientrep, tasks.RepVGGBlock.__module__)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["True", "yolo_efficientrep.blocks"]


def test_importing_the_plugin_first_also_works():
    result = run_python(
        "import yolo_efficientrep as y; import ultralytics.nn.tasks as t; print(y.is_registered(), t.BepC3)"
    )
    assert result.returncode == 0, result.stderr
    assert "True <class 'yolo_efficientrep.blocks.BepC3'>" in result.stdout


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_autoload_switch_turns_the_hook_off(value):
    code = BUILD.replace("print(", 'print(sys.modules.get("yolo_efficientrep"), ')
    result = run_python(code, env={"YOLO_EFFICIENTREP_AUTOLOAD": value})
    assert result.returncode != 0
    assert "FileNotFoundError" in result.stderr and "efficientrep.yaml' does not exist" in result.stderr
    probe = run_python(
        "import sys, ultralytics.nn.tasks; print('yolo_efficientrep' in sys.modules)",
        env={"YOLO_EFFICIENTREP_AUTOLOAD": value},
    )
    assert probe.stdout.split()[-1] == "False"


def test_explicit_import_still_registers_with_autoload_off():
    code = "import yolo_efficientrep\n" + BUILD
    result = run_python(code, env={"YOLO_EFFICIENTREP_AUTOLOAD": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "RepVGGBlock"


def test_interpreter_start_imports_neither_torch_nor_ultralytics():
    result = run([sys.executable, "-X", "importtime", "-c", "pass"])
    assert result.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "_yolo_efficientrep_hook" in imported  # the hook did load
    heavy = [m for m in imported if m.split(".")[0] in {"torch", "ultralytics", "numpy", "yolo_efficientrep"}]
    assert heavy == []


def _fake_ultralytics(root, init="__version__ = '8.4.0'\n", tasks="parse_model = None\n"):
    pkg = root / "ultralytics"
    (pkg / "nn").mkdir(parents=True)
    (pkg / "__init__.py").write_text(init)
    (pkg / "nn" / "__init__.py").write_text("")
    (pkg / "nn" / "tasks.py").write_text(tasks)
    return root


def test_ultralytics_whose_tasks_raise_gets_its_own_error_through_the_hook(tmp_path):
    # The hook wraps the loader of ultralytics.nn.tasks; an error in that module must pass through it untouched (the
    # traceback shows the hook's loader, so the hook was involved) and no plugin warning is added on top.
    root = _fake_ultralytics(tmp_path, tasks="raise RuntimeError('broken tasks module')\n")
    result = run_python("print('alive')", env={"PYTHONPATH": str(root)})
    assert result.returncode == 0 and result.stdout.strip() == "alive"
    result = run_python("import ultralytics.nn.tasks", env={"PYTHONPATH": str(root)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "RuntimeError: broken tasks module"
    assert "_yolo_efficientrep_hook.py" in result.stderr and "in exec_module" in result.stderr
    assert "WARNING yolo-efficientrep" not in result.stderr


def test_plugin_that_fails_to_import_warns_once_and_ultralytics_carries_on(tmp_path):
    # A broken yolo_efficientrep (shadowing the installed one) must not take the real Ultralytics down.
    (tmp_path / "yolo_efficientrep").mkdir()
    (tmp_path / "yolo_efficientrep" / "__init__.py").write_text("raise ImportError('plugin is broken')\n")
    code = "import ultralytics.nn.tasks as t; print('tasks ok', callable(t.parse_model), hasattr(t, 'RepVGGBlock'))"
    result = run_python(code, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "tasks ok True False"  # 8.1 may print its settings notice first
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING yolo-efficientrep")]
    assert warnings == [
        "WARNING yolo-efficientrep: not loaded into Ultralytics (ImportError: plugin is broken). "
        "Set YOLO_EFFICIENTREP_AUTOLOAD=0 to silence this."
    ]


def test_plugin_failure_warns_and_ultralytics_carries_on(tmp_path):
    root = _fake_ultralytics(tmp_path, init="__version__ = '8.0.239'\n", tasks="VALUE = 42\n")
    result = run_python("import ultralytics.nn.tasks as t; print('tasks ok', t.VALUE)", env={"PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tasks ok 42"
    assert "WARNING yolo-efficientrep: not loaded into Ultralytics (UnsupportedVersionError" in result.stderr
    assert "ultralytics>=8.1,<8.5; found ultralytics 8.0.239" in result.stderr


def test_start_file_names_the_hook_entry_point():
    import importlib
    from pathlib import Path

    import _yolo_efficientrep_hook  # installed at the root of site-packages, beside the .pth and .start files

    start = Path(_yolo_efficientrep_hook.__file__).with_name("yolo_efficientrep.start")
    module, _, attr = start.read_text().strip().partition(":")
    assert (module, attr) == ("_yolo_efficientrep_hook", "install")
    assert getattr(importlib.import_module(module), attr) is _yolo_efficientrep_hook.install


def test_yolo_cli_resolves_plugin_yamls(tmp_path):
    result = run(
        [bin_path("yolo"), "export", "model=yolov8n-efficientrep.yaml", "format=torchscript", "imgsz=64"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    exported = list(tmp_path.glob("*.torchscript"))
    assert exported, result.stdout
    code = textwrap.dedent(f"""
        import torch
        m = torch.jit.load(r"{exported[0]}")
        print(m(torch.zeros(1, 3, 64, 64)).shape)
    """)
    assert "torch.Size([1, 84, 84])" in run_python(code).stdout


def test_ddp_worker_script_builds_the_plugin_model(tmp_path):
    """Multi-GPU: the worker script Ultralytics generates for a YAML model rebuilds it in a fresh interpreter."""
    import re
    from pathlib import Path

    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    overrides = {
        "model": "yolov8n-efficientrep.yaml",
        "data": "shapes.yaml",
        "imgsz": 64,
        "epochs": 1,
        "device": "cpu",
        "project": str(tmp_path),
        "name": "ddp",
    }
    script = Path(generate_ddp_file(DetectionTrainer(overrides=overrides)))
    try:
        # Run the worker up to its model-building step (training itself needs torch.distributed and GPUs).
        probe = (
            "trainer.setup_model(); m = trainer.model.model[0]; print('WORKER', type(m).__module__, type(m).__name__)"
        )
        text, replaced = re.subn(r"(results = )?trainer\.train\(\)", probe, script.read_text())
        assert replaced == 1
        script.write_text(text)
        result = run([sys.executable, str(script)], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split()[-3:] == ["WORKER", "yolo_efficientrep.blocks", "RepVGGBlock"]
    finally:
        for leftover in script.parent.glob(script.stem + ".*"):
            leftover.unlink()
