"""INT8 post-training quantization of fused exports on CPU, and what it costs in accuracy, drift and latency.

Two INT8 paths, both calibrated on images of the offline dataset:

- ONNX Runtime static quantization of Ultralytics' fused ONNX export: QDQ format, int8 weights and activations, MinMax
  calibration on the dataset's train images (per-tensor weights by default, ONNX Runtime's own default); the head's
  decode stays in float, as in Ultralytics' OpenVINO INT8 export. The INT8 model keeps the FP32 export's Ultralytics
  metadata, so ``YOLO("best_int8.onnx")`` predicts and validates it.
- OpenVINO INT8 through Ultralytics' own exporter (``format="openvino", int8=True``, NNCF), calibrated on the same
  train images. Needs the ``export`` extra (``nncf``); Ultralytics cannot install it offline.

``quantize()`` measures, against the FP32 ONNX model run by ONNX Runtime: mAP50-95 of each (Ultralytics' validator),
the drop, the relative L2 drift of the raw box and class-score outputs on validation images, and batch-1 latency
(medians of interleaved rounds). ``yolo-efficientrep quantize`` prints the table; the benchmark runs it for the
models of its accuracy recipe.

Why this matters for rep blocks (QARepVGG, arXiv 2212.01593): fusing sums the 3x3, 1x1 and identity branches, each
scaled by its own BN, into one kernel whose range INT8 covers badly; ``QARepVGGBlock(V2)`` trains so that it does not.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ._timing import ort_timing_options, time_interleaved

__all__ = ("quantize", "quantize_onnx")


def _images(data: str, split: str) -> list[Path]:
    """Image files of a dataset split, resolved the way Ultralytics resolves them (bare plugin names included)."""
    from ultralytics.data.utils import check_det_dataset

    from .integration import check_ultralytics_version

    check_ultralytics_version()
    info = check_det_dataset(data)
    roots = info[split] if isinstance(info[split], list) else [info[split]]
    suffixes = {".jpg", ".jpeg", ".png", ".bmp"}
    files = sorted(f for root in roots for f in Path(root).rglob("*") if f.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"no images in the '{split}' split of data={data} ({', '.join(map(str, roots))})")
    return files


def _letterbox(file: Path, imgsz: int) -> np.ndarray:
    """One image as Ultralytics feeds a static-shape export: letterboxed to imgsz x imgsz, RGB, CHW, [0, 1]."""
    import cv2
    from ultralytics.data.augment import LetterBox

    image = cv2.imread(str(file))
    if image is None:
        raise FileNotFoundError(f"cannot read image {file}")
    image = LetterBox((imgsz, imgsz), auto=False)(image=image)
    return np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def quantize_onnx(
    fp32: str | Path, calibration: list[Path], imgsz: int, out: str | Path | None = None, per_channel: bool = False
) -> Path:
    """Quantize an Ultralytics ONNX export to INT8 with ONNX Runtime static quantization (QDQ, MinMax calibration).

    Args:
        fp32 (str | Path): The FP32 ONNX file (static input shape ``(1, 3, imgsz, imgsz)``).
        calibration (list[Path]): Calibration images.
        imgsz (int): Input size of the export.
        out (str | Path | None): Output file; default ``<stem>_int8.onnx`` beside ``fp32``.
        per_channel (bool): Per-output-channel weight scales instead of one per tensor.

    Returns:
        (Path): The INT8 model, with the FP32 model's metadata (names, stride, imgsz, task) copied over.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from .integration import onnx_head_decode_nodes

    fp32 = Path(fp32)
    out = Path(out) if out is not None else fp32.with_name(f"{fp32.stem}_int8.onnx")
    source = onnx.load(str(fp32))
    input_name = source.graph.input[0].name

    class Images(CalibrationDataReader):
        def __init__(self):
            self._files = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            file = next(self._files, None)
            return None if file is None else {input_name: _letterbox(file, imgsz)}

    quantize_static(
        str(fp32),
        str(out),
        Images(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        # The head's decode stays in float, as in Ultralytics' OpenVINO INT8 export: the decoded output concatenates
        # pixel coordinates (0..imgsz) with class scores (0..1), and one INT8 scale for both would round every score
        # to zero. Its branch convs are quantized.
        nodes_to_exclude=onnx_head_decode_nodes(source),
        calibrate_method=CalibrationMethod.MinMax,
    )
    quantized = onnx.load(str(out))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    onnx.save(quantized, str(out))
    return out


def _relative_drift(reference: list[np.ndarray], other: list[np.ndarray], rows: slice) -> float:
    """Mean over images of ||other - reference||_2 / ||reference||_2 on some rows of a (1, 4 + nc, anchors) output."""
    pairs = [(a[:, rows], b[:, rows]) for a, b in zip(reference, other)]
    return float(np.mean([np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-12) for a, b in pairs]))


def _median_ms(runners: dict[str, Any], rounds: int) -> dict[str, float]:
    """Median latency (ms) of each runner: the shared timer (one warm-up call, every runner once per shuffled round)."""
    times, _ = time_interleaved(runners, rounds, warmup=1)
    return {k: statistics.median(v) for k, v in times.items()}


