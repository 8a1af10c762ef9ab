"""Server assembly: `create_server(config) -> Running`, testable in-process on port 0; `serve()`.

Lifecycle: health says NOT_SERVING from the moment the port listens until the models are loaded, and again
as soon as shutdown starts; SIGTERM (or SIGINT) drains the calls in flight and exits 0. Interceptors, outermost
first: telemetry (when configured), decoding (always: bytes that are not a request message get INVALID_ARGUMENT),
access (tokens, roles, audit log; when configured). Access decides on the call's metadata alone, and the
handler it puts in place of a rejected call takes raw bytes, which decoding leaves alone: a rejected call's
request is never parsed, while the audit log sees the parsed request of every call let through.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ceal.oip import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from ceal.service.engine.batcher import DynamicBatcher
from ceal.service.engine.core import Engine, EngineLimits
from ceal.service.engine.loaded import load_model
from ceal.service.middleware.access import AccessInterceptor
from ceal.service.middleware.auth import TokenTable
from ceal.service.middleware.decoding import DecodeInterceptor
from ceal.service.middleware.telemetry import Telemetry, TelemetryConfig
from ceal.service.middleware.tls import TLSConfig
from ceal.service.pool.resolution import check_scale
from ceal.service.pool.scoring import DEFAULT_RESCORE_TOLERANCE
from ceal.service.registry import ModelRegistry
from ceal.service.runtime import CGROUP_ROOT, choose_threads
from ceal.service.servicers.active_learning import ActiveLearningServicer
from ceal.service.servicers.inference import InferenceServicer
from ceal.service.servicers.segmentation import SegmentationServicer
from ceal.v1 import active_learning_pb2, active_learning_pb2_grpc, segmentation_pb2, segmentation_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = (
    segmentation_pb2.DESCRIPTOR.services_by_name["Segmentation"].full_name,
    active_learning_pb2.DESCRIPTOR.services_by_name["ActiveLearning"].full_name,
    grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,  # the Open Inference Protocol
)


@dataclass
class ServerConfig:
    models: Path
    address: str = "127.0.0.1:50051"
    state: str | None = None  # pool store: a folder (SQLite) or a postgresql:// URL; None = no pool
    default_model: str | None = None
    default_samples: int = 20
    # background rescoring after a new version: adaptive T with this tolerance (nats of mean mutual
    # information; 0 = fixed T = default_samples) and this floor (0 = the server's, 8)
    rescore_tolerance: float = DEFAULT_RESCORE_TOLERANCE
    rescore_min_samples: int = 0
    # pool scoring at this × the model's input size (sides rounded to multiples of 2^depth) for each model version
    # whose calibration ranks like full size (Spearman ρ >= 0.95, `pool/resolution.py`); 1 = full size
    rescore_scale: float = 1.0
    max_samples: int = 100
    max_pixels: int = 4096 * 4096
    max_message_bytes: int = 64 * 1024 * 1024
    lease_seconds: float = 30 * 60.0  # how long a query list's leases last when GetQueryList does not say
    workers: int = 16
    max_batch_images: int = 8
    max_queue_delay: float = 0.005
    max_queue: int = 64
    watch_interval: float = 2.0
    promotions: Path | None = None  # folder of <name>/promotion.json; None: inside the models folder
    reflection: bool = False  # server reflection lists the API to anyone; on only when asked for
    # calls beyond this get RESOURCE_EXHAUSTED at once; None = derived from the machine
    # (`default_max_concurrent_rpcs`); 0 = no cap (calls beyond `workers` wait unseen in gRPC's queue)
    max_concurrent_rpcs: int | None = None
    tls: TLSConfig | None = None  # None = plaintext (behind a mesh or on loopback only)
    tokens: Path | None = None  # tokens file (JSON/YAML): bearer tokens with roles; None = no authentication
    audit: bool = False  # write the `ceal.audit` log (always on when tokens are set)
    otel: str = "none"  # telemetry exporter: none | console | otlp | prometheus
    otel_endpoint: str = ""  # otlp: collector host:port; prometheus: listen host:port
    telemetry: Telemetry | None = None  # a prebuilt Telemetry (tests: in-memory exporters); overrides otel
    shutdown_delay: float = 0.0  # seconds NOT_SERVING is announced before new calls are refused
    threads: int | None = None  # onnxruntime intra-op threads per session; None = from the cgroup CPU limit
    cgroup_root: Path = CGROUP_ROOT  # where the CPU limit is read (tests point it at a fake cgroup)
    keepalive_time: float = 60.0  # seconds between server pings on an idle connection
    keepalive_timeout: float = 20.0  # seconds to wait for a ping's ack before dropping the connection
    max_connection_age: float = 300.0  # seconds before a connection gets GOAWAY (spreads load to new replicas); 0 = off
    max_connection_age_grace: float = 300.0  # seconds calls in flight then get before the connection closes


@dataclass
class Running:
    """A started server and what it owns, for tests and `serve()`."""

    server: grpc.Server
    port: int
    registry: ModelRegistry
    engine: Engine
    health: health.HealthServicer
    active_learning: ActiveLearningServicer
    inference: InferenceServicer
    telemetry: Telemetry | None = None
    shutdown_delay: float = 0.0
    _stopping: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self, grace: float | None = 10.0) -> None:
        """Health NOT_SERVING, drain calls in flight for up to `grace` seconds, then release everything.

        Only the first call stops; later ones (a second SIGTERM, a test's cleanup) return at once."""
        with self._stopping:
            if self._stopped:
                return
            self._stopped = True
        _set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.inference.ready.clear()
        if self.shutdown_delay > 0:  # let load balancers see NOT_SERVING before new calls are refused
            threading.Event().wait(self.shutdown_delay)
        if not self.server.stop(grace).wait(timeout=None if grace is None else grace + 10.0):
            log.warning("gRPC did not finish stopping %.0f s after the grace period; exiting anyway", 10.0)
        self.registry.stop()
        self.active_learning.close()  # waits for background rescoring, which may still need the batcher
        self.engine.batcher.close()
        if self.telemetry is not None:
            self.telemetry.shutdown()


PER_CALL_MEMORY_FACTOR = 4  # a call in flight may hold its request, the decoded image, model input, response
MEMORY_SHARE = 0.5  # of the machine's memory, at most, for the calls in flight
MIN_CONCURRENT_RPCS = 4


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (or its cgroup's limit, when lower), in bytes; None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_max_concurrent_rpcs(workers: int, max_message_bytes: int, memory_bytes: int | None) -> int:
    """The default cap on calls in progress: never more than the RPC worker threads (a call beyond them
    would wait in gRPC's own queue, where admission control cannot see it, until its deadline passes), and
    few enough that the calls in flight, each holding up to PER_CALL_MEMORY_FACTOR × the message limit,
    fit in MEMORY_SHARE of the machine's memory. At least MIN_CONCURRENT_RPCS."""
    cap = max(workers, 1)
    if memory_bytes is not None:
        cap = min(cap, int(memory_bytes * MEMORY_SHARE) // (PER_CALL_MEMORY_FACTOR * max_message_bytes))
    return max(cap, MIN_CONCURRENT_RPCS)


def concurrent_rpc_cap(config: ServerConfig) -> int | None:
    """The cap the server runs with: the configured one (0 = none), or the machine-derived default."""
    if config.max_concurrent_rpcs is not None:
        return config.max_concurrent_rpcs or None
    return default_max_concurrent_rpcs(config.workers, config.max_message_bytes, machine_memory_bytes())


def _set_health(servicer: health.HealthServicer, status: int) -> None:
    for name in ("", *SERVICES):
        servicer.set(name, status)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def plaintext_token_warning(address: str, tls: bool, tokens: bool) -> str | None:
    """The warning for bearer tokens sent in plain text beyond this machine, or None when there is none to
    give (no tokens, TLS on, or a loopback address)."""
    host = address.rsplit(":", 1)[0]
    if not tokens or tls or _is_loopback(host):
        return None
    return (
        f"bearer tokens are on without TLS on {host}: tokens and images cross the network in plain text, where "
        "anyone on the path can read and replay them; add --tls-cert/--tls-key (or terminate TLS in a mesh "
        "in front and bind 127.0.0.1)"
    )


def _interceptors(config: ServerConfig, telemetry: Telemetry | None) -> list[grpc.ServerInterceptor]:
    out: list[grpc.ServerInterceptor] = []
    if telemetry is not None:
        out.append(telemetry.interceptor())
    out.append(DecodeInterceptor())
    tokens = TokenTable.load(config.tokens) if config.tokens is not None else None
    warning = plaintext_token_warning(config.address, config.tls is not None, tokens is not None)
    if warning is not None:
        log.warning("%s", warning)  # once, as the server starts
    if tokens is not None or config.audit:
        out.append(AccessInterceptor(tokens, audit=True))
        log.info("access: %s, audit log on", f"{len(tokens)} bearer token(s)" if tokens else "no authentication")
    return out


def transport_options(config: ServerConfig) -> list[tuple[str, int]]:
    """gRPC channel arguments for keepalive and connection age.

    The server pings idle clients every `keepalive_time` s and drops a connection whose ack takes longer than
    `keepalive_timeout` s (a client gone without a FIN: NAT, a dead node). Clients' own keepalive pings are
    allowed every 10 s, also without calls in flight, so a client configured like ours is never sent
    GOAWAY "too_many_pings". After `max_connection_age` s (gRPC adds ±10 % jitter) a connection gets GOAWAY
    and the client reconnects, through the Service, possibly to a replica the autoscaler just added; calls in
    flight get `max_connection_age_grace` s more.
    """
    ms = 1000
    options = [
        ("grpc.keepalive_time_ms", int(config.keepalive_time * ms)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * ms)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10 * ms),
        ("grpc.http2.max_ping_strikes", 2),
    ]
    if config.max_connection_age > 0:
        options += [
            ("grpc.max_connection_age_ms", int(config.max_connection_age * ms)),
            ("grpc.max_connection_age_grace_ms", int(config.max_connection_age_grace * ms)),
        ]
    return options


def create_server(config: ServerConfig) -> Running:
    """Build and start the server; health turns SERVING only once the models are loaded."""
    telemetry = config.telemetry or Telemetry.from_config(TelemetryConfig(config.otel, config.otel_endpoint))
    interceptors = _interceptors(config, telemetry)  # a bad tokens file fails here, before anything starts
    check_scale(config.rescore_scale)  # so does a bad --rescore-scale (InvalidInput saying what to change)
    threads = choose_threads(config.threads, cgroup_root=config.cgroup_root)
    log.info("onnxruntime intra-op threads per session: %d (%s)", threads.threads, threads.reason)
    loader = functools.partial(load_model, intra_op_threads=threads.threads)
    registry = ModelRegistry(
        config.models, loader=loader, default_model=config.default_model, promotions=config.promotions
    )
    batcher = DynamicBatcher(
        max_images=config.max_batch_images, max_delay=config.max_queue_delay, max_queue=config.max_queue
    )
    engine = Engine(batcher, EngineLimits(max_samples=config.max_samples))
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        *transport_options(config),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="ceal-rpc"),
        options=options,
        interceptors=interceptors,
        maximum_concurrent_rpcs=concurrent_rpc_cap(config),
    )
    segmentation = SegmentationServicer(
        registry,
        engine,
        default_samples=config.default_samples,
        max_pixels=config.max_pixels,
        max_message_bytes=config.max_message_bytes,
    )
    active = ActiveLearningServicer.create(
        config.state,
        registry,
        engine,
        default_samples=config.default_samples,
        max_pixels=config.max_pixels,
        max_message_bytes=config.max_message_bytes,
        lease_seconds=config.lease_seconds,
        rescore_tolerance=config.rescore_tolerance,
        rescore_min_samples=config.rescore_min_samples,
        rescore_scale=config.rescore_scale,
    )
    inference = InferenceServicer(
        registry, engine, default_samples=config.default_samples, max_pixels=config.max_pixels
    )
    segmentation_pb2_grpc.add_SegmentationServicer_to_server(segmentation, server)
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(inference, server)
    active_learning_pb2_grpc.add_ActiveLearningServicer_to_server(active, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    if config.reflection:
        reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if config.tls is not None:
        port = server.add_secure_port(config.address, config.tls.credentials())
    else:
        port = server.add_insecure_port(config.address)
    if port == 0:
        raise OSError(f"cannot listen on {config.address}")
    if telemetry is not None:
        store = active.store
        telemetry.observe(
            lambda: batcher.depth, lambda: {p: store.counts(p, "", 0).images for p in store.pools()} if store else {}
        )
    # Listening before loading, on purpose: probes get NOT_SERVING (not "connection refused") while models load.
    server.start()
    registry.scan()
    registry.start_watching(config.watch_interval)
    _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    inference.ready.set()
    names = sorted({m.meta.name for m in registry.models()})
    if len(names) > 1 and not config.default_model:
        log.warning(
            "serving %d models (%s) with no --default-model: requests must name their model",
            len(names),
            ", ".join(names),
        )
    host = config.address.rsplit(":", 1)[0]
    log.info(
        "ceal serving on %s:%d (%s) with %d model(s); at most %s calls in progress, %d queued for inference",
        host,
        port,
        "TLS" if config.tls else "plaintext",
        len(registry.models()),
        concurrent_rpc_cap(config) or "unlimited",
        config.max_queue,
    )
    return Running(server, port, registry, engine, health_servicer, active, inference, telemetry, config.shutdown_delay)


def serve(config: ServerConfig, port_file: Path | None = None) -> int:
    """Run until SIGTERM or SIGINT, then drain and exit 0. The bound port goes to `port_file` if given."""
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining calls in flight", signum)
        done.set()

    # Installed before the models load, so a SIGTERM during loading also ends in an orderly stop;
    # the previous handlers come back afterwards (serve() may be called from a longer-lived process).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        running = create_server(config)
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(str(running.port))
            tmp.rename(port_file)
        print(f"ceal listening on port {running.port}", flush=True)
        done.wait()
        running.stop(grace=30.0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
