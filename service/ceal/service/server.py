"""Server assembly: `create_server(config) -> (server, port)`, testable in-process on port 0; `serve()`."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, EngineLimits
from ceal.service.registry import ModelRegistry
from ceal.service.servicers.active_learning import ActiveLearningServicer
from ceal.service.servicers.segmentation import SegmentationServicer
from ceal.v1 import active_learning_pb2, active_learning_pb2_grpc, segmentation_pb2, segmentation_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = (
    segmentation_pb2.DESCRIPTOR.services_by_name["Segmentation"].full_name,
    active_learning_pb2.DESCRIPTOR.services_by_name["ActiveLearning"].full_name,
)


@dataclass
class ServerConfig:
    models: Path
    address: str = "127.0.0.1:50051"
    state: str | None = None  # pool store: a folder (SQLite) or a postgresql:// URL; None = no pool
    default_model: str | None = None
    default_samples: int = 20
    max_samples: int = 100
    max_pixels: int = 4096 * 4096
    max_message_bytes: int = 64 * 1024 * 1024
    workers: int = 16
    max_batch_images: int = 8
    max_queue_delay: float = 0.005
    max_queue: int = 64
    watch_interval: float = 2.0
    reflection: bool = True
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class Running:
    """A started server and what it owns, for tests and `serve()`."""

    server: grpc.Server
    port: int
    registry: ModelRegistry
    engine: Engine
    health: health.HealthServicer
    active_learning: ActiveLearningServicer

    def stop(self, grace: float | None = 10.0) -> None:
        """Health NOT_SERVING, drain calls in flight for up to `grace` seconds, then release everything."""
        for name in ("", *SERVICES):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.stop(grace).wait()
        self.registry.stop()
        self.engine.batcher.close()
        self.active_learning.close()


def create_server(config: ServerConfig) -> Running:
    """Build and start the server; models load before health turns SERVING."""
    registry = ModelRegistry(config.models, default_model=config.default_model)
    batcher = DynamicBatcher(
        max_images=config.max_batch_images, max_delay=config.max_queue_delay, max_queue=config.max_queue
    )
    engine = Engine(batcher, EngineLimits(max_samples=config.max_samples, max_pixels=config.max_pixels))
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="ceal-rpc"),
                         options=options)
    segmentation = SegmentationServicer(
        registry, engine, default_samples=config.default_samples, max_pixels=config.max_pixels
    )
    active = ActiveLearningServicer.create(config.state, registry, engine, default_samples=config.default_samples,
                                           max_pixels=config.max_pixels)
    segmentation_pb2_grpc.add_SegmentationServicer_to_server(segmentation, server)
    active_learning_pb2_grpc.add_ActiveLearningServicer_to_server(active, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if config.reflection:
        reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(config.address)
    if port == 0:
        raise OSError(f"cannot listen on {config.address}")
    server.start()
    registry.scan()
    registry.start_watching(config.watch_interval)
    for name in ("", *SERVICES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = config.address.rsplit(":", 1)[0]
    log.info("ceal serving on %s:%d with %d model(s)", host, port, len(registry.models()))
    return Running(server, port, registry, engine, health_servicer, active)


def serve(config: ServerConfig, port_file: Path | None = None) -> int:
    """Run until SIGTERM or SIGINT, then drain and exit 0. The bound port goes to `port_file` if given."""
    running = create_server(config)
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(running.port))
        tmp.rename(port_file)
    print(f"ceal listening on port {running.port}", flush=True)
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining calls in flight", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    running.stop(grace=30.0)
    log.info("stopped")
    return 0
