"""One perf_bench variant in its own process, so its peak RSS is its own (tracemalloc cannot see onnxruntime).

    python benchmarks/_perf_worker.py VARIANT WORKDIR

Reads WORKDIR (written by perf_bench.py): ceal.pt (the trained torch weights), fp32.onnx, int8.onnx (of the
same weights), meta.json, images.npy (N, C, h, w) normalised inputs, rule.json ({"tolerance": nats,
"min_samples": m, "int8": bool}: the adaptive rule the fidelity half chose and the model (f) runs it on).
Threads: THREADS (torch and onnxruntime intra-op), from the environment variable CEAL_BENCH_THREADS.
Warms up on image 0 and prints {"ready": true}; then answers JSON lines on stdin:
{"images": [i, ...]} → {"seconds": [...], "samples": [...]} (wall seconds per scored image: Monte-Carlo
samples, statistics and image scores), and {"quit": true} → {"peak_rss_mib": ...}.
ORT variants never import torch, so their RSS is what a server would hold.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ceal.service.engine.adaptive import AdaptiveRule, sample_adaptive
from ceal.service.engine.loaded import LoadedModel
from ceal.service.image_reductions import image_scores
from ceal.service.metadata import ModelMetadata
from ceal.service.uncertainty import summarize

Scorer = Callable[[np.ndarray, int], int]  # (x (1, C, h, w), image index) -> samples drawn

TORCH_VARIANTS = ("torch_passes", "torch_replicated")
ORT_VARIANTS = ("ort_whole", "split", "split_int8", "split_int8_adaptive")
THREADS = int(os.environ.get("CEAL_BENCH_THREADS", "1"))


def _score(samples: np.ndarray) -> None:
    """What every variant does with its samples (T, C, h, w): the statistics and the image scores."""
    image_scores(summarize(samples))


def _torch_scorer(variant: str, work: Path, samples: int) -> Scorer:
    import torch

    from ceal.trainer.unet import UNet, UNetConfig, set_mc_dropout

    meta = json.loads((work / "meta.json").read_text())
    model = UNet(UNetConfig.from_json(meta["extra"]["unet"]))
    model.load_state_dict(torch.load(work / "ceal.pt", weights_only=True))
    torch.set_num_threads(THREADS)
    set_mc_dropout(model, True)  # BatchNorm frozen, dropout live: never model.train()
    torch.manual_seed(0)

    @torch.no_grad()
    def passes(x: np.ndarray, _: int) -> int:  # CEAL's reference: T forward passes of one image
        t = torch.from_numpy(x)
        _score(np.concatenate([model.probabilities(t).numpy() for _ in range(samples)]))
        return samples

    @torch.no_grad()
    def replicated(x: np.ndarray, _: int) -> int:  # baal's default: the image repeated T times, one batch
        _score(model.probabilities(torch.from_numpy(x).repeat(samples, 1, 1, 1)).numpy())
        return samples

    return passes if variant == "torch_passes" else replicated


def _ort_scorer(variant: str, work: Path, samples: int) -> Scorer:
    meta = ModelMetadata.from_dict(json.loads((work / "meta.json").read_text()))
    rule_spec = json.loads((work / "rule.json").read_text())
    int8 = variant == "split_int8" or (variant == "split_int8_adaptive" and bool(rule_spec["int8"]))
    model = LoadedModel(meta, (work / ("int8.onnx" if int8 else "fp32.onnx")).read_bytes(), intra_op_threads=THREADS)
    rule = AdaptiveRule(tolerance=float(rule_spec["tolerance"]), min_samples=int(rule_spec["min_samples"]))

    def whole(x: np.ndarray, _: int) -> int:
        _score(model.sample_whole(x, samples)[0])
        return samples

    def split(x: np.ndarray, i: int) -> int:
        _score(model.sample(x, samples, np.random.default_rng(i)).probabilities[0])
        return samples

    def adaptive(x: np.ndarray, i: int) -> int:
        drawn = sample_adaptive(model, model.run_prefix(x), samples, np.random.default_rng(i), rule).probabilities
        _score(drawn)
        return int(drawn.shape[0])

    return {"ort_whole": whole, "split": split, "split_int8": split, "split_int8_adaptive": adaptive}[variant]


def _peak_rss_mib() -> float:
    """This process image's peak RSS: VmHWM belongs to the address space made at exec, whereas getrusage's
    ru_maxrss also counts what the forked parent (perf_bench, with torch and the models loaded) held."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    variant, work = sys.argv[1], Path(sys.argv[2])
    samples = int(json.loads((work / "meta.json").read_text())["extra"]["bench_samples"])
    if variant in TORCH_VARIANTS:
        scorer = _torch_scorer(variant, work, samples)
    elif variant in ORT_VARIANTS:
        scorer = _ort_scorer(variant, work, samples)
    else:
        print(json.dumps({"error": f"unknown variant {variant!r}"}), flush=True)
        return 2
    images = np.load(work / "images.npy")
    scorer(images[:1], 0)  # warm-up: thread pools, allocator, first-run kernel selection
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        seconds, drawn = [], []
        for i in request["images"]:
            started = time.perf_counter()
            drawn.append(scorer(images[i : i + 1], i))
            seconds.append(time.perf_counter() - started)
        print(json.dumps({"seconds": seconds, "samples": drawn}), flush=True)
    peak = _peak_rss_mib()
    print(json.dumps({"peak_rss_mib": peak}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
