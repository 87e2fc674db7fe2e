"""The main job as a user runs it: stock ``yolo train`` on the offline dataset, then the checkpoint in new processes."""

from __future__ import annotations

import textwrap

import pytest
from conftest import HOME, bin_path, run, run_python


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train yolov8n-efficientrep for one epoch with the stock CLI from an empty directory."""
    work = tmp_path_factory.mktemp("e2e")
    args = [
        bin_path("yolo"),
        "train",
        "model=yolov8n-efficientrep.yaml",
        "data=shapes.yaml",
        "epochs=1",
        "imgsz=128",
        "batch=16",
        "workers=0",
        "device=cpu",
        f"project={work / 'runs'}",
        "name=e2e",
        "plots=False",
    ]
    result = run(args, cwd=work, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, work / "runs" / "e2e" / "weights" / "best.pt", result.stdout + result.stderr


def test_cli_training_runs_and_validates_the_fused_model(trained):
    _, best, log = trained
    assert best.exists()
    assert "YOLOv8n-efficientrep summary (fused)" in log  # final validation of best.pt went through model.fuse()
    assert (HOME / "datasets" / "shapes" / "images" / "val").is_dir()  # generated offline on first use


def test_checkpoint_loads_predicts_and_fuses_in_a_fresh_process_without_autoload(trained):
    _, best, _ = trained
    image = sorted((HOME / "datasets" / "shapes" / "images" / "val").glob("*.jpg"))[0]
    code = textwrap.dedent(f"""
        import sys, torch
        assert "yolo_efficientrep" not in sys.modules
        from ultralytics import YOLO
        model = YOLO(r"{best}")  # unpickling imports the plugin, which registers itself
        results = model.predict(r"{image}", imgsz=128, verbose=False)
        predictor_model = model.predictor.model.model
        bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in predictor_model.modules())
        reps = [m for m in predictor_model.modules() if type(m).__name__ == "RepVGGBlock"]
        print("plugin", "yolo_efficientrep" in sys.modules, "bn", bns, "reps", len(reps),
              "fused", all(not hasattr(m, "conv1") for m in reps), "boxes", results[0].boxes.data.shape[-1])
    """)
    result = run_python(code, env={"YOLO_EFFICIENTREP_AUTOLOAD": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-10:] == ["plugin", "True", "bn", "0", "reps", "17", "fused", "True", "boxes", "6"]


def test_cli_val_on_the_checkpoint(trained):
    work, best, _ = trained
    result = run(
        [
            bin_path("yolo"),
            "val",
            f"model={best}",
            "data=shapes.yaml",
            "imgsz=128",
            "batch=16",
            "workers=0",
            "device=cpu",
            f"project={work / 'runs'}",
            "name=val",
            "plots=False",
        ],
        cwd=work,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "summary (fused)" in result.stdout + result.stderr
    assert "all         32" in result.stdout + result.stderr


def test_restricted_safe_loading_loads_plugin_checkpoints(trained):
    """ULTRALYTICS_SAFE_LOAD=1 (weights_only unpickling with an allow-list) accepts the plugin's classes."""
    _, best, _ = trained
    code = textwrap.dedent(f"""
        import sys
        from ultralytics import YOLO
        from ultralytics.nn.tasks import _SafeLoad
        assert _SafeLoad.restricted()
        model = YOLO(r"{best}")
        print("loaded", type(model.model.model[0]).__name__, len(model.predict(verbose=False, imgsz=128)))
    """)
    result = run_python(code, env={"ULTRALYTICS_SAFE_LOAD": "1"})
    if "cannot import name '_SafeLoad'" in result.stderr:
        pytest.skip("this Ultralytics has no opt-in restricted loading (ULTRALYTICS_SAFE_LOAD)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["loaded", "RepVGGBlock", "2"]  # Ultralytics' two bundled sample images
