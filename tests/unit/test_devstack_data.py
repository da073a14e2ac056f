"""`make run` keeps its database between runs unless the schemas changed since it was made."""
from __future__ import annotations

from tools.devstack import Ports, Stack, schema_fingerprint


def test_data_of_older_schemas_is_set_aside_and_current_data_kept(tmp_path):
    stack = Stack(run_dir=tmp_path, ports=Ports.free())
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("17\n")

    # Made by a version of the code that left no fingerprint: set aside, not deleted.
    stack._set_aside_if_schema_changed(pgdata)
    assert not pgdata.exists()
    [aside] = tmp_path.glob("pgdata.before-*")
    assert (aside / "PG_VERSION").read_text() == "17\n"
    assert (tmp_path / "schema-fingerprint").read_text() == schema_fingerprint()

    # Made by this code: kept.
    pgdata.mkdir()
    stack._set_aside_if_schema_changed(pgdata)
    assert pgdata.exists() and len(list(tmp_path.glob("pgdata.before-*"))) == 1

    # The schemas changed since: set aside again.
    (tmp_path / "schema-fingerprint").write_text("an older schema\n")
    stack._set_aside_if_schema_changed(pgdata)
    assert not pgdata.exists()
