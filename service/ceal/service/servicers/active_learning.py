"""ceal.v1.ActiveLearning servicer (pool, scoring, query lists, labels)."""

from __future__ import annotations

from typing import Any

import grpc

from ceal.service.engine.core import Engine
from ceal.service.registry import ModelRegistry
from ceal.v1 import active_learning_pb2_grpc as pb_grpc


class ActiveLearningServicer(pb_grpc.ActiveLearningServicer):
    """Until the pool lands, every RPC answers UNIMPLEMENTED (never a fake answer)."""

    def __init__(self, registry: ModelRegistry, engine: Engine) -> None:
        self.registry = registry
        self.engine = engine

    @classmethod
    def create(cls, state: str | None, registry: ModelRegistry, engine: Engine, **_: Any) -> ActiveLearningServicer:
        return cls(registry, engine)

    def close(self) -> None:
        pass

    def _unimplemented(self, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the active-learning pool is not implemented in this version")

    def RegisterImages(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context)

    def GetQueryList(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context)

    def SubmitLabel(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context)

    def FindSimilar(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context)

    def GetPoolStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context)
