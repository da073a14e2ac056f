"""The one skeleton of every service (README, "Layout"), checked on the source.

- no import inside a function body, anywhere under services/;
- no import circle between the modules of services/;
- SQL (SQLAlchemy) only in a service's store.py / queries.py (or such packages) and migrations;
- every module outside the skeleton's kinds is pure domain code: no database, gRPC or protobuf;
- __main__.py is wiring only: event handlers come from the handlers module's EVENT_HANDLERS.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
SERVICE_NAMES = ["intake", "dispatch", "referral12345", "alerts", "scoring", "warehouse"]

# The skeleton's file kinds (a kind may also be a package of the same name).
SKELETON = {"__init__", "__main__", "domain", "store", "queries", "handlers", "mapping", "api", "open311",
            "clients", "workers", "seed", "policy"}
SQL_KINDS = {"store", "queries"}
# What pure domain code must not import.
IMPURE = ("sqlalchemy", "grpc", "grpc_status", "google.protobuf", "google.rpc", "smart110", "psycopg")
PURE_RUNTIME = {"services.runtime.model", "services.runtime.ids", "services.runtime.errors", "services.runtime.language",
                "services.runtime.timeutil", "services.runtime.auth", "services.runtime.config",
                "services.runtime.validation", "services.runtime.labels", "services.runtime.workdays"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> list[Path]:
    return sorted(p for p in SERVICES.rglob("*.py") if "migrations" not in p.parts and "__pycache__" not in p.parts)


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[str, int]]:
    """Absolute names of modules imported by `path` (for `from . import x`, the submodule when it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, node.lineno))
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if (ROOT / Path(*sub.split("."))).with_suffix(".py").exists() or (ROOT / Path(*sub.split("."))).is_dir():
                    found.append((sub, node.lineno))
    return found


def _shaped(path: Path) -> str | None:
    """The service a source file belongs to."""
    rel = path.relative_to(SERVICES).parts
    return rel[0] if rel[0] in SERVICE_NAMES and len(rel) > 1 else None


def _kind(path: Path) -> str:
    rel = path.relative_to(SERVICES).parts
    first = rel[1]
    kind = first[:-3] if first.endswith(".py") else first
    # `api_<face>.py`: a second public face's servicers (README, "One skeleton per service").
    return "api" if kind.startswith("api_") else kind


def test_no_import_inside_a_function_body():
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "imports inside function bodies (move them to the top; an import circle means a " \
                      "module is in the wrong place):\n" + "\n".join(sorted(set(found)))


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for imported, _ in _imports(path, top_level_only=False):
            if imported in modules and imported != name:
                graph[name].add(imported)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    # A package's __init__ importing its own submodules is not a circle of meaning; drop those edges.
    graph = {m: {d for d in deps if not m or not d.startswith(m + ".") or not _is_package(m)}
             for m, deps in _graph().items()}
    cycles = _cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def _is_package(module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").exists()


def test_the_circle_finder_finds_circles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_sql_only_in_store_and_queries(service):
    found = []
    for path in _sources():
        if _shaped(path) != service or _kind(path) in SQL_KINDS:
            continue
        for imported, line in _imports(path, top_level_only=False):
            if imported == "sqlalchemy" or imported.startswith("sqlalchemy."):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert not found, "SQLAlchemy outside store/queries:\n" + "\n".join(found)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_modules_outside_the_skeleton_are_pure(service):
    found = []
    for path in _sources():
        if _shaped(path) != service:
            continue
        kind = _kind(path)
        if kind in SKELETON and kind != "domain":
            continue
        for imported, line in _imports(path, top_level_only=False):
            bad = any(imported == p or imported.startswith(p + ".") for p in IMPURE)
            runtime = imported.startswith("services.runtime") and imported != "services.runtime" \
                and imported not in PURE_RUNTIME
            own = imported.startswith(f"services.{service}.") and \
                imported.split(".")[2] in SKELETON - {"domain"}
            if bad or runtime or own:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not found, ("domain.py and modules outside the skeleton (store, queries, handlers, mapping, api, "
                       "clients, workers, seed, __main__) must be pure:\n" + "\n".join(found))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_main_is_wiring_only(service):
    main = SERVICES / service / "__main__.py"
    tree = ast.parse(main.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "Subscription" not in names and "consume" not in names, \
        "event wiring belongs in the handlers module's EVENT_HANDLERS, which the runtime subscribes"
    functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert set(functions) <= {"build"}, f"__main__.py defines {functions}: sample data belongs in seed.py"
