"""A model version loaded for serving: metadata, onnxruntime sessions and its Monte-Carlo sampler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ceal.service.engine.iobinding import device_for, run_bound
from ceal.service.engine.split import SplitModel, draw_masks, split_model
from ceal.service.errors import DeadlineExceeded, InvalidInput
from ceal.service.metadata import MODEL_FILE, ModelMetadata
from ceal.service.runtime import make_session, select_providers

log = logging.getLogger(__name__)

# Samples pass through the suffix in chunks of at most this many rows; between chunks the deadline is checked.
DEFAULT_MAX_ROWS = 32


@dataclass(frozen=True)
class RunTiming:
    """When one image went through the batcher, in wall-clock nanoseconds (`time.time_ns`), for tracing."""

    queued_ns: int  # submitted
    started_ns: int  # taken off the queue into a batch
    finished_ns: int  # its Monte-Carlo samples done
    batch_size: int  # images that shared its prefix run
    samples: int  # Monte-Carlo samples T


@dataclass
class Samples:
    """Monte-Carlo output of N images: probabilities (N, T, C, h, w) and descriptors (N, D)."""

    probabilities: np.ndarray
    descriptors: np.ndarray
    timing: RunTiming | None = None  # set by the dynamic batcher


class LoadedModel:
    """One model version: the whole graph (reference path) and its prefix/suffix split (served path)."""

    def __init__(
        self, meta: ModelMetadata, model_bytes: bytes, *, intra_op_threads: int = 0, source: Path | None = None
    ) -> None:
        self.meta = meta
        self.intra_op_threads = intra_op_threads
        self.source = source  # the version folder it was loaded from (None: built from bytes alone)
        self.provider = select_providers().primary
        self.whole = make_session(model_bytes, intra_op_threads=intra_op_threads)
        check_graph_input(meta, self.whole)  # before the split, whose errors would not say what disagrees
        self.split: SplitModel = split_model(model_bytes, meta.input_height, meta.input_width, meta.input_channels)
        self.prefix = make_session(self.split.prefix, intra_op_threads=intra_op_threads)
        self.suffix = make_session(self.split.suffix, intra_op_threads=intra_op_threads)
        self.max_rows = DEFAULT_MAX_ROWS
        self.device = device_for(self.provider)  # "cuda": prefix and suffix run through IOBinding

    @property
    def key(self) -> tuple[str, int]:
        return self.meta.name, self.meta.version

    def check_batch(self, x: np.ndarray) -> None:
        m = self.meta
        want = (m.input_channels, m.input_height, m.input_width)
        if x.ndim != 4 or x.shape[1:] != want:
            raise InvalidInput(f"model input must be (N, {want[0]}, {want[1]}, {want[2]}), got {list(x.shape)}")

    def run_prefix(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Deterministic part, once per image: {tensor name: (N, ...)}."""
        self.check_batch(x)
        names = [o.name for o in self.prefix.get_outputs()]
        return dict(zip(names, self._run(self.prefix, names, {self.split.prefix_input: x}), strict=True))

    def run_suffix(
        self,
        features: dict[str, np.ndarray],
        samples: int,
        rng: np.random.Generator,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        abandoned: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Stochastic part: T samples of each of N images as the batch axis → (N, T, C, h, w).

        Between chunks of `max_rows` rows: DeadlineExceeded once `deadline` passed, CancelledError once
        `abandoned()` is true (the caller left: its remaining samples are not drawn)."""
        n = next(iter(features.values())).shape[0]
        rows = n * samples
        out: list[np.ndarray] = []
        for start in range(0, rows, self.max_rows):
            if deadline is not None and clock() > deadline:  # first: a call that timed out is also cancelled
                raise DeadlineExceeded(f"deadline passed after {start} of {rows} Monte-Carlo samples")
            if abandoned is not None and abandoned():
                raise CancelledError(f"the call was cancelled after {start} of {rows} Monte-Carlo samples")
            stop = min(rows, start + self.max_rows)
            image_of_row = np.arange(start, stop) // samples
            out.append(self._run_rows(features, image_of_row, draw_masks(self.split.sites, stop - start, rng)))
        probs = np.concatenate(out)
        return probs.reshape(n, samples, *probs.shape[1:])

    def run_suffix_rows(
        self, features: dict[str, np.ndarray], counts: Sequence[int], rngs: Sequence[np.random.Generator]
    ) -> list[np.ndarray]:
        """Image i's `counts[i]` samples (0: none) with masks from its own generator `rngs[i]`, all images' rows
        through the suffix together (chunks of `max_rows`) → [(counts[i], C, h, w), ...].

        Masks are drawn per image, sample by sample, so image i gets exactly the samples that
        `run_suffix(features[i], counts[i], rngs[i])` gives: requests merged into one engine run keep their seeds."""
        if not len(counts) == len(rngs) == next(iter(features.values())).shape[0] or sum(counts) < 1:
            raise ValueError("run_suffix_rows needs one count and one generator per image, and a sample to draw")
        owner = np.repeat(np.arange(len(counts)), counts)
        out: list[np.ndarray] = []
        for start in range(0, len(owner), self.max_rows):
            image_of_row = owner[start : start + self.max_rows]
            images, sizes = np.unique(image_of_row, return_counts=True)  # rows are image-major: one run per image
            parts = [draw_masks(self.split.sites, int(k), rngs[i]) for i, k in zip(images, sizes, strict=True)]
            masks = {s.mask_input: np.concatenate([p[s.mask_input] for p in parts]) for s in self.split.sites}
            out.append(self._run_rows(features, image_of_row, masks))
        return list(np.split(np.concatenate(out), np.cumsum(counts)[:-1]))  # a count of 0 gives an empty array

    def _run_rows(
        self, features: dict[str, np.ndarray], image_of_row: np.ndarray, masks: dict[str, np.ndarray]
    ) -> np.ndarray:
        feeds = {name: features[name][image_of_row] for name in self.split.prefix_outputs}
        feeds.update(masks)
        return self._run(self.suffix, [self.split.suffix_output], feeds)[0]

    def _run(self, session: ort.InferenceSession, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.device is None:
            result: list[np.ndarray] = session.run(names, feeds)
            return result
        return run_bound(session, names, feeds, device=self.device)

    def descriptors(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Encoder bottleneck features, global-average-pooled: (N, D) float32."""
        bottleneck = features[self.split.descriptor]
        pooled: np.ndarray = bottleneck.reshape(*bottleneck.shape[:2], -1).mean(axis=2).astype(np.float32)
        return pooled

    def sample(
        self, x: np.ndarray, samples: int, rng: np.random.Generator, *, deadline: float | None = None
    ) -> Samples:
        """The served path: prefix once, suffix on T copies."""
        features = self.run_prefix(x)
        return Samples(self.run_suffix(features, samples, rng, deadline=deadline), self.descriptors(features))

    def sample_whole(self, x: np.ndarray, samples: int) -> np.ndarray:
        """Reference path: the whole graph (onnxruntime's own Dropout) on T copies → (N, T, C, h, w)."""
        self.check_batch(x)
        tiled = np.repeat(x, samples, axis=0)
        out = [
            self.whole.run(None, {self.meta.input_name: tiled[i : i + self.max_rows]})[0]
            for i in range(0, len(tiled), self.max_rows)
        ]
        probs = np.concatenate(out)
        return probs.reshape(x.shape[0], samples, *probs.shape[1:])


TRIAL_SAMPLES = 2  # Monte-Carlo samples of the trial inference every version passes before it is served


def check_identity(meta: ModelMetadata, directory: Path) -> None:
    """The metadata's name and version must be the folder's (`models/<name>/<version>/`): a version served
    under another identity could not be called by its own name."""
    folder_name, folder_version = directory.parent.name, directory.name
    if meta.name != folder_name or str(meta.version) != folder_version:
        raise InvalidInput(
            f"metadata names model {meta.name!r} version {meta.version} but it lies in {folder_name}/{folder_version}: "
            "fix metadata.json's name/version or move the folder"
        )


def check_graph_input(meta: ModelMetadata, session: ort.InferenceSession) -> None:
    """The graph's input must be the metadata's: name, and (N, channels, height, width) where fixed."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise InvalidInput(f"the graph has {len(inputs)} inputs; a ceal model takes one image tensor")
    graph = inputs[0]
    if graph.name != meta.input_name:
        raise InvalidInput(f"metadata input_name is {meta.input_name!r} but the graph's input is {graph.name!r}")
    shape = list(graph.shape)
    want = [meta.input_channels, meta.input_height, meta.input_width]
    if len(shape) != 4:
        raise InvalidInput(f"the graph's input has shape {shape}; a ceal model takes (N, C, H, W)")
    for axis, got, expected in zip(("channels", "height", "width"), shape[1:], want, strict=True):
        if isinstance(got, int) and got != expected:
            raise InvalidInput(
                f"metadata says input {axis} {expected} but the graph takes {got} (graph input {shape}): "
                "fix metadata.json or re-export the model"
            )


def trial_inference(model: LoadedModel) -> None:
    """One prediction on a blank image through the served path: it must run and give finite probabilities
    of shape (1, T, num_classes, height, width). Raises InvalidInput saying what failed."""
    m = model.meta
    x = np.zeros((1, m.input_channels, m.input_height, m.input_width), np.float32)
    try:
        out = model.sample(x, TRIAL_SAMPLES, np.random.default_rng(0)).probabilities
    except Exception as exc:
        raise InvalidInput(f"the trial inference failed ({type(exc).__name__}: {exc})") from exc
    want = (1, TRIAL_SAMPLES, m.num_classes, m.input_height, m.input_width)
    if out.shape != want:
        raise InvalidInput(
            f"the trial inference gave probabilities of shape {list(out.shape)}, not {list(want)} "
            f"(metadata: num_classes {m.num_classes}, input {m.input_height}×{m.input_width})"
        )
    if not np.isfinite(out).all():
        raise InvalidInput("the trial inference gave non-finite probabilities (NaN or infinity)")


def load_model(directory: Path, *, intra_op_threads: int = 0) -> LoadedModel:
    """Load `directory` (model.onnx + metadata.json) and validate it: identity equal to the folder, input
    equal to the graph's, one trial inference. Raises InvalidInput / MetadataError saying why not."""
    meta = ModelMetadata.read(directory)
    check_identity(meta, directory)
    try:
        model_bytes = (directory / MODEL_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInput(f"{directory / MODEL_FILE} does not exist") from exc
    try:
        loaded = LoadedModel(meta, model_bytes, intra_op_threads=intra_op_threads, source=directory)
    except ort.capi.onnxruntime_pybind11_state.Fail as exc:  # type: ignore[attr-defined]
        raise InvalidInput(f"onnxruntime cannot load {directory / MODEL_FILE}: {exc}") from exc
    except Exception as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(
            f"{directory / MODEL_FILE} is not a usable ONNX model ({type(exc).__name__}: {exc})"
        ) from exc
    trial_inference(loaded)
    return loaded
