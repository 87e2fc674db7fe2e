"""Console-script launcher of ``yolo-efficientrep``, installed at the root of site-packages like the start-up hook.

``yolo-efficientrep help`` answers from ``yolo_efficientrep/cli.py``'s docstring without importing the package (which
imports torch and Ultralytics to register the plugin); every other command runs ``yolo_efficientrep.cli``.
"""

import ast
import importlib.util
import sys
from pathlib import Path

_HELP = {"help", "-h", "--help"}


def entrypoint():
    """Print the help text fast, or run the command."""
    if len(sys.argv) < 2 or sys.argv[1] in _HELP:
        spec = importlib.util.find_spec("yolo_efficientrep")  # finds the package without importing it
        if spec is not None and spec.origin:
            source = Path(spec.origin).with_name("cli.py").read_text(encoding="utf-8")
            print(ast.get_docstring(ast.parse(source), clean=False))
            raise SystemExit(0)
    from yolo_efficientrep.cli import entrypoint as run

    run()
