"""The shared label table agrees with intake's taxonomy, code for code."""
from services.intake.rules import INCIDENT_TYPES
from services.runtime import taxonomy


def test_every_incident_type_has_intakes_chinese_label():
    assert taxonomy.INCIDENT_TYPE_LABELS == {code: t.label for code, t in INCIDENT_TYPES.items()}


def test_labels_in_words():
    assert taxonomy.incident_type_label("THEFT") == "盗窃"
    assert taxonomy.incident_types_text(["THEFT", "ROBBERY", "THEFT"]) == "盗窃、抢劫抢夺"
    assert taxonomy.incident_types_text([]) == "各类"
    assert taxonomy.incident_type_label("NEW_CODE") == "NEW_CODE", "an unknown code is shown as it is"
    assert taxonomy.category_label("POLICE") == "警情"
