"""Shared fixtures: a real Postgres (embedded unless DATABASE_URL is set) and the whole suite."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tools.devstack import scratch_postgres
from tools.token import mint_service

ROOT = Path(__file__).resolve().parent.parent

# Services run in-process by the tests present this credential on their calls to one another
# (under the whole suite each service gets its own, minted by tools/devstack.py).
os.environ.setdefault("SERVICE_TOKEN", mint_service("tests-in-process"))


_HYPOTHESIS_HOME: list[str] = []


def pytest_configure(config):
    """Hypothesis keeps caches in .hypothesis/ of the working directory even without an example
    database: this session's go to a temporary directory instead, removed at the end."""
    from hypothesis import configuration

    _HYPOTHESIS_HOME.append(tempfile.mkdtemp(prefix="smart110-hypothesis-"))
    configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME[-1])


def pytest_unconfigure(config):
    for path in _HYPOTHESIS_HOME:
        shutil.rmtree(path, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Fuzz tests run last: a generated request that happens to be valid leaves records in the
    session's stack that another test could otherwise see (an alert rule, a silence)."""
    items.sort(key=lambda item: item.get_closest_marker("fuzz") is not None)


@pytest.fixture(scope="session")
def admin_url():
    """An admin URL of a real Postgres server for this test session."""
    with scratch_postgres("smart110-test-") as url:
        yield url


@pytest.fixture(scope="session")
def stack(admin_url):
    """The whole suite, started the way `make run` starts it, on free ports."""
    from tools.devstack import Ports, Stack

    run_dir = Path(tempfile.mkdtemp(prefix="smart110-stack-"))
    s = Stack(run_dir=run_dir, ports=Ports.free(), database_url=admin_url)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def eventually(fn, timeout: float = 20.0, interval: float = 0.1):
    """Waits for an asynchronous effect (a consumed event): returns fn()'s first truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {fn}")
        time.sleep(interval)
