"""gRPC server bootstrap shared by every service.

`create_server()` builds a server with the error/auth interceptor, the
standard health service (per-service status) and reflection. `Server.run_until_signal()` serves
until SIGTERM or SIGINT, then reports NOT_SERVING, drains and stops.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent import futures
from contextlib import contextmanager
from typing import Callable, Iterable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import auth, identity, metrics, policy
from .admission import Admission, Overloaded
from .errors import DomainError, InvalidArgument, Unauthenticated, Unimplemented
from .status import describe_fault, internal_status, to_status, transient_reason, transient_status
from .request_guard import check_request, query_key
from .validation import query_scope

log = logging.getLogger("smart110.server")

# The request metadata a service takes. The gateway passes request headers of up to 60 KiB (Envoy's
# max_request_headers_kb, gateway/render.py) and a transcoded request carries its path twice (:path,
# x-envoy-original-path) and its token twice (authorization, x-jwt-payload); a smaller limit answers a
# long URL with a reset stream (HTTP 503) or RESOURCE_EXHAUSTED (429) instead of the service's own
# answer. The soft limit equals the hard one: gRPC otherwise refuses calls between them at random.
MAX_METADATA_BYTES = 192 * 1024


def _status_for(exc: Exception, method: str) -> grpc.Status:
    if isinstance(exc, Overloaded):
        # Counted in smart110_rpc_shed_total; one log line per shed call would add to the overload.
        return transient_status("OVERLOADED")
    if isinstance(exc, DomainError):
        return to_status(exc)
    if isinstance(exc, NotImplementedError):
        # The generated base class: an RPC of the contract not built yet.
        return to_status(Unimplemented(f"{method} is not implemented yet"))
    reason = transient_reason(exc)
    if reason is not None:
        # An outage, not a bug: a warning without the stack or the statement's parameters.
        log.warning(
            "transient fault in %s: %s (%s)",
            method,
            reason,
            describe_fault(exc),
            extra={"rpc": method, "reason": reason},
        )
        return transient_status(reason)
    log.exception("unexpected error in %s", method, extra={"rpc": method})
    return internal_status()


def _final_code(context, completed: bool) -> grpc.StatusCode:
    """The status the client gets: a code set or aborted with, else OK, or CANCELLED for a dropped stream."""
    code = context.code()
    if code is not None:
        return code
    if completed and context.is_active():
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if not context.is_active() else grpc.StatusCode.UNKNOWN


def _record(method: str, code: grpc.StatusCode, started: float, grpc_type: str) -> None:
    service = metrics.service()
    name = method.lstrip("/")
    metrics.RPC_REQUESTS.labels(service=service, method=name, grpc_type=grpc_type, code=code.name).inc()
    metrics.RPC_DURATION.labels(service=service, method=name, grpc_type=grpc_type).observe(
        time.perf_counter() - started)


# Methods anyone may call without a credential: health checks and reflection.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class Identities:
    """Who the caller of a method is: verified from its credential, or the fixed identity of a
    public service (one that authenticates inside the request, as Open311 does with its api_key)."""

    def __init__(self, verifier: identity.Verifier, public: dict[str, auth.AuthContext] | None = None,
                 policies: dict[str, policy.Policy] | None = None):
        self.verifier = verifier
        self.public = dict(public or {})
        # Full service name -> its access table; a service without one checks roles in its handlers.
        self.policies = dict(policies or {})

    def of(self, method: str, metadata) -> auth.AuthContext:
        service = method.lstrip("/").partition("/")[0]
        if service in self.public:
            return self.public[service]
        if method.startswith(OPEN_METHOD_PREFIXES):
            return identity.ANONYMOUS
        ctx = self.verifier.identify(metadata)
        if ctx is None:
            raise Unauthenticated("this call needs a credential: a person's token or a service credential",
                                  reason="CREDENTIAL_MISSING")
        return ctx

    def authorize(self, method: str, ctx: auth.AuthContext) -> policy.Jurisdiction | None:
        """The caller's jurisdiction under the service's access table (PERMISSION_DENIED if not allowed)."""
        table = self.policies.get(method.lstrip("/").partition("/")[0])
        return table.authorize(method, ctx) if table is not None else None


@contextmanager
def _rpc_scope(method: str, metadata, context, identities: Identities, grpc_type: str = "unary"):
    """One RPC: the caller's verified identity, the one error mapping, and its metrics."""
    started = time.perf_counter()
    done = threading.Event()
    token = auth.set_current(auth.NOBODY)
    scope = policy.set_jurisdiction(policy.NO_JURISDICTION)
    try:
        ctx = identities.of(method, metadata)
        auth.set_current(ctx)
        jurisdiction = identities.authorize(method, ctx)
        if jurisdiction is not None:
            policy.set_jurisdiction(jurisdiction)
        yield done
    except Exception as exc:  # noqa: BLE001 - the one place errors become statuses
        if _is_abort(exc):
            raise
        context.abort_with_status(_status_for(exc, method))
    finally:
        _record(method, _final_code(context, done.is_set()), started, grpc_type)
        auth.reset(token)
        policy.reset_jurisdiction(scope)


