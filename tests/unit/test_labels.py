"""The shared label tables (services/runtime/labels.py) say what the owning services say."""
from __future__ import annotations

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.dispatch.domain.case import CANCEL_REASONS as DISPATCH_CANCEL_REASONS
from services.dispatch.domain.case import OUTCOME_LABELS as DISPATCH_OUTCOMES
from services.intake import rules as intake_rules
from services.intake.classifier.core import CATEGORY_LABELS as INTAKE_CATEGORIES
from services.runtime import labels


def names(enum, prefix: str) -> set[str]:
    return {n.removeprefix(prefix) for n in enum.keys() if not n.endswith("_UNSPECIFIED")}


def test_incident_types_and_categories_are_intakes():
    assert labels.INCIDENT_TYPE_LABELS == {c: t.label for c, t in intake_rules.INCIDENT_TYPES.items()}
    assert labels.CATEGORY_LABELS == INTAKE_CATEGORIES


def test_outcomes_are_dispatchs_and_every_proto_value_has_a_label():
    assert labels.OUTCOME_LABELS == DISPATCH_OUTCOMES
    assert set(labels.OUTCOME_LABELS) == names(dispatch_pb.Outcome, "OUTCOME_")


def test_cancel_reasons_are_dispatchs_and_every_proto_value_has_a_label():
    assert labels.CANCEL_REASON_LABELS == DISPATCH_CANCEL_REASONS
    assert set(labels.CANCEL_REASON_LABELS) == names(dispatch_pb.CancelReason, "CANCEL_REASON_")
    assert labels.cancel_reason_label("CANCEL_REASON_CALLER_WITHDREW") == "报警人撤警"


def test_every_report_status_and_satisfaction_has_a_label():
    assert set(labels.REPORT_STATUS_LABELS) == names(intake_pb.ReportStatus, "REPORT_STATUS_")
    assert set(labels.SATISFACTION_LABELS) == names(common_pb2.Satisfaction, "SATISFACTION_")


def test_codes_read_with_or_without_the_enum_prefix():
    assert labels.outcome_label("CRIMINAL_CASE") == labels.outcome_label("OUTCOME_CRIMINAL_CASE") == "刑事立案"
    assert labels.report_status_label("REPORT_STATUS_ASSIGNING") == "派警中"
    assert labels.category_label("NON_POLICE") == "非警务求助"
    assert labels.incident_type_label("ILLEGAL_PARKING") == "违章停车"
    assert labels.satisfaction_label("SATISFACTION_BASICALLY_SATISFIED") == "基本满意"
    # An unknown code is shown as it is; nothing stays nothing.
    assert labels.outcome_label("OUTCOME_NEW_KIND") == "OUTCOME_NEW_KIND" and labels.outcome_label("") == ""


def test_texts_name_incident_types_by_their_labels():
    assert labels.incident_type_label("THEFT") == "盗窃"
    assert labels.incident_types_text(["THEFT", "ROBBERY", "THEFT"]) == "盗窃、抢劫抢夺"
    assert labels.incident_types_text([]) == "各类"
    assert labels.incident_type_label("NEW_CODE") == "NEW_CODE", "an unknown code is shown as it is"
    assert labels.category_label("POLICE") == "警情"
