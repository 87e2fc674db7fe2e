"""The ``yolo-efficientrep`` command: the plugin's own jobs, in Ultralytics' ``key=value`` style.

    yolo-efficientrep list                          shipped YAMLs and their scales
    yolo-efficientrep check [imgsz=96]              registration + exact fuse of every shipped model YAML (scale n)
    yolo-efficientrep info model=NAME [imgsz=640]   layers, parameters and GFLOPs, unfused vs fused
    yolo-efficientrep benchmark [quick=False] [out=docs/benchmarks] [models=a.yaml,b.yaml] [accuracy=True]
                                [readme=README.md]  latency, compute density, training cost and accuracy side by side;
                                                    readme= also writes the report into that README's section
    yolo-efficientrep quantize model=best.pt data=shapes.yaml [imgsz=640] [formats=onnx,openvino] [per_channel=False]
                                                    INT8 post-training quantization (ONNX Runtime, OpenVINO) of the
                                                    fused export: mAP50-95 FP32 vs INT8, output drift, latency
    yolo-efficientrep deploy model=best.pt [out=best-deploy.pt] [half=False]
                                                    a copy of the checkpoint made of stock Ultralytics modules only,
                                                    for machines that have Ultralytics but not this plugin

Training, validation, prediction and export use the stock ``yolo`` command; the plugin is already active there.
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMANDS = {
    "list": set(),
    "check": {"imgsz"},
    "info": {"model", "imgsz"},
    "benchmark": {"quick", "out", "models", "accuracy", "readme"},
    "deploy": {"model", "out", "half"},
    "quantize": {"model", "data", "imgsz", "formats", "per_channel"},
}


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise SystemExit(f"yolo-efficientrep: expected True or False, got '{value}'")


def _parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        raise SystemExit(__doc__)
    command, pairs = argv[0], argv[1:]
    if command not in COMMANDS:
        raise SystemExit(f"yolo-efficientrep: unknown command '{command}'; choose from {', '.join(COMMANDS)}")
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in COMMANDS[command]:
            valid = ", ".join(f"{k}=..." for k in sorted(COMMANDS[command])) or "none"
            raise SystemExit(f"yolo-efficientrep {command}: invalid argument '{pair}'; valid arguments: {valid}")
        options[key] = value
    return command, options


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    command, options = _parse(sys.argv[1:] if argv is None else argv)
    from ultralytics.utils import LOGGER, TQDM

    from . import zoo  # importing the package registers the plugin
    from .resources import cfg_dir, yaml_names

    if command == "list":
        import yaml

        rows = []
        for name in yaml_names():
            path = next(cfg_dir().rglob(name))
            data = yaml.safe_load(path.read_text())
            scales = ", ".join(data.get("scales", {})) if "scales" in data else ""
            example = zoo.scaled_name(name.removesuffix(".yaml"), next(iter(data["scales"]))) if scales else name
            rows.append([name, path.parent.name, scales or "-", example])
        LOGGER.info(_table(["yaml", "kind", "scales", "use as"], rows))
        return 0

    if command == "check":
        imgsz = int(options.get("imgsz", 96))
        names = [zoo.scaled_name(f, "n") for f in zoo.MODEL_FAMILIES]
        results = [zoo.check_model(n, imgsz) for n in TQDM(names, desc="yolo-efficientrep check")]
        verdict = {True: "ok", False: "FAIL"}
        rows = [
            [r.name, r.plugin_blocks, r.rep_units, r.batchnorms_left, f"{r.max_rel_error:.1e}", verdict[r.ok]]
            for r in results
        ]
        LOGGER.info(_table(["model", "plugin blocks", "rep units", "BN after fuse", "max rel error", "result"], rows))
        for r in results:
            if r.error:
                LOGGER.error(f"{r.name}: {r.error}")
        return 0 if all(r.ok for r in results) else 1

    if command == "benchmark":
        from .benchmark import DEFAULT_MODELS, run_benchmark

        models = tuple(options["models"].split(",")) if "models" in options else DEFAULT_MODELS
        report = run_benchmark(
            models,
            quick=_bool(options.get("quick", "False")),
            out=options.get("out", "docs/benchmarks"),
            accuracy=_bool(options.get("accuracy", "True")),
        )
        markdown = (Path(options.get("out", "docs/benchmarks")) / "report.md").read_text()
        LOGGER.info(markdown)
        if "readme" in options:
            readme = Path(options["readme"])
            readme.write_text(zoo.update_readme(readme, {"benchmark": markdown.rstrip("\n")}))
        return 0 if report["models"] else 1

    if command == "quantize":
        from .quantize import quantize

        missing = [k for k in ("model", "data") if k not in options]
        if missing:
            raise SystemExit(f"yolo-efficientrep quantize: missing {', '.join(f'{k}=...' for k in missing)}")
        formats = tuple(options.get("formats", "onnx,openvino").split(","))
        unknown = set(formats) - {"onnx", "openvino"}
        if unknown:
            raise SystemExit(f"yolo-efficientrep quantize: unknown formats {sorted(unknown)}; choose onnx, openvino")
        try:
            r = quantize(
                options["model"],
                options["data"],
                int(options.get("imgsz", 640)),
                formats,
                per_channel=_bool(options.get("per_channel", "False")),
            )
        except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
            LOGGER.error(f"yolo-efficientrep quantize: {type(e).__name__}: {e}")
            return 1
        rows = [
            ["FP32 (ONNX Runtime)", f"{r['fp32']['map50_95']:.4f}", "-", "-", "-", f"{r['fp32']['latency_ms']:.1f}"]
        ]
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

    if command == "deploy":
        from .deployment import DeployError, deploy

        if "model" not in options:
            raise SystemExit(
                "yolo-efficientrep deploy: missing model=..., e.g. model=runs/detect/train/weights/best.pt"
            )
        try:
            deploy(options["model"], out=options.get("out"), half=_bool(options.get("half", "False")))
        except (DeployError, FileNotFoundError) as e:
            LOGGER.error(f"yolo-efficientrep deploy: {e}")
            return 1
        return 0

    if "model" not in options:
        raise SystemExit("yolo-efficientrep info: missing model=..., e.g. model=yolov8n-efficientrep.yaml")
    s = zoo.model_stats(options["model"], int(options.get("imgsz", 640)))
    rows = [
        ["unfused", s.layers, f"{s.params:,}", f"{s.gflops:.1f}"],
        ["fused", s.fused_layers, f"{s.fused_params:,}", f"{s.fused_gflops:.1f}"],
    ]
    LOGGER.info(f"{s.name} ({s.task})\n" + _table(["form", "layers", "parameters", "GFLOPs"], rows))
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
