"""The one recipe for resource ids: the day, then random hex (`20261203-3f9a1c0b7e2d`).

The day prefix makes ids sort roughly by creation and lets a person read when a
report, case or order was made; the random part makes them unguessable and unique
across replicas without coordination.
"""
from __future__ import annotations

import uuid
from datetime import datetime


def new_id(now: datetime, *, prefix: str = "", digits: int = 12) -> str:
    """`{prefix}{YYYYMMDD}-{digits random hex}`."""
    return f"{prefix}{now:%Y%m%d}-{uuid.uuid4().hex[:digits]}"
