"""Cross-cutting server concerns as gRPC interceptors and hooks: telemetry, authentication, audit, TLS.

Import the modules themselves (`middleware.telemetry`, `middleware.access`, ...): this package imports
nothing, so the core's hooks (`middleware.spans`) stay cheap to import.
"""
