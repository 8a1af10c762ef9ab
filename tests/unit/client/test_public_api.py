"""The two clients offer the same surface (the public names themselves are pinned in tests/unit/public_api.json)."""

from __future__ import annotations

import inspect

import ceal.client
from ceal.client import calls


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")}

    assert public(ceal.client.Client) == public(ceal.client.AsyncClient)


def test_each_method_of_both_clients_takes_its_builders_arguments() -> None:
    """The keyword signatures are written once, in `ceal.client.calls`: both clients' methods show them."""
    for name in {n for n in vars(ceal.client.Client) if not n.startswith("_")} - {"close"}:
        sync, aio = getattr(ceal.client.Client, name), getattr(ceal.client.AsyncClient, name)
        built = inspect.signature(getattr(calls, name))
        assert [*inspect.signature(sync).parameters][1:] == [*built.parameters], name
        assert inspect.signature(sync) == inspect.signature(aio), name
        assert sync.__doc__ == aio.__doc__ == getattr(calls, name).__doc__, name
    assert inspect.iscoroutinefunction(ceal.client.AsyncClient.query_list)
    assert not inspect.iscoroutinefunction(ceal.client.Client.query_list)
