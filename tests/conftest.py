"""Shared test set-up: an isolated Ultralytics home, offline settings, and helpers used across the suite.

Ultralytics reads ``YOLO_CONFIG_DIR`` when it is first imported, so the environment is prepared here, before any test
module imports it. Every test runs in its own temporary working directory; nothing is written into the repository or
the user's home.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HOME = Path(tempfile.mkdtemp(prefix="yolo-efficientrep-tests-"))
atexit.register(shutil.rmtree, HOME, ignore_errors=True)
os.environ["YOLO_CONFIG_DIR"] = str(HOME / "config")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "False"
os.environ.pop("YOLO_EFFICIENTREP_AUTOLOAD", None)

import torch  # noqa: E402
from ultralytics.utils import SETTINGS  # noqa: E402

SETTINGS.update(
    datasets_dir=str(HOME / "datasets"), runs_dir=str(HOME / "runs"), weights_dir=str(HOME / "weights"), sync=False
)
# Ultralytics copies these settings into module constants when it is imported; in-process validation reads those.
for _module in [m for name, m in sys.modules.items() if name.partition(".")[0] == "ultralytics"]:
    for _constant, _key in (("DATASETS_DIR", "datasets_dir"), ("RUNS_DIR", "runs_dir"), ("WEIGHTS_DIR", "weights_dir")):
        if hasattr(_module, _constant):
            setattr(_module, _constant, Path(SETTINGS[_key]))

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Run every test in a fresh empty directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def keep_default_act():
    """Restore Ultralytics' process-wide ``Conv.default_act`` (YAML ``activation:`` leaks it before 8.4.175)."""
    from ultralytics.nn.modules import Conv

    saved = Conv.default_act
    yield
    Conv.default_act = saved


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm random running statistics and affine parameters, then switch to ``.eval()``."""
    from yolo_efficientrep._utils import randomize_batchnorm

    return randomize_batchnorm(model, seed)


def count(model: torch.nn.Module, cls: type) -> int:
    """Count the modules of a class."""
    return sum(isinstance(m, cls) for m in model.modules())


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The suite's environment for a child process, plus ``env``."""
    # Without pytest's variables, Ultralytics in the child writes runs to the suite's runs_dir, not its own tests dir.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full_env.update(env or {})
    return full_env


def run(args: list[str], env: dict[str, str] | None = None, timeout: int = 600, cwd: Path | None = None):
    """Run a command in a fresh process with the suite's environment; return the completed process (no check)."""
    full_env = child_env(env)
    return subprocess.run(args, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: int = 600, cwd: Path | None = None, args: list[str] = ()
):
    """Run Python code in a fresh interpreter (same executable), ``args`` as ``sys.argv[1:]``; return the result."""
    return run([sys.executable, "-c", code, *args], env=env, timeout=timeout, cwd=cwd)


# Prepended to a child's code: the plugin can then not be imported at all, as on a machine where it is not installed
# (its start-up hook is also turned off through YOLO_EFFICIENTREP_AUTOLOAD=0 and taken off sys.meta_path).
BLOCK_PLUGIN = """
import importlib.abc, os, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("yolo_efficientrep", "_yolo_efficientrep_hook"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path[:] = [_NotInstalled()] + [f for f in sys.meta_path if type(f).__module__ != "_yolo_efficientrep_hook"]
assert os.environ.get("YOLO_EFFICIENTREP_AUTOLOAD") == "0" and "yolo_efficientrep" not in sys.modules
"""


def bin_path(name: str) -> str:
    """Path of a console script installed beside the running interpreter (e.g. ``yolo``)."""
    return str(Path(sys.executable).with_name(name))


def pytest_report_header(config):
    """Show which Ultralytics the suite runs against (CI runs it on the newest and the oldest supported)."""
    import ultralytics

    return f"ultralytics {ultralytics.__version__} ({Path(ultralytics.__file__).parent}), torch {torch.__version__}"


def export_onnx_or_skip(model, **kwargs) -> str:
    """``model.export(format="onnx")``, skipping where Ultralytics predates torch's dynamo ONNX default (stock issue).

    Ultralytics < 8.3 calls ``torch.onnx.export`` without ``dynamo=False``; with torch >= 2.9 that needs onnxscript.
    """
    try:
        return model.export(format="onnx", **kwargs)
    except ModuleNotFoundError as e:
        if e.name != "onnxscript":
            raise
        pytest.skip("this Ultralytics exports ONNX through torch's dynamo exporter, which needs onnxscript")


def save_checkpoint(model, path) -> Path:
    """Save a ``YOLO`` object's model as an Ultralytics checkpoint (``YOLO.save`` does not exist in 8.1)."""
    from copy import deepcopy

    import ultralytics

    net = model.model if hasattr(model, "model") and not isinstance(model, torch.nn.Sequential) else model
    ckpt = {"date": "2026-01-01T00:00:00", "version": ultralytics.__version__, "model": deepcopy(net).half()}
    torch.save({**ckpt, "train_args": {}, "epoch": -1, "ema": None, "optimizer": None}, path)
    return Path(path)


@contextlib.contextmanager
def ultralytics_log():
    """Collect the records Ultralytics' logger emits inside the block (a list, filled as they come)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def needs_newer_ultralytics(name: str) -> str | None:
    """The release a shipped model needs when the installed Ultralytics predates it (None: it builds here)."""
    import re

    import ultralytics

    from yolo_efficientrep.zoo import min_ultralytics

    def release(v):
        return tuple(int(p) for p in re.findall(r"\d+", v)[:3])

    need = min_ultralytics(name)
    return need if release(ultralytics.__version__) < release(need) else None


def build_or_refused(build, name: str):
    """``build()`` where the installed Ultralytics has what ``name`` needs; on an older one, assert that building is
    refused with the plugin's message naming the release it needs (not a parser ``KeyError``) and return None."""
    import re

    import ultralytics

    from yolo_efficientrep import UnsupportedVersionError

    need = needs_newer_ultralytics(name)
    if need is None:
        return build()
    message = (
        rf"needs ultralytics>={re.escape(need)}, but ultralytics {re.escape(ultralytics.__version__)} is installed"
    )
    with pytest.raises(UnsupportedVersionError, match=message):
        build()
    return None
