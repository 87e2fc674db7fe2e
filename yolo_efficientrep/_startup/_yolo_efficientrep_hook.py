"""Start-up hook of yolo-efficientrep, loaded at interpreter start by ``yolo_efficientrep.pth``.

On Python 3.15+ ``yolo_efficientrep.start`` (PEP 829) names ``install`` instead of the ``.pth`` import line.

It imports nothing heavy: it only puts a finder on ``sys.meta_path`` that, right after ``ultralytics.nn.tasks`` has
executed, imports ``yolo_efficientrep`` (which registers the plugin). So the stock ``yolo`` command, ``from ultralytics
import YOLO``, checkpoint loading and Ultralytics' DDP workers all see the plugin with no import in user code.

It never breaks an interpreter: any failure is reported on stderr once and Ultralytics carries on. Set
``YOLO_EFFICIENTREP_AUTOLOAD=0`` to turn it off.
"""

import os
import sys

_TARGET = "ultralytics.nn.tasks"
_SWITCH = "YOLO_EFFICIENTREP_AUTOLOAD"


def _load_plugin():
    try:
        import yolo_efficientrep

        register = getattr(yolo_efficientrep, "register", None)
        if register is not None:  # absent while yolo_efficientrep itself is mid-import: it registers on its own
            register()  # idempotent; re-applies after an importlib.reload of ultralytics.nn.tasks
    except Exception as e:  # noqa: BLE001 - a plugin problem must never take Ultralytics down
        sys.stderr.write(
            f"WARNING yolo-efficientrep: not loaded into Ultralytics ({type(e).__name__}: {e}). "
            f"Set {_SWITCH}=0 to silence this.\n"
        )


class _Loader:
    """Wrap the real loader of ``ultralytics.nn.tasks``: execute it, then load the plugin."""

    def __init__(self, wrapped):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        self._wrapped.exec_module(module)
        _load_plugin()

    def __getattr__(self, name):  # get_source, get_filename, ... for inspect and tracebacks
        return getattr(self._wrapped, name)


class _Finder:
    """A ``sys.meta_path`` finder that only acts on ``ultralytics.nn.tasks``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install():
    """Put the finder on ``sys.meta_path`` unless ``YOLO_EFFICIENTREP_AUTOLOAD`` is off. Idempotent."""
    try:
        if os.environ.get(_SWITCH, "1").strip().lower() in {"0", "false", "no", "off"}:
            return
        if any(type(f).__name__ == "_Finder" and type(f).__module__ == __name__ for f in sys.meta_path):
            return
        sys.meta_path.insert(0, _Finder())
        if _TARGET in sys.modules:  # Ultralytics already loaded (hook installed late): load the plugin now
            _load_plugin()
    except Exception:  # noqa: BLE001 - never break interpreter start-up
        pass
