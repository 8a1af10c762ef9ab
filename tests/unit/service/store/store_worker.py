"""Runs store calls in a separate process for test_sqlite.py (not a test module itself).

store_worker.py label DB IMAGE_ID
    submit a human label, print "ACK <label_id>", then wait to be killed.
store_worker.py lease DB GO NAME CALLS K
    print READY, wait for the file GO, then lease K images CALLS times (a new annotator each call)
    from pool "p" in registration order; print the leased ids as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ceal.service.store import SQLitePoolStore


def label(db: str, image_id: str) -> None:
    store = SQLitePoolStore(db)
    record = store.get_image("p", image_id)
    mask = np.ones((record.height, record.width), np.uint8)
    stored = store.submit_label("p", image_id, mask, annotator="worker", source="human", seconds_spent=2.0)
    print(f"ACK {stored.label_id}", flush=True)
    time.sleep(60)  # the test kills us with SIGKILL long before this ends


def take_leases(db: str, go: str, name: str, calls: int, k: int) -> None:
    store = SQLitePoolStore(db)
    ranked = [record.image_id for record in store.list_images("p")]
    print("READY", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
    taken: list[str] = []
    for call in range(calls):
        taken.extend(lease.image_id for lease in store.acquire_leases("p", ranked, f"{name}-{call}", k, 600))
    print(json.dumps(taken), flush=True)
    store.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "label":
        label(args[0], args[1])
    elif command == "lease":
        take_leases(args[0], args[1], args[2], int(args[3]), int(args[4]))
    else:
        raise SystemExit(f"unknown command {command!r}: use label or lease")