# Set by Envoy on the calls it routes: the route's timeout, the deadline of a call that carries no
# grpc-timeout of its own (a transcoded REST call).
ENVOY_TIMEOUT_HEADER = "x-envoy-expected-rq-timeout-ms"


def _time_remaining(context, metadata) -> float | None:
    """Seconds left of the call's deadline: its grpc-timeout, else the gateway's route timeout."""
    remaining = context.time_remaining()
    if remaining is not None:
        return remaining
    for key, value in metadata or ():
        if key == ENVOY_TIMEOUT_HEADER:
            try:
                return int(value) / 1000
            except ValueError:
                return None
    return None


@contextmanager
def _admitted(admission: Admission | None, method: str, context, metadata):
    if admission is None:
        yield
        return
    with admission.slot(method, _time_remaining(context, metadata)):
        yield


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps domain errors to status codes in one place, sets the verified caller, admits unary calls
    (services/runtime/admission.py) and records RPC metrics."""

    def __init__(self, identities: Identities | None = None, admission: Admission | None = None):
        self.identities = identities or Identities(identity.Verifier.from_env())
        self.admission = admission

    def intercept_service(self, continuation, handler_call_details):
        identities = self.identities
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        # Health checks and reflection are never shed: a busy service is not a dead one.
        admission = None if method.startswith(OPEN_METHOD_PREFIXES) else self.admission

        deserialize = _guarded_deserializer(handler.request_deserializer)

        def unary(behavior, streamed):
            kind = "client_stream" if streamed else "unary"

            def wrapper(request_or_iterator, context):
                with _rpc_scope(method, metadata, context, identities, kind) as done:
                    # Refused before the handler runs: nothing is written for a request the guard refuses.
                    request = _checked(request_or_iterator, streamed)
                    with _admitted(admission, method, context, metadata), _request_query(method, request, streamed):
                        response = behavior(request, context)
                    done.set()
                    return response

            return wrapper

        def streaming(behavior, streamed):
            kind = "bidi_stream" if streamed else "server_stream"

            def wrapper(request_or_iterator, context):
                with _rpc_scope(method, metadata, context, identities, kind) as done:
                    # A unary request is checked whole before the stream starts. No page token scope
                    # here: a generator may be resumed in another context.
                    request = _checked(request_or_iterator, streamed)
                    yield from behavior(request, context)
                    done.set()

            return wrapper

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                unary(handler.unary_unary, False), deserialize, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                unary(handler.stream_unary, True), deserialize, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream, False), deserialize, handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream, True), deserialize, handler.response_serializer
        )


class _Undecodable:
    """A request whose bytes did not parse (e.g. invalid UTF-8 in a string field)."""

    def __init__(self, error: Exception):
        self.error = error


def _guarded_deserializer(deserializer):
    """The handler's deserializer, returning `_Undecodable` instead of failing the call with INTERNAL."""
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except DecodeError as exc:
            return _Undecodable(exc)

    return deserialize


def _check(message) -> None:
    if isinstance(message, _Undecodable):
        raise InvalidArgument([("request", "is not a valid protobuf message (strings must be UTF-8)")])
    check_request(message)


def _checked(request_or_iterator, streamed: bool):
    """The request, checked whole before the handler runs; a request stream, each message as it arrives."""
    if not streamed:
        _check(request_or_iterator)
        return request_or_iterator

    def each():
        for message in request_or_iterator:
            _check(message)
            yield message

    return each()


