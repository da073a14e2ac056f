"""A real database failure with a phone number as a parameter leaves neither in the logs."""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.runtime.db import make_engine
from services.runtime.logs import setup_logging

PHONE = "13812345678"


@pytest.fixture
def project_logging():
    """The project's logging setup, with the root logger restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield lambda: setup_logging("test-redaction")
    root.handlers[:], level = saved
    root.setLevel(level)


def test_failed_statement_logs_no_phone_and_no_parameters(admin_url, project_logging, capsys):
    engine = make_engine(admin_url, pool_size=1, application_name="smart110-test-redaction")
    try:
        project_logging()
        log = logging.getLogger("smart110.test")
        with engine.connect() as conn:
            conn.execute(text("CREATE TEMP TABLE callers (phone varchar(8) NOT NULL)"))
            with pytest.raises(DBAPIError) as err:
                conn.execute(text("INSERT INTO callers (phone) VALUES (:phone)"), {"phone": PHONE})
            try:
                raise err.value
            except DBAPIError:
                log.exception("insert failed for %s", PHONE)
    finally:
        engine.dispose()
    out = capsys.readouterr().err
    assert out, "nothing was logged"
    doc = json.loads(out.strip().splitlines()[-1])
    assert "exception" in doc and "INSERT INTO callers" in doc["exception"]
    assert PHONE not in out
    assert "'phone'" not in out and "{'phone'" not in out
    assert "138****5678" in doc["message"]
