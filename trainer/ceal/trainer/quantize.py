"""int8 export: static QDQ quantisation calibrated on training images, refused unless it ranks like fp32.

Recipe. (1) onnxruntime's basic graph optimisations fold BatchNorm into the convolutions, with
`EliminateDropout` disabled (the rule deletes Dropout even in training mode; `quant_pre_process` would run
it too, hence `skip_optimization=True` there). (2) `quantize_static`, QDQ format, int8 weights per output
channel, uint8 activations, min/max ranges from a few dozen training images normalised as the metadata
says; the output head (last Conv and the Sigmoid/Softmax) stays float, so probabilities are not rounded to
1/256 steps before entropy and mutual information are taken of them. The calibrator runs the graph
unoptimised, so Dropout is live and the ranges after it include the 1 / (1 - ratio) scaling that serving
sees. (3) The quantised graph must still hold every Dropout and split
into prefix and suffix the way the service splits it (Dropout → Mul(mask)).

Fidelity gate, on the validation images with fixed seeds (both models see the same dropout masks):
Spearman ρ of the image scores (mean mutual information, mean predictive entropy) ≥ 0.95 and the Dice drop
of the Monte-Carlo mean mask ≤ 0.01; otherwise `ExportError` says which figure failed. The figures go into
the metadata's `extra["int8"]`, and `precision` becomes "int8".
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from scipy.stats import spearmanr

from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.preprocess import prepare
from ceal.service.engine.split import split_model
from ceal.service.errors import InvalidInput
from ceal.service.image_reductions import image_scores
from ceal.service.metadata import ModelMetadata
from ceal.service.runtime import DISABLED_OPTIMIZERS
from ceal.service.uncertainty import summarize
from ceal.trainer.export import ExportError
from ceal.trainer.train import Dataset, dice_score

__all__ = ["Fidelity", "Int8Converter", "Int8Settings", "fidelity", "quantize_int8"]


@dataclass(frozen=True)
class Int8Settings:
    """Calibration size, the gate's Monte-Carlo samples and seed, and its thresholds."""

    calibration_images: int = 32
    samples: int = 20
    seed: int = 0
    min_spearman: float = 0.95
    max_dice_drop: float = 0.01


@dataclass(frozen=True)
class Fidelity:
    """int8 against fp32 on `images` validation images, T = `samples` with the same masks for both."""

    spearman_mutual_information: float
    spearman_entropy: float
    dice_fp32: float
    dice_int8: float
    images: int
    samples: int

    @property
    def dice_drop(self) -> float:
        return self.dice_fp32 - self.dice_int8

    def failures(self, settings: Int8Settings) -> list[str]:
        """What misses the gate, in words; empty when int8 may be exported."""
        out = []
        for name, rho in (("mutual information", self.spearman_mutual_information), ("entropy", self.spearman_entropy)):
            if not rho >= settings.min_spearman:  # NaN (scores that do not vary) fails too
                out.append(f"Spearman ρ of {name} scores {rho:.3f} < {settings.min_spearman}")
        if not self.dice_drop <= settings.max_dice_drop:
            out.append(
                f"Dice drops by {self.dice_drop:.4f} ({self.dice_fp32:.4f} → {self.dice_int8:.4f}) "
                f"> {settings.max_dice_drop}"
            )
        return out

    def record(self) -> dict[str, float | int]:
        return {**dataclasses.asdict(self), "dice_drop": self.dice_drop}


class _Images(CalibrationDataReader):  # type: ignore[misc]
    """Feeds the calibration inputs (N, C, h, w) one image per call."""

    def __init__(self, name: str, inputs: npt.NDArray[np.float32]) -> None:
        self._batches: Iterator[dict[str, npt.NDArray[np.float32]]] = iter({name: x[None]} for x in inputs)

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._batches, None)


def _dropouts(model_bytes: bytes) -> int:
    return sum(n.op_type == "Dropout" for n in onnx.load_from_string(model_bytes).graph.node)


