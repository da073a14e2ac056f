"""Jobs beside the service: the start-up warm-up (`warm_up`), retraining the classifier from the
corpus and the call-takers' corrections (`python -m services.intake train`), and classifying JSON
lines without a database (`python -m services.intake classify`)."""
from __future__ import annotations

import logging
import os
import time

from sampledata import knowledge as knowledge_seed
from services.runtime import db

from . import queries
from .classifier import artifacts, cli
from .knowledge import Entry

log = logging.getLogger(__name__)


def warm_up(rt) -> None:
    """The jurisdiction index, the gazetteer, the knowledge base's index (with the word segmenter's
    dictionary, about a second) and the classifier are loaded before the first caller, not by it.
    Logs how long each took, so a slow start says where its time went."""
    steps = {"jurisdiction": rt.context.areas.get, "gazetteer": rt.context.addresses.get,
             "knowledge": rt.context.knowledge.index, "classifier": artifacts.default}
    took = {}
    for name, load in steps.items():
        started = time.monotonic()
        load()
        took[name] = round(time.monotonic() - started, 2)
    log.info("warm-up steps (seconds): %s", ", ".join(f"{k} {v}" for k, v in took.items()),
             extra={"warm_up_seconds": took})


def _read(what):
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return None
    engine = db.make_engine(url, pool_size=1, application_name="intake-train")
    try:
        with engine.connect() as conn:
            return what(conn)
    finally:
        engine.dispose()


def corrections() -> list[dict]:
    """The labelled examples of call-takers' corrections in intake's database (DATABASE_URL); none
    when no database is configured."""
    found = _read(queries.labelled_examples)
    if found is None:
        log.warning("DATABASE_URL is not set: training on the corpus alone")
    return found or []


def knowledge_entries() -> list[Entry]:
    """The knowledge base in intake's database, else the seed entries it starts from."""
    found = _read(queries.load_entries)
    if found:
        return found
    return [Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in knowledge_seed.entries()]


def train(argv: list[str]) -> None:
    cli.train_main(argv, corrections, knowledge_entries)


def classify(argv: list[str]) -> None:
    cli.classify_main(argv)


COMMANDS = {"train": train, "classify": classify}