def _map(model_path: Path, data: str, imgsz: int, project: Path, name: str) -> float:
    from ultralytics import YOLO

    metrics = YOLO(model_path, task="detect").val(
        data=data, imgsz=imgsz, batch=1, device="cpu", plots=False, project=str(project), name=name, verbose=False
    )
    return float(metrics.box.map)


def quantize(
    weights: str | Path,
    data: str,
    imgsz: int = 640,
    formats: tuple[str, ...] = ("onnx", "openvino"),
    per_channel: bool = False,
    drift_images: int = 16,
    rounds: int = 10,
    project: str | Path | None = None,
) -> dict:
    """Export a detection checkpoint fused, quantize it to INT8 and measure what quantization costs.

    Args:
        weights (str | Path): A ``.pt`` detection checkpoint (plugin or stock).
        data (str): Dataset YAML: calibration uses its train split, mAP and drift its val split.
        imgsz (int): Export and evaluation size.
        formats (tuple[str, ...]): INT8 paths to run, ``"onnx"`` (ONNX Runtime) and/or ``"openvino"``.
        per_channel (bool): ONNX Runtime per-channel weight scales.
        drift_images (int): Validation images the raw-output drift is averaged over.
        rounds (int): Interleaved timing rounds (batch 1).
        project (str | Path | None): Where validation runs write; default beside ``weights``.

    Returns:
        (dict): ``fp32`` (mAP50-95 and ORT latency of the FP32 ONNX model) and, per format, ``map50_95``, ``drop``
        (FP32 minus INT8 mAP50-95), ``drift_boxes`` and ``drift_scores`` (relative L2 drift of the raw box and
        class-score outputs), ``latency_ms``, ``speedup`` (FP32 ONNX Runtime latency / INT8 latency) and the file; an
        OpenVINO export that cannot run holds ``error`` instead.
    """
    import onnxruntime as ort
    from ultralytics import YOLO

    from .deployment import read_checkpoint

    weights = Path(weights)
    read_checkpoint(weights)  # a missing or damaged file gets its own clear error, not a torch traceback
    task = YOLO(weights).task
    if task != "detect":
        raise ValueError(f"quantize measures detection checkpoints (mAP50-95 of boxes); '{weights}' is a {task} model")
    unknown = set(formats) - {"onnx", "openvino"}
    if unknown:
        raise ValueError(f"unknown INT8 formats {sorted(unknown)}; choose from 'onnx', 'openvino'")
    project = Path(project) if project is not None else weights.parent / "int8"
    calibration, validation = _images(data, "train"), _images(data, "val")
    samples = [_letterbox(f, imgsz) for f in validation[:drift_images]]
    fp32 = Path(YOLO(weights).export(format="onnx", imgsz=imgsz, simplify=True, dynamic=False, batch=1))
    session = ort.InferenceSession(str(fp32), ort_timing_options(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    reference = [session.run(None, {name: x})[0] for x in samples]
    runners = {"fp32": lambda: session.run(None, {name: samples[0]})}
    report: dict[str, Any] = {
        "settings": {
            "imgsz": imgsz,
            "calibration": f"{len(calibration)} train images of {data}",
            "onnxruntime": "static QDQ, int8 weights and activations, MinMax, "
            + ("per-channel" if per_channel else "per-tensor"),
            "openvino": "Ultralytics export int8=True (NNCF), calibrated on the train split",
            "reference": "FP32 ONNX on ONNX Runtime",
        },
        "fp32": {"map50_95": _map(fp32, data, imgsz, project, "fp32"), "file": fp32.name},
    }
    outputs = {}
    if "onnx" in formats:
        int8 = quantize_onnx(fp32, calibration, imgsz, per_channel=per_channel)
        q = ort.InferenceSession(str(int8), ort_timing_options(), providers=["CPUExecutionProvider"])
        outputs["onnx"] = [q.run(None, {name: x})[0] for x in samples]
        runners["onnx"] = lambda: q.run(None, {name: samples[0]})
        report["onnx"] = {"map50_95": _map(int8, data, imgsz, project, "onnx-int8"), "file": int8.name}
    if "openvino" in formats:
        try:
            folder = Path(YOLO(weights).export(format="openvino", int8=True, data=data, imgsz=imgsz, split="train"))
        except Exception as e:  # recorded in the report: e.g. nncf missing and not installable offline
            report["openvino"] = {"error": f"{type(e).__name__}: {e}"}
        else:
            import openvino as ov

            compiled = ov.Core().compile_model(next(folder.glob("*.xml")), "CPU")
            outputs["openvino"] = [compiled(x)[compiled.output(0)] for x in samples]
            runners["openvino"] = lambda: compiled(samples[0])
            report["openvino"] = {"map50_95": _map(folder, data, imgsz, project, "openvino-int8"), "file": folder.name}
    latency = _median_ms(runners, rounds)
    report["fp32"]["latency_ms"] = latency["fp32"]
    for key, values in outputs.items():
        entry = report[key]
        entry["drop"] = report["fp32"]["map50_95"] - entry["map50_95"]
        entry["drift_boxes"] = _relative_drift(reference, values, slice(0, 4))  # box rows (pixels)
        entry["drift_scores"] = _relative_drift(reference, values, slice(4, None))  # class-score rows
        entry["latency_ms"] = latency[key]
        entry["speedup"] = latency["fp32"] / latency[key] if latency[key] > 0 else math.nan
    return report
