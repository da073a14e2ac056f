"""Intake loads its indexes and its classifier at start-up, before it reports SERVING, so the first
caller of the day does not wait a second for them (real Postgres)."""
from services.intake.__main__ import SPEC
from services.intake.classifier import artifacts
from tests import support


def test_indexes_and_classifier_are_loaded_before_the_first_call(admin_url):
    artifacts._loaded.clear()  # as in a new process
    with support.serving(SPEC, admin_url) as served:
        ctx = served.rt.context
        assert ctx.areas._index is not None and len(ctx.areas._index) > 0
        assert ctx.addresses._gazetteer is not None and len(ctx.addresses._gazetteer) > 0
        assert ctx.knowledge._seq >= 0 and ctx.knowledge._index is not None
        assert artifacts._loaded, "the classifier model is loaded"
