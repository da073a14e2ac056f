"""Configuration from environment variables only."""
from __future__ import annotations

import os
from dataclasses import dataclass

# Default gRPC ports, one per service, used by `make run` and the tests.
DEFAULT_PORTS = {
    "intake": 50051,
    "dispatch": 50052,
    "referral": 50053,
    "alerts": 50054,
    "scoring": 50055,
    "warehouse": 50056,
}

# Partner systems outside the suite, where they listen in development
# (`<PARTNER>_ADDR` overrides, as for the services).
PARTNER_PORTS = {
    "antifraud": 50060,
}

# Prometheus metrics port (METRICS_PORT); 0 turns the endpoint off.
DEFAULT_METRICS_PORT = 9464


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_list(name: str) -> list[str]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"configuration error: {name}={raw!r} is not an integer") from exc


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SystemExit(f"configuration error: {name}={raw!r} is not a yes/no value (use 1 or 0)")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"configuration error: {name}={raw!r} is not a number") from exc


def service_address(service: str) -> str:
    """Where another service or a partner system listens: `<SERVICE>_ADDR`, else localhost and its default port."""
    port = DEFAULT_PORTS.get(service) or PARTNER_PORTS[service]
    return env_str(f"{service.upper()}_ADDR", f"127.0.0.1:{port}")


@dataclass(frozen=True)
class Settings:
    """What a service process needs to start. Built by `Settings.from_env(service)`."""

    service: str
    grpc_port: int
    database_url: str
    listen_host: str = "0.0.0.0"
    metrics_port: int = DEFAULT_METRICS_PORT  # Prometheus /metrics; 0 disables
    db_pool_size: int = 10
    max_workers: int = 64
    # Unary calls in progress at once; a call waits up to admission_wait_seconds for a slot, else it
    # is answered UNAVAILABLE (OVERLOADED) and retried by its caller (services/runtime/admission.py).
    max_concurrent_calls: int = 20
    admission_wait_seconds: float = 2.0
    shutdown_grace_seconds: float = 10.0
    # After SIGTERM: NOT_SERVING but still serving this long, so health checks move traffic away.
    readiness_grace_seconds: float = 5.0
    # GRPC_REUSE_PORT: let a replacement process bind the port while this one drains (a rolling update
    # on one host, as `make chaos` does it). Off by default, so a port taken by mistake is reported.
    reuse_port: bool = False
    traces_exporter: str = "none"
    otlp_endpoint: str = "http://127.0.0.1:4317"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, service: str) -> "Settings":
        url = env_str("DATABASE_URL")
        if not url:
            raise SystemExit(
                f"configuration error: DATABASE_URL is not set for the {service} service "
                "(`make run` sets it; in a cluster it comes from a Secret)"
            )
        exporter = env_str("OTEL_TRACES_EXPORTER", "none").lower()
        if exporter not in {"otlp", "console", "none"}:
            raise SystemExit(
                f"configuration error: OTEL_TRACES_EXPORTER={exporter!r}; use otlp, console or none"
            )
        max_workers = env_int("GRPC_MAX_WORKERS", 64)
        max_calls = env_int("GRPC_MAX_CONCURRENT_CALLS", 20)
        if not 1 <= max_calls < max_workers:
            raise SystemExit(
                f"configuration error: GRPC_MAX_CONCURRENT_CALLS={max_calls} must be at least 1 and below "
                f"GRPC_MAX_WORKERS={max_workers} (streams and waiting calls need worker threads too)"
            )
        return cls(
            service=service,
            grpc_port=env_int("GRPC_PORT", DEFAULT_PORTS[service]),
            database_url=url,
            listen_host=env_str("GRPC_HOST", "0.0.0.0"),
            metrics_port=env_int("METRICS_PORT", DEFAULT_METRICS_PORT),
            db_pool_size=env_int("DB_POOL_SIZE", 10),
            max_workers=max_workers,
            max_concurrent_calls=max_calls,
            admission_wait_seconds=env_float("GRPC_ADMISSION_WAIT_SECONDS", 2.0),
            shutdown_grace_seconds=env_float("SHUTDOWN_GRACE_SECONDS", 10.0),
            readiness_grace_seconds=env_float("SHUTDOWN_READINESS_SECONDS", 5.0),
            reuse_port=env_bool("GRPC_REUSE_PORT"),
            traces_exporter=exporter,
            otlp_endpoint=env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            log_level=env_str("LOG_LEVEL", "INFO").upper(),
        )
