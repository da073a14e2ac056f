"""`make run` upgrades the database it keeps between runs in place and says what it migrated."""
from __future__ import annotations

import json

from tools import devstack


def test_migrate_output_is_reported_line_by_line():
    out = "\n".join([
        json.dumps({"logger": "smart110.migrate", "message": "migrating schema intake from 0001 to 0002: 0002 (x)"}),
        "not json at all",
        json.dumps({"logger": "smart110.app", "message": "unrelated"}),
        json.dumps({"logger": "smart110.migrate", "message": "schema alerts is at 0002: nothing to migrate"}),
    ])
    assert devstack.migration_lines(out) == [
        "migrating schema intake from 0001 to 0002: 0002 (x)",
        "schema alerts is at 0002: nothing to migrate",
    ]

