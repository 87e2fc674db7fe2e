"""The repository's benchmark: measure, then render (a development tool, not part of the installed plugin).

    python benchmarks/run.py [quick=False] [out=docs/benchmarks] [models=[a.yaml,b.yaml]] [accuracy=True]
                             [readme=README.md] [threads=N]

``measure.py`` times and counts every model and writes ``out/report.json``; ``render.py`` turns that file into
``report.md``, the plots and (``readme=``) the README's generated benchmark section. ``python benchmarks/render.py``
renders again from the JSON without measuring. A full run takes about 25 minutes on 2 CPU cores; ``quick=True`` is
the CI-sized run (256 px, a few rounds, a one-epoch accuracy recipe).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however the script is started

import measure  # noqa: E402
import render  # noqa: E402
from options import parse_options  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when no model could be built."""
    keys = {"quick": bool, "out": str, "models": list, "accuracy": bool, "readme": str, "threads": int}
    options = parse_options(argv, keys, "benchmarks/run.py")
    out = Path(options.get("out", "docs/benchmarks"))
    if "readme" in options:  # checked before a long run, not after it
        from yolo_efficientrep.zoo import update_readme

        update_readme(Path(options["readme"]), {"benchmark": ""})
    report = measure.measure(
        tuple(options.get("models", measure.DEFAULT_MODELS)),
        quick=options.get("quick", False),
        out=out,
        accuracy_run=options.get("accuracy", True),
        threads=options.get("threads"),
    )
    print(render.render(report, out, options.get("readme")))
    return 0 if report["models"] else 1


if __name__ == "__main__":
    sys.exit(main())
