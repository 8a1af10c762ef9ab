from __future__ import annotations

from ceal.service import store


def test_every_store_error_is_a_store_error() -> None:
    for error in (store.NotFound, store.Conflict, store.InvalidInput, store.UnsupportedBackend):
        assert issubclass(error, store.StoreError)
    assert issubclass(store.InvalidInput, ValueError)
    assert issubclass(store.NotFound, LookupError)


def test_the_store_imports_neither_grpc_nor_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ceal.service.store; "
        "bad = [m for m in ('grpc', 'torch', 'onnxruntime') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
