"""The ``yolo-efficientrep`` command: the plugin's own jobs, in the stock ``yolo`` command's ``key=value`` dialect.

    yolo-efficientrep help                          this text
    yolo-efficientrep list                          shipped YAMLs and their scales
    yolo-efficientrep check [imgsz=96]              registration + exact fuse of every shipped model YAML (scale n)
    yolo-efficientrep info model=NAME [imgsz=640]   layers, parameters and GFLOPs, unfused vs fused
    yolo-efficientrep quantize model=best.pt data=shapes.yaml [imgsz=640] [formats=[onnx,openvino]] [per_channel=False]
                                                    INT8 post-training quantization (ONNX Runtime, OpenVINO) of the
                                                    fused export: mAP50-95 FP32 vs INT8, output drift, latency
    yolo-efficientrep deploy model=best.pt [out=best-deploy.pt] [half=False] [overwrite=False]
                                                    a copy of the checkpoint made of stock Ultralytics modules only,
                                                    for machines that have Ultralytics but not this plugin; an
                                                    existing out= file is kept unless overwrite=True
    yolo-efficientrep convert weights=yolov6n.pt [out=yolov6n-ultralytics.pt] [data=custom.yaml] [overwrite=False]
                                                    an official YOLOv6 v3.0 checkpoint (N/S/M/L, 0.3.0 or 0.4.x) as an
                                                    Ultralytics checkpoint: yolo predict/val/export/train take it;
                                                    read without YOLOv6 and without running code from the file

As with ``yolo``: a bare boolean key means True (``half`` is ``half=True``), lists are written ``[a,b]`` (or ``a,b``).
Every command also takes ``verbose=True``, which shows the full traceback when a command fails; without it a failure
is one line on stderr and exit status 1.

Training, validation, prediction and export use the stock ``yolo`` command; the plugin is already active there.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Nothing heavy is imported at module level: `help` and argument errors answer without torch or Ultralytics.


class UsageError(Exception):
    """A command line that cannot run: unknown command or key, or a value of the wrong type."""


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise UsageError(f"expected True or False, got '{value}'")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        pass
    if "," in value:
        raise UsageError(f"expected one integer (the side of a square input), got '{value}'") from None
    raise UsageError(f"expected an integer, got '{value}'") from None


def _list(value: str) -> list[str]:
    items = [v.strip().strip("'\"") for v in value.strip().removeprefix("[").removesuffix("]").split(",")]
    if not all(items):
        raise UsageError(f"expected a list like [a,b], got '{value}'")
    return items


def _formats(value: str) -> list[str]:
    formats = _list(value)
    unknown = sorted(set(formats) - {"onnx", "openvino"})
    if unknown:
        raise UsageError(f"unknown formats {unknown}; choose onnx, openvino")
    return formats


def _str(value: str) -> str:
    if not value:
        raise UsageError("expected a value, got nothing")
    return value


@dataclass(frozen=True)
class Command:
    """One ``yolo-efficientrep`` command: the function that runs it and the keys it takes, with their types."""

    run: Callable[[dict[str, Any]], int]  # gets the parsed options, returns the exit status
    keys: dict[str, Callable[[str], Any]] = field(default_factory=dict)  # key -> parser of its value (_str, _int...)
    required: tuple[str, ...] = ()
    example: str = ""  # shown when a required key is missing


# --------------------------------------------------------------------------------------------------------- commands
def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _logger():
    from ultralytics.utils import LOGGER

    from . import zoo  # noqa: F401 - importing the package registers the plugin

    return LOGGER


def _help(options: dict[str, Any]) -> int:
    print(__doc__)
    return 0


def _list_yamls(options: dict[str, Any]) -> int:
    LOGGER = _logger()
    import yaml

    from . import zoo
    from .resources import cfg_dir, yaml_names

    rows = []
    for name in yaml_names():
        path = next(cfg_dir().rglob(name))
        data = yaml.safe_load(path.read_text())
        scales = ", ".join(data.get("scales", {})) if "scales" in data else ""
        example = zoo.scaled_name(name.removesuffix(".yaml"), next(iter(data["scales"]))) if scales else name
        rows.append([name, path.parent.name, scales or "-", example])
    from .data import GENERATED_FOLDERS

    rows += [[name, "datasets (folder, no YAML)", "-", f"data={name}"] for name in GENERATED_FOLDERS]
    LOGGER.info(_table(["yaml", "kind", "scales", "use as"], rows))
    return 0


def _check(options: dict[str, Any]) -> int:
    LOGGER = _logger()
    from ultralytics.utils import TQDM

    from . import zoo

    imgsz = options.get("imgsz", 96)
    names = [zoo.scaled_name(f, "n") for f in zoo.MODEL_FAMILIES]
    results = [zoo.check_model(n, imgsz) for n in TQDM(names, desc="yolo-efficientrep check")]
    verdict = {True: "ok", False: "FAIL"}
    rows = [
        [r.name, r.plugin_blocks, r.rep_units, r.batchnorms_left, f"{r.max_rel_error:.1e}", verdict[r.ok]]
        if not r.skipped
        else [r.name, "-", "-", "-", "-", f"skipped (needs ultralytics>={zoo.min_ultralytics(r.name)})"]
        for r in results
    ]
    LOGGER.info(_table(["model", "plugin blocks", "rep units", "BN after fuse", "max rel error", "result"], rows))
    for r in results:
        if r.error:
            LOGGER.error(f"{r.name}: {r.error}")
    return 0 if all(r.ok or r.skipped for r in results) else 1


def _info(options: dict[str, Any]) -> int:
    LOGGER = _logger()
    from . import zoo

    imgsz = options.get("imgsz", 640)
    s = zoo.model_stats(options["model"], imgsz)
    rows = [
        ["unfused", s.layers, f"{s.params:,}", f"{s.gflops:.1f}"],
        ["fused", s.fused_layers, f"{s.fused_params:,}", f"{s.fused_gflops:.1f}"],
    ]
    LOGGER.info(f"{s.name} ({s.task})\n" + _table(["form", "layers", "parameters", f"GFLOPs at {imgsz}x{imgsz}"], rows))
    return 0


def _quantize(options: dict[str, Any]) -> int:
    LOGGER = _logger()
    from .quantize import quantize

    formats = tuple(options.get("formats", ("onnx", "openvino")))
    r = quantize(
        options["model"],
        options["data"],
        options.get("imgsz", 640),
        formats,
        per_channel=options.get("per_channel", False),
    )
    rows = [["FP32 (ONNX Runtime)", f"{r['fp32']['map50_95']:.4f}", "-", "-", "-", f"{r['fp32']['latency_ms']:.1f}"]]
    for fmt, label in (("onnx", "INT8 ONNX Runtime"), ("openvino", "INT8 OpenVINO")):
        q = r.get(fmt)
        if q and "error" in q:
            LOGGER.error(f"yolo-efficientrep quantize: {label}: {q['error']}")
        elif q:
            rows.append(
                [label, f"{q['map50_95']:.4f}", f"{q['drop']:+.4f}", f"{q['drift_boxes']:.4f}",
                 f"{q['drift_scores']:.4f}", f"{q['latency_ms']:.1f}"]
            )  # fmt: skip
    header = ["model", "mAP50-95", "drop", "box drift", "score drift", "latency b1 (ms)"]
    files = ", ".join(r[k]["file"] for k in ("fp32", *formats) if "file" in r.get(k, {}))
    LOGGER.info(f"{r['settings']}\n" + _table(header, rows) + f"\nwritten beside {options['model']}: {files}")
    return 0 if all("error" not in r.get(f, {}) for f in formats) else 1


def _deploy(options: dict[str, Any]) -> int:
    _logger()
    from .deployment import deploy

    deploy(
        options["model"],
        out=options.get("out"),
        half=options.get("half", False),
        overwrite=options.get("overwrite", False),
    )
    return 0


def _convert(options: dict[str, Any]) -> int:
    _logger()
    from .convert import convert_yolov6

    convert_yolov6(
        options["weights"], out=options.get("out"), data=options.get("data"), overwrite=options.get("overwrite", False)
    )
    return 0


# To add a command: write `def _name(options) -> int` above, add a row here, and a line to the module docstring
# (`help` prints it; a test checks that every command is there).
COMMANDS: dict[str, Command] = {
    "help": Command(_help),
    "list": Command(_list_yamls),
    "check": Command(_check, {"imgsz": _int}),
    "info": Command(_info, {"model": _str, "imgsz": _int}, ("model",), "model=yolov8n-efficientrep.yaml"),
    "deploy": Command(
        _deploy,
        {"model": _str, "out": _str, "half": _bool, "overwrite": _bool},
        ("model",),
        "model=runs/detect/train/weights/best.pt",
    ),
    "convert": Command(
        _convert,
        {"weights": _str, "out": _str, "data": _str, "overwrite": _bool},
        ("weights",),
        "weights=yolov6n.pt",
    ),
    "quantize": Command(
        _quantize,
        {"model": _str, "data": _str, "imgsz": _int, "formats": _formats, "per_channel": _bool},
        ("model", "data"),
        "model=best.pt data=shapes.yaml",
    ),
}
STOCK_COMMANDS = ("train", "val", "predict", "export", "track")  # the stock `yolo` command runs these
MOVED = {  # former commands: where their job lives now
    "benchmark": "the benchmark is a development tool of the project's repository, not part of the installed plugin: "
    "in a clone of the repository run `python benchmarks/run.py [quick=True] [models=[a.yaml,b.yaml]] ...` "
    "(docs/benchmarks/report.md holds the latest report); for one model's layers, parameters and GFLOPs, unfused "
    "vs fused, use `yolo-efficientrep info model=NAME`",
}
COMMON_KEYS = {"verbose": _bool}  # taken by every command


# ---------------------------------------------------------------------------------------------------------- parsing
def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``argv`` (without the program name) into the command and its typed options.

    Raises:
        UsageError: An unknown command or key, a missing required key, or a value of the wrong type.
    """
    if not argv or argv[0] in {"-h", "--help"}:
        return "help", {}
    command, tokens = argv[0], argv[1:]
    if command in MOVED:
        raise UsageError(f"'{command}' is no longer a command; {MOVED[command]}")
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, [*COMMANDS, *STOCK_COMMANDS], n=1, cutoff=0.6)
        if command in STOCK_COMMANDS or (close and close[0] in STOCK_COMMANDS):
            stock = command if command in STOCK_COMMANDS else close[0]
            hint = f"; '{stock}' is a stock Ultralytics command (use yolo {stock} ...)."
        else:
            hint = f"; did you mean '{close[0]}'?" if close else "."
        raise UsageError(f"unknown command '{command}'{hint} Commands: {', '.join(COMMANDS)}")
    spec = COMMANDS[command]
    keys = {**spec.keys, **COMMON_KEYS}
    options: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if key not in keys:
            valid = ", ".join(f"{k}=..." for k in sorted(spec.keys)) or "none"
            hint = _did_you_mean(key, keys).replace("'?", "=...'?")
            raise UsageError(f"invalid argument '{token}'; valid arguments: {valid}{hint}")
        if not sep:
            if keys[key] is not _bool:
                raise UsageError(f"'{key}' needs a value, e.g. {key}=...")
            value = "True"  # a bare boolean key means True, as in the stock yolo command
        try:
            options[key] = keys[key](value)
        except UsageError as e:
            raise UsageError(f"{key}: {e}") from None
    missing = [k for k in spec.required if k not in options]
    if missing:
        example = f", e.g. {spec.example}" if spec.example else ""
        raise UsageError(f"missing {', '.join(f'{k}=...' for k in missing)}{example}")
    return command, options


def _one_line(e: BaseException) -> str:
    """The message of ``e`` on one line; its type too unless it is one of the plugin's own or a missing file."""
    text = " ".join(str(e).split()) or repr(e)
    own = type(e).__module__.partition(".")[0] == __name__.partition(".")[0]
    return text if own or isinstance(e, FileNotFoundError) else f"{type(e).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit status.

    Every failure is one line on stderr and status 1 (with ``verbose=True``, the traceback instead).
    """
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "help"
    try:
        command, options = parse(argv)
    except UsageError as e:
        print(
            f"yolo-efficientrep {command}: {e}" if command in COMMANDS else f"yolo-efficientrep: {e}", file=sys.stderr
        )
        return 1
    verbose = options.pop("verbose", False)
    try:
        return COMMANDS[command].run(options)
    except Exception as e:  # noqa: BLE001 - the command line reports every failure the same way
        if verbose:
            raise
        hint = "" if isinstance(e, (UsageError, FileNotFoundError)) else " (verbose=True shows the traceback)"
        print(f"yolo-efficientrep {command}: {_one_line(e)}{hint}", file=sys.stderr)
        return 1


def entrypoint() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
