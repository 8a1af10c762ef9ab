"""The two clients offer the same surface (the public names themselves are pinned in tests/unit/public_api.json)."""

from __future__ import annotations

import inspect

import ceal.client
from ceal.client import calls
from ceal.client.methods import ClientBase


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")}

    assert public(ceal.client.Client) == public(ceal.client.AsyncClient)


def test_each_method_of_both_clients_takes_its_builders_arguments() -> None:
    """The keyword signatures are written once, in `ceal.client.calls`: both clients' methods show them."""
    names = {n for n in dir(ceal.client.Client) if not n.startswith("_")} - {"close"}
    assert names == {n for n in vars(ClientBase) if not n.startswith("_")} - {"close"}
    sync, aio = ceal.client.Client("127.0.0.1:1"), object.__new__(ceal.client.AsyncClient)  # no channel needed
    try:
        for name in names:
            built = inspect.signature(getattr(calls, name))
            for method in (getattr(sync, name), getattr(aio, name)):
                assert [*inspect.signature(method).parameters] == [*built.parameters], name
                assert method.__name__ == name and method.__doc__ == getattr(calls, name).__doc__, name
            unbound = inspect.signature(getattr(ceal.client.Client, name))
            assert [*unbound.parameters] == ["self", *built.parameters], name
        assert inspect.iscoroutinefunction(aio.query_list) and inspect.iscoroutinefunction(aio.score_pool)
        assert not inspect.iscoroutinefunction(sync.query_list) and not inspect.iscoroutinefunction(aio.export_labels)
    finally:
        sync.close()
