"""Content-based retrieval: encoder descriptors, binary hash codes for a Hamming pre-filter, exact re-ranking.

Pure numpy. Codes are signs of random projections (SimHash) of the mean-centred descriptors: the Hamming
distance of two codes estimates the angle between the descriptors, so a cheap pass over packed bits keeps
the `candidates` nearest, and exact cosine similarity orders those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceal.service.errors import InvalidInput

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class Match:
    index: int
    similarity: float  # cosine, in [-1, 1]
    hamming: int


def projection(dim: int, bits: int = 64, seed: int = 0) -> np.ndarray:
    """Random hyperplanes (D, bits), fixed by the seed so codes are stable across calls."""
    return np.random.default_rng(seed).standard_normal((dim, bits)).astype(np.float32)


def hash_codes(descriptors: np.ndarray, center: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """(N, D) descriptors → packed codes uint8 (N, bits / 8)."""
    return np.packbits((descriptors - center) @ planes > 0, axis=1)


def hamming(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance of each packed code (N, B) to one packed code (B,) → (N,) int."""
    distances: np.ndarray = _POPCOUNT[np.bitwise_xor(codes, query)].sum(axis=1, dtype=np.int64)
    return distances


def _unit(x: np.ndarray) -> np.ndarray:
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return unit


def find_similar(
    descriptors: np.ndarray,
    query: np.ndarray,
    k: int,
    *,
    bits: int = 64,
    candidates: int | None = None,
    exclude: int | None = None,
) -> list[Match]:
    """The k pool rows most similar to `query` (D,): Hamming pre-filter to `candidates`, then exact cosine."""
    if descriptors.ndim != 2 or query.shape != descriptors.shape[1:]:
        raise InvalidInput(f"query descriptor of shape {query.shape} does not match the pool's {descriptors.shape[1:]}")
    n = len(descriptors)
    if n == 0 or k <= 0:
        return []
    center = descriptors.mean(axis=0)
    planes = projection(descriptors.shape[1], bits)
    codes = hash_codes(descriptors, center, planes)
    dist = hamming(codes, hash_codes(query[None], center, planes)[0])
    keep = min(n, candidates if candidates is not None else max(10 * k, 256))
    pre = np.argpartition(dist, keep - 1)[:keep] if keep < n else np.arange(n)
    sims = _unit(descriptors[pre]) @ _unit(query)
    order = np.lexsort((pre, -sims))
    matches = [Match(int(pre[i]), float(sims[i]), int(dist[pre[i]])) for i in order if int(pre[i]) != exclude]
    return matches[:k]
