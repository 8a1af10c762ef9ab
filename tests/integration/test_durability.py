"""A label acknowledged is a label kept: SIGKILL the server during concurrent SubmitLabel calls."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ceal.client import CealError, Client
from tests.support.models import synth_dataset
from tests.support.server import ServerProcess


def test_every_acknowledged_label_survives_sigkill(models_dir: Path, tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "server.log"
    images = synth_dataset(40, seed=5).images
    server = ServerProcess(models_dir, state, log)
    with Client(server.address, timeout=30) as client:
        ids = [i for i, _ in client.register_images(list(images), pool="d")]
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def annotate(worker: int) -> None:
        with Client(server.address, timeout=10) as client:
            n = 0
            while not stop.is_set():
                image_id = ids[(worker * 7 + n) % len(ids)]
                mask = np.zeros(images.shape[1:3], np.uint8)
                mask[: 1 + n % 40, :] = 1
                try:
                    label_id, _ = client.submit_label(image_id, mask, annotator=f"w{worker}", pool="d")
                except CealError:
                    return  # the server died under us: this label was never acknowledged
                with lock:
                    acked.append((image_id, label_id))
                n += 1

    workers = [threading.Thread(target=annotate, args=(w,)) for w in range(4)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while the workers are still submitting
    stop.set()
    for t in workers:
        t.join(timeout=30)
    assert len(acked) >= 40, "too few labels were acknowledged before the kill to test anything"

    restarted = ServerProcess(models_dir, state, log)
    try:
        from ceal.service.store import SQLitePoolStore

        store = SQLitePoolStore(state / "pool.sqlite3")
        kept = {lab.label_id for image_id in ids for lab in store.label_history("d", image_id)}
        store.close()
        missing = [label_id for _, label_id in acked if label_id not in kept]
        assert not missing, f"{len(missing)} acknowledged labels were lost"
        with Client(restarted.address) as client:  # and the restarted server serves them
            exported = {r.image_id for r in client.export_labels(pool="d", include_images=False)}
        assert {image_id for image_id, _ in acked} <= exported
    finally:
        code = restarted.terminate()
        assert code == 0, (code, log.read_text()[-3000:])
