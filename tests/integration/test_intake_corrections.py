"""Learning from call-takers: a correction of a report's classification is stored as a labelled
example (classification_examples), the report records the classifier version that classified it,
and the next training reads the example and trains on it."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from google.protobuf import field_mask_pb2

from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake import queries
from services.intake.classifier import artifacts, training
from tests.integration.intake_support import CALL_TAKER, intake, report, served, submit

__all__ = ["intake", "served"]  # the fixtures

TEXT = "楼道里那几个人一直蹲着抽东西，锡纸烧得噼啪响，满楼道怪味"


def test_a_corrected_classification_is_a_labelled_example_the_next_training_uses(intake, tmp_path):
    rt, stub = intake
    got = submit(stub, report(TEXT))
    assert got.classifier_version == artifacts.default().version
    assert 0 < got.classification.confidence <= 1
    fixed = stub.UpdateReport(pb.UpdateReportRequest(
        request_id=uuid.uuid4().hex,
        report=pb.Report(name=got.name, classification=pb.Classification(
            category=pb.CATEGORY_POLICE, incident_type="DRUGS", priority=2)),
        update_mask=field_mask_pb2.FieldMask(paths=["classification"]), reason="回拨核实为聚众吸毒"),
        metadata=CALL_TAKER, timeout=10)
    assert fixed.classification.corrected and not fixed.needs_confirmation
    assert fixed.classifier_version == got.classifier_version

    with rt.engine.connect() as conn:
        examples = [e for e in queries.labelled_examples(conn) if e["report_id"] == got.name.split("/")[1]]
    assert len(examples) == 1
    [example] = examples
    assert (example["text"], example["incident_type"], example["priority"]) == (TEXT, "DRUGS", 2)
    assert example["classifier_version"] == got.classifier_version and example["corrected_by"] == "ct-1001"

    # A correction that changes only the place is no labelled example.
    stub.UpdateReport(pb.UpdateReportRequest(
        request_id=uuid.uuid4().hex, report=pb.Report(name=got.name, address_text="江岸区中山大道100号"),
        update_mask=field_mask_pb2.FieldMask(paths=["address_text"]), reason="地址更正"),
        metadata=CALL_TAKER, timeout=10)
    with rt.engine.connect() as conn:
        assert len([e for e in queries.labelled_examples(conn) if e["text"] == TEXT]) == 1

    # The next training reads it: a small corpus plus the correction.
    corpus_dir, models_dir = tmp_path / "corpus", tmp_path / "models"
    corpus_dir.mkdir()
    rows = [{"id": f"T{i}", "text": text, "channel": "PHONE", "category": "POLICE", "type": itype, "priority": p,
             "split": split, "style": "plain"}
            for i, (text, itype, p, split) in enumerate([
                ("两伙人在烧烤摊打起来了", "FIGHT", 2, "train"), ("有人在广场上打架", "FIGHT", 2, "train"),
                ("门口几个人打群架", "FIGHT", 2, "train"), ("我的电动车被偷了", "THEFT", 3, "train"),
                ("钱包让人摸走了", "THEFT", 3, "train"), ("家里被小偷撬门了", "THEFT", 3, "train"),
                ("楼下有人打架", "FIGHT", 2, "heldout"), ("手机被人偷了", "THEFT", 3, "heldout")])]
    (corpus_dir / "reports.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                              encoding="utf-8")
    with rt.engine.connect() as conn:
        corrections = queries.labelled_examples(conn)
    said = []
    doc = training.train(corrections=corrections, corpus_dir=corpus_dir, models_dir=models_dir,
                         now=datetime(2026, 12, 1, tzinfo=timezone.utc), folds=2, say=said.append)
    assert doc["corrections"] == len(corrections) >= 1 and doc["promoted"]
    assert any("corrections" in line for line in said)
    trained = artifacts.load(doc["version"], models_dir)
    assert "DRUGS" in trained.model.classes  # learned from the correction alone
    assert artifacts.current_version(models_dir) == doc["version"]
