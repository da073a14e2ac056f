"""Jobs beside the service: retraining the classifier from the corpus and the call-takers'
corrections (`python -m services.intake train`), and classifying JSON lines without a database
(`python -m services.intake classify`)."""
from __future__ import annotations

import logging
import os

from services.runtime import db

from . import queries
from .classifier import cli

log = logging.getLogger(__name__)


def corrections() -> list[dict]:
    """The labelled examples of call-takers' corrections in intake's database (DATABASE_URL); none
    when no database is configured."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        log.warning("DATABASE_URL is not set: training on the corpus alone")
        return []
    engine = db.make_engine(url, pool_size=1, application_name="intake-train")
    try:
        with engine.connect() as conn:
            return queries.labelled_examples(conn)
    finally:
        engine.dispose()


def train(argv: list[str]) -> None:
    cli.train_main(argv, corrections)


def classify(argv: list[str]) -> None:
    cli.classify_main(argv)


COMMANDS = {"train": train, "classify": classify}
