"""Scoring's sample data: the sample city's community grids and their arrival targets (1-3-5 minute circle).

The sample rule set (version 1, `sample_rules.py`) is loaded by the first migration.
"""
from __future__ import annotations

from sampledata import city

from services.runtime.app import Runtime

from .store import GridRepository


def seed(rt: Runtime) -> None:
    """Loads the grids' arrival targets, idempotent."""
    with rt.engine.begin() as conn:
        GridRepository(conn).put([(g.grid_id, g.station_id, g.arrival_target_s) for g in city.grids()])
