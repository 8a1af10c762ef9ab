"""Scores a pool with fake numbers in a separate process, for test_store_claims.py (not a test module itself).

claim_worker.py STATE GO NAME LIMIT
    open the store at STATE (a folder or a postgresql:// URL), print READY, wait for the file GO, then as
    worker NAME claim LIMIT ids at a time from pool "p" for model "unet" version 1 and store a score for each,
    until nothing is left to claim; print every claimed id as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ceal.service.store import PoolStore, ScoreRow, open_store


def fake_score(image_id: str) -> ScoreRow:
    return ScoreRow(image_id, "unet", 1, 0.5, 0.1, 0.01, 0.9, 10.0, 1, 0.2)


def score_claims(store: PoolStore, name: str, limit: int) -> list[str]:
    """Claim, score, store, until nothing is left; returns every id claimed, in claim order."""
    claimed: list[str] = []
    while batch := store.claim_scoring("p", "unet", 1, limit, 600, name):
        claimed.extend(batch)
        store.put_scores("p", [fake_score(image_id) for image_id in batch])
    return claimed


if __name__ == "__main__":
    state, go, name, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open_store(state) as opened:
        print("READY", flush=True)
        while not Path(go).exists():
            time.sleep(0.001)
        print(json.dumps(score_claims(opened, name, limit)), flush=True)
