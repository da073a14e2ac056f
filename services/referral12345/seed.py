"""Referral's sample data: the sample city's 12345 departments (承办单位) and their matters."""
from __future__ import annotations

from sampledata import city

from services.runtime.app import Runtime

from .domain import Department, Matter
from .store import DepartmentRepository


def seed(rt: Runtime) -> None:
    """Loads the departments, idempotent."""
    with rt.engine.begin() as conn:
        repo = DepartmentRepository(conn)
        for d in city.departments():
            repo.upsert(Department(
                dept_id=d.dept_id, name=d.name, matters=tuple(Matter(m.code, m.label) for m in d.matters),
                districts=tuple(d.districts), supervisor=d.supervisor, phone=d.phone,
            ))
