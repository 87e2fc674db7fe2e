"""The README's quick start: exactly two commands, and CI runs the README's test command verbatim."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest
import ultralytics
from conftest import REPO, bin_path, run


def _quick_start_commands():
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    main, tests = commands
    assert "yolo train model=yolov8n-efficientrep.yaml data=shapes.yaml" in main
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    test_command = _quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


# ------------------------------------------------------------------------------------ the quick start's expectations
def _report_module():
    spec = importlib.util.spec_from_file_location("quickstart_report", REPO / "examples" / "quickstart_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def record():
    """The recorded quick-start runs (``examples/quickstart_report.py --record``)."""
    return json.loads((REPO / "docs" / "quickstart" / "results.json").read_text())


def test_readme_states_the_recorded_numbers(record):
    """The README's expectations are rendered from the recorded runs, not typed."""
    q = _report_module()
    assert q.render(record) in (REPO / "README.md").read_text()


def test_recorded_runs_meet_the_quick_start_bar(record):
    """What a newcomer must see: a detector that works, within about five minutes on two CPU cores."""
    assert record["machine"]["cores"] == 2 and record["machine"]["gpu"] is None
    assert len(record["runs"]) >= 2  # repeated, so the stated spread is measured
    for measured in record["runs"]:
        assert measured["mAP50"] >= 0.5 and measured["mAP50-95"] > 0.3
        assert measured["images_with_detections"] > measured["val_images"] / 2 and measured["val_images"] == 32
        # Within about five minutes, measured while the training process had a core to itself (Ultralytics trains on
        # one thread of two): its CPU time is at least 90% of its wall time, and never more.
        assert measured["train_minutes"] <= 5.5
        assert 0.9 * measured["train_minutes"] <= measured["cpu_minutes"] <= 1.02 * measured["train_minutes"]
    picture = REPO / record["picture"]
    assert picture.stat().st_size < 100_000  # a small PNG
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_belongs_to_the_command_and_dataset_as_they_are(record, tmp_path):
    """Changing command 1's training step or the generator without recording again fails here."""
    from yolo_efficientrep.data import DATASETS, generate_dataset

    q = _report_module()
    step = q.train_step(_quick_start_commands()[0])
    assert record["command"] == shlex.join(step)
    assert record["training"] == {k: int(q.recipe(step)[k]) for k in ("epochs", "imgsz", "batch")}
    assert record["dataset"] == DATASETS["shapes"]
    digest = q.label_digest(generate_dataset("shapes", tmp_path / "shapes"))
    assert all(run["label_digest"] == digest for run in record["runs"])


def test_command_one_leaves_the_shell_as_it_was():
    main = _quick_start_commands()[0]
    assert "export " not in main and "YOLO_OFFLINE=1 .venv/bin/yolo train" in main
    assert main.endswith("examples/quickstart_report.py runs/quickstart")


@pytest.mark.slow
def test_command_one_short_run(record, tmp_path):
    """Command 1's steps as written, one epoch: the log, the report, the picture, and the time per epoch."""
    q = _report_module()
    env_prefix, yolo_args = q.split_env(q.train_step(_quick_start_commands()[0]))
    args = [a.replace("$PWD", str(tmp_path)) for a in yolo_args if not a.startswith("epochs=")]
    start = time.perf_counter()
    train = run([bin_path("yolo"), *args, "epochs=1"], env=env_prefix, cwd=tmp_path)
    seconds = time.perf_counter() - start
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-3000:]
    assert "Dataset download" not in log and "images not found" not in log  # generated data is reported as such
    # One epoch plus start-up and the final validation, against the recorded time per epoch: a slower model or a
    # bigger dataset shows here. Generous, because the suite runs two tests at a time on two cores.
    recorded = max(r["train_minutes"] for r in record["runs"]) * 60 / record["training"]["epochs"]
    same_release = ultralytics.__version__.split(".")[:2] == record["machine"]["ultralytics"].split(".")[:2]
    if same_release:  # the time is the recorded release's: Ultralytics 8.1 trained this recipe about 4x slower here
        assert seconds < 4 * recorded, (seconds, recorded)
    report = run(
        [
            sys.executable,
            str(REPO / "examples" / "quickstart_report.py"),
            str(tmp_path / "runs" / "quickstart"),
            "--json",
            str(tmp_path / "report.json"),
        ],
        env=env_prefix,
        cwd=tmp_path,
    )
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert numbers["val_images"] == 32 and 0 <= numbers["mAP50"] <= 1
    assert numbers["label_digest"] == record["runs"][0]["label_digest"]
    assert (tmp_path / "runs" / "quickstart" / "predictions.png").stat().st_size > 1000
    assert "shapes found in" in report.stdout


def test_own_dataset_example_is_a_valid_dataset_yaml(tmp_path):
    """The README's minimal dataset YAML, pointed at a real dataset, passes Ultralytics' own dataset check."""
    import yaml
    from ultralytics.data.utils import check_det_dataset

    from yolo_efficientrep.data import generate_shapes

    section = (REPO / "README.md").read_text().split("### Train on your own dataset", 1)[1].split("\n### ", 1)[0]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, flags=re.S)[1])
    root = generate_shapes(tmp_path / "my-data", n_train=2, n_val=1, size=64)
    (tmp_path / "my-data.yaml").write_text(yaml.safe_dump({**example, "path": str(root)}))
    data = check_det_dataset(str(tmp_path / "my-data.yaml"))
    assert data["names"] == example["names"] and data["nc"] == len(example["names"])
    assert Path(data["train"]) == root / example["train"] and Path(data["val"]).is_dir()
    assert len(list(Path(data["train"]).glob("*.jpg"))) == 2


def test_readme_describes_the_dataset_as_generated():
    """The README's dataset sizes are the generator's."""
    from yolo_efficientrep.data import DATASETS

    text = " ".join((REPO / "README.md").read_text().split())  # line breaks as spaces
    shapes, others = DATASETS["shapes"], DATASETS["shapes-seg"]
    n_train, n_val, size = shapes["n_train"], shapes["n_val"], shapes["size"]
    assert f"{n_train} train + {n_val} val synthetic {size}x{size} images" in text
    assert f"{n_train} train + {n_val} val images of {size}x{size}" in text
    assert not {"n_train", "n_val", "size"} & set(others)  # the others: generate_shapes' defaults, 128 + 32 of 256x256
    assert "the others 128 + 32 of 256x256" in text
