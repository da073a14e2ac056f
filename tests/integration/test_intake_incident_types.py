"""The incident taxonomy (警情类型) on intake's port: every type the classifier decides, named in Chinese
for the screens, readable by anyone signed in."""
from __future__ import annotations

import grpc

from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake import rules
from services.runtime.labels import INCIDENT_TYPE_LABELS
from services.runtime.policy import ANY_PERSON, STATION_ROLES
from tests.integration.intake_support import error_of, intake, metadata_for, report, served, submit

__all__ = ["intake", "served"]  # the fixtures


def _all(stub, md, page_size=0) -> list[pb.IncidentType]:
    out, token = [], ""
    while True:
        page = stub.ListIncidentTypes(pb.ListIncidentTypesRequest(page_size=page_size, page_token=token),
                                      metadata=md)
        out.extend(page.incident_types)
        token = page.next_page_token
        if not token:
            return out


def test_every_type_of_the_classifier_s_taxonomy_is_listed_with_its_chinese_name(intake):
    _rt, stub = intake
    types = _all(stub, metadata_for(["officer"]))
    assert [t.code for t in types] == list(rules.INCIDENT_TYPES)
    by_code = {t.code: t for t in types}
    robbery = by_code["ROBBERY"]
    assert (robbery.name, robbery.display_name, robbery.category, robbery.category_display_name, robbery.group) == (
        "incidentTypes/ROBBERY", "抢劫抢夺", pb.CATEGORY_POLICE, "警情", "CRIMINAL")
    assert robbery.default_priority == 1 and robbery.life_threatening
    theft = by_code["THEFT"]
    assert theft.display_name == "盗窃" and not theft.life_threatening and theft.default_priority > 1
    assert by_code["STREET_LIGHT"].category == pb.CATEGORY_NON_POLICE
    assert by_code["STREET_LIGHT"].category_display_name == "非警务求助"
    assert by_code["MISDIAL"].category == pb.CATEGORY_INVALID
    assert {t.code: t.display_name for t in types} == INCIDENT_TYPE_LABELS
    assert all(1 <= t.default_priority <= 4 for t in types)


def test_a_report_gets_its_type_s_default_priority_when_no_rule_raises_it(intake):
    _rt, stub = intake
    types = {t.code: t for t in _all(stub, metadata_for(["call_taker"]))}
    filed = submit(stub, report("我家楼下的路灯坏了好几天了"))
    assert filed.classification.incident_type in types
    assert filed.classification.priority == types[filed.classification.incident_type].default_priority


def test_any_signed_in_role_reads_it_whatever_its_station(intake):
    """(No credential at all is refused as for every RPC: test_authorisation_matrix.)"""
    _rt, stub = intake
    expected = len(rules.INCIDENT_TYPES)
    for role in sorted(ANY_PERSON):
        station = "S01" if role in STATION_ROLES else ""
        assert len(_all(stub, metadata_for([role], station=station))) == expected, role


def test_pages_cover_the_taxonomy_once_and_bad_paging_names_its_field(intake):
    _rt, stub = intake
    md = metadata_for(["dispatcher"])
    first = stub.ListIncidentTypes(pb.ListIncidentTypesRequest(page_size=10), metadata=md)
    assert len(first.incident_types) == 10 and first.next_page_token
    paged = _all(stub, md, page_size=10)
    assert [t.code for t in paged] == list(rules.INCIDENT_TYPES)
    code, fields, _ = error_of(lambda: stub.ListIncidentTypes(pb.ListIncidentTypesRequest(page_size=-1), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in fields
    code, fields, _ = error_of(lambda: stub.ListIncidentTypes(
        pb.ListIncidentTypesRequest(page_token="not-a-token"), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in fields
