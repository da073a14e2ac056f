"""Every RPC of every contract has an access policy: who may call it (an RPC without one fails here)."""
from __future__ import annotations

import importlib

import pytest
from google.protobuf import descriptor_pb2

from services.runtime.app import all_policies
from services.runtime.policy import SERVICE
from tests.conftest import ROOT

PACKAGES = {"intake": "intake", "dispatch": "dispatch", "referral": "referral12345", "alerts": "alerts",
            "scoring": "scoring", "warehouse": "warehouse"}


def contract_methods() -> dict[str, list[str]]:
    """Full service name -> its methods, from the descriptor set the gateway is built from."""
    fds = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "build" / "descriptors.pb").read_bytes())
    out = {}
    for f in fds.file:
        if f.package.startswith("smart110.") and not f.package.startswith("smart110.partners."):
            for s in f.service:
                out[f"{f.package}.{s.name}"] = [m.name for m in s.method]
    return out


def spec_of(service: str):
    return importlib.import_module(f"services.{PACKAGES[service]}.__main__").SPEC


@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_every_method_of_the_service_has_a_policy(service):
    spec = spec_of(service)
    policies = all_policies(spec)
    owned = {name: methods for name, methods in contract_methods().items()
             if name.split(".")[1] == service}
    assert owned, f"no contract found for {service}"
    missing = []
    for name, methods in owned.items():
        if name in spec.public:
            continue
        table = policies.get(name)
        missing += [f"{name}/{m}" for m in methods if table is None or table.access(m) is None]
    assert not missing, "RPCs without an access policy (add them to the service's policy.py):\n" + "\n".join(missing)


@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_feeds_are_for_service_credentials_only(service):
    table = all_policies(spec_of(service))[f"smart110.{service}.v1.{service.capitalize()}Service"]
    assert table.access("StreamEvents").roles == {SERVICE}


def test_policies_name_no_method_the_contract_lacks():
    methods = contract_methods()
    stale = []
    for service in PACKAGES:
        for name, table in all_policies(spec_of(service)).items():
            stale += [f"{name}/{m}" for m in table.table if m not in methods.get(name, [])]
    assert not stale, f"policies for methods no contract has: {stale}"