def _request_query(method: str, request, streamed: bool):
    """Page tokens made and read by this RPC are bound to its query (a unary request's filters)."""
    return query_scope(method if streamed else query_key(method, request))


def _is_abort(exc: Exception) -> bool:
    # context.abort() raises a plain Exception subclass private to grpc; let it through.
    return type(exc).__module__.startswith("grpc")


class Server:
    """A running service: the grpc server, its health servicer and its port."""

    def __init__(self, server: grpc.Server, health_servicer: health.HealthServicer, port: int, service_names: list[str]):
        self.grpc = server
        self.health = health_servicer
        self.port = port
        self.service_names = service_names
        self._stopped = threading.Event()
        self._hurry = threading.Event()
        self._on_stop: list[Callable[[], None]] = []
        self._on_drain: list[Callable[[], None]] = []

    def on_drain(self, fn: Callable[[], None]) -> None:
        """Runs after NOT_SERVING, before the server stops: ends long-lived streams."""
        self._on_drain.append(fn)

    def on_stop(self, fn: Callable[[], None]) -> None:
        self._on_stop.append(fn)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [""] + self.service_names:
            self.health.set(name, status)

    def start(self) -> None:
        self.grpc.start()
        self.set_serving(True)

    def stop(self, grace: float, readiness: float = 0.0) -> None:
        """Stops gracefully: NOT_SERVING, still serving for `readiness` seconds so load balancers
        move away, then ends long-lived streams, finishes in-flight calls within `grace`, and
        runs the clean-up."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.set_serving(False)
        if readiness > 0:
            log.info("shutting down: NOT_SERVING, still accepting calls for %.0fs while traffic moves away",
                     readiness)
            self._hurry.wait(readiness)
        log.info("draining: in-flight calls have up to %.0fs", grace)
        for fn in self._on_drain + [lambda: self.grpc.stop(grace).wait(grace + 1)] + list(reversed(self._on_stop)):
            try:
                fn()
            except Exception:  # noqa: BLE001 - shutdown goes on
                log.exception("error while shutting down")
        log.info("stopped")

    def run_until_signal(self, grace: float, readiness: float = 0.0) -> None:
        """Serve until SIGTERM/SIGINT, then shut down gracefully (a second signal skips the readiness wait)."""
        done = threading.Event()

        def handle(signum, _frame):
            log.info("received %s", signal.Signals(signum).name)
            if done.is_set():
                self._hurry.set()
            done.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        while not done.wait(1.0):
            pass
        self.stop(grace, readiness)


def create_server(
    *,
    port: int,
    host: str = "0.0.0.0",
    services: Iterable[tuple[Callable, object, str]],
    max_workers: int = 64,
    public: dict[str, auth.AuthContext] | None = None,
    verifier: identity.Verifier | None = None,
    policies: dict[str, policy.Policy] | None = None,
    admission: Admission | None = None,
    max_message_bytes: int | None = None,
    reuse_port: bool = False,
) -> Server:
    """Builds a server.

    `services` holds (add_XServicer_to_server, servicer, full service name)
    triples. `public` maps the full names of services anyone may call to the
    identity their calls run with. `admission` bounds the unary calls in
    progress (None: unbounded). `max_message_bytes` raises the largest request
    message taken (None: gRPC's 4 MiB). `reuse_port` lets another process bind
    the same port (SO_REUSEPORT), as a replacement does while this one drains.
    Returns a `Server` whose `.port` is the bound port (0 picks one).
    """
    identities = Identities(verifier or identity.Verifier.from_env(), public, policies)
    if admission is not None:
        metrics.RPC_IN_PROGRESS.labels(service=metrics.service()).set_function(lambda: admission.in_progress)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[ErrorInterceptor(identities, admission)],
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
            *([("grpc.max_receive_message_length", max_message_bytes)] if max_message_bytes else []),
        ],
    )
    names = []
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # gRPC's way of saying the bind failed
        bound = 0
    if bound == 0:
        raise SystemExit(f"cannot listen on {host}:{port}: the port is taken or not allowed")
    srv = Server(server, health_servicer, bound, names)
    for name in [""] + names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return srv