def _fold_batchnorm(model_bytes: bytes, path: Path) -> None:
    """onnxruntime's basic optimisations (BatchNorm folded into Conv), Dropout kept; written to `path`."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(path)
    opts.log_severity_level = 3
    ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS)


def _head(path: Path) -> list[str]:
    """Names of the output activation (Sigmoid/Softmax) and of the Conv feeding it, when they are there."""
    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    names, node = [], producer.get(graph.output[0].name)
    for op_types in (("Sigmoid", "Softmax"), ("Conv",)):
        if node is None or node.op_type not in op_types or not node.name:
            break
        names.append(node.name)
        node = producer.get(node.input[0])
    return names


def quantize_int8(model_bytes: bytes, meta: ModelMetadata, calibration: npt.NDArray[np.float32]) -> bytes:
    """QDQ int8 model of `model_bytes`, calibrated on model inputs `calibration` (N, C, h, w) float32.

    Raises ExportError when the quantised graph lost a Dropout or cannot be split for serving.
    """
    want = (meta.input_channels, meta.input_height, meta.input_width)
    if calibration.ndim != 4 or calibration.shape[1:] != want or len(calibration) == 0:
        raise ExportError(
            f"calibration inputs must be (N >= 1, {want[0]}, {want[1]}, {want[2]}); got {list(calibration.shape)}"
        )
    with tempfile.TemporaryDirectory(prefix="ceal-int8-") as tmp:
        folded, prepared, quantized = (Path(tmp) / f for f in ("folded.onnx", "pre.onnx", "int8.onnx"))
        _fold_batchnorm(model_bytes, folded)
        quant_pre_process(str(folded), str(prepared), skip_optimization=True)
        quantize_static(
            str(prepared),
            str(quantized),
            _Images(meta.input_name, calibration.astype(np.float32)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_head(prepared),
        )
        out = quantized.read_bytes()
    kept, before = _dropouts(out), _dropouts(model_bytes)
    if kept != before:
        raise ExportError(f"the int8 graph has {kept} Dropout nodes, the fp32 graph {before}: sampling would break")
    try:
        split_model(out, meta.input_height, meta.input_width, meta.input_channels)
    except InvalidInput as exc:
        raise ExportError(f"the int8 graph cannot be split for serving: {exc}") from exc
    return out


def _mc_outputs(
    model: LoadedModel, images: npt.NDArray[np.uint8], samples: int, seed: int, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: mean mutual information, mean entropy (N,) and the MC mean mask (N, h, w) as served."""
    mi, entropy, masks = [], [], []
    for i, image in enumerate(images):
        x = prepare(image, model.meta)[None]
        probs = model.sample(x, samples, np.random.default_rng([seed, i])).probabilities[0]  # (T, C, h, w)
        stats = summarize(probs)
        scores = image_scores(stats, threshold=threshold)
        mi.append(scores[("mutual_information", "mean")])
        entropy.append(scores[("entropy", "mean")])
        mean = stats.mean
        masks.append(mean[0] > threshold if mean.shape[0] == 1 else mean.argmax(axis=0) > 0)
    return np.asarray(mi), np.asarray(entropy), np.stack(masks)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def fidelity(fp32: LoadedModel, int8: LoadedModel, validation: Dataset, samples: int, seed: int) -> Fidelity:
    """Compare the int8 model with fp32 on `validation` (image uint8 (N, h, w, 3), masks (N, h, w))."""
    mi32, ent32, mask32 = _mc_outputs(fp32, validation.images, samples, seed)
    mi8, ent8, mask8 = _mc_outputs(int8, validation.images, samples, seed)
    truth = validation.masks > 0
    return Fidelity(
        spearman_mutual_information=_spearman(mi32, mi8),
        spearman_entropy=_spearman(ent32, ent8),
        dice_fp32=dice_score(mask32, truth),
        dice_int8=dice_score(mask8, truth),
        images=len(validation.ids),
        samples=samples,
    )


class Int8Converter:
    """`export_model(..., convert=Int8Converter(train, val))`: quantise, gate, record the figures."""

    def __init__(self, calibration: Dataset, validation: Dataset, settings: Int8Settings | None = None) -> None:
        self.settings = s = settings or Int8Settings()
        if len(calibration.ids) == 0:
            raise ExportError("int8 calibration needs training images; none were given")
        if len(validation.ids) < 3:
            raise ExportError(f"the int8 fidelity gate needs at least 3 validation images; got {len(validation.ids)}")
        self.calibration = calibration.subset(list(range(min(len(calibration.ids), s.calibration_images))))
        self.validation = validation
        self.fidelity: Fidelity | None = None

    def __call__(self, model_bytes: bytes, meta: ModelMetadata) -> tuple[bytes, ModelMetadata]:
        s = self.settings
        inputs = np.stack([prepare(image, meta) for image in self.calibration.images])
        int8_bytes = quantize_int8(model_bytes, meta, inputs)
        self.fidelity = fidelity(
            LoadedModel(meta, model_bytes), LoadedModel(meta, int8_bytes), self.validation, s.samples, s.seed
        )
        failures = self.fidelity.failures(s)
        if failures:
            raise ExportError(
                f"int8 export refused on {self.fidelity.images} validation images (T = {s.samples}): "
                + "; ".join(failures)
                + ". Calibrate on more or more representative training images, or export fp32 (without --int8)."
            )
        record = {
            **self.fidelity.record(),
            "calibration_images": len(self.calibration.ids),
            "seed": s.seed,
            "format": "QDQ, int8 per-channel weights, uint8 activations",
        }
        return int8_bytes, dataclasses.replace(meta, precision="int8", extra={**meta.extra, "int8": record})
