"""A case exported as a NENA EIDO (NENA-STA-021) JSON document, on dispatch's port: valid against the
published EIDO schema (vendored in services/dispatch/eido/schema), read as GetCase reads a case
(jurisdiction, grants), the caller's name and phone only for those who see callers' personal data,
read from intake with its purpose."""
from __future__ import annotations

import json
import uuid
from datetime import timezone

import grpc
import pytest

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.dispatch import eido
from services.dispatch.policy import PERSONAL_DATA_ROLES
from services.intake.api import OPERATOR_ROLES
from tests import support
from tests.conftest import eventually
from tests.eido_schema import VALIDATOR, check_document, undeclared
from tests.integration.dispatch_harness import StandInIntake, dispatch_service, see_through

DISPATCHER = support.caller(["dispatcher"], sub="p-centre-eido")


@pytest.fixture(scope="module")
def intake():
    stand_in = StandInIntake().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def h(admin_url, intake):
    with dispatch_service(admin_url, env={"INTAKE_ADDR": intake.address,
                                          "DISPATCH_GRANT_SWEEP_SECONDS": "3600"}) as harness:
        intake.callers = harness.callers
        yield harness


def export(h, name: str, who: tuple = DISPATCHER) -> tuple[str, dict]:
    body = h.stub.ExportCaseEido(pb.ExportCaseEidoRequest(name=name), metadata=who, timeout=10)
    return body.content_type, json.loads(body.data)


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def test_a_case_on_scene_exports_as_an_eido_the_published_schema_accepts(h, intake):
    case = h.open_case(incident_type="FIGHT", station="S01", grid="S01-G01", caller_phone="13800138000",
                       caller_name="陈女士")
    case = see_through(h, case.report, on_scene_after=240, until="ON_SCENE")
    before_export = len(h.case(case.name).timeline)
    content_type, doc = export(h, case.name)
    after_export = len(h.case(case.name).timeline)

    assert content_type.startswith("application/json")
    check_document(doc)
    assert doc["eidoVersion"] == "1.0"
    assert doc["$id"] == f"urn:emergency:uid:incidentid:{case.name.split('/')[1]}:110.smart110.gov.cn"
    incident = doc["incidentComponent"]
    assert incident["incidentTypeCommonRegistryText"] == "FIGHT"
    assert incident["incidentTypeInternalCode"] == "FIGHT" and incident["incidentTypeInternalText"] == "打架斗殴"
    assert {"Active", "ResourcesAssigned", "ResourcesOnscene"} <= set(incident["incidentStatusCommonRegistryText"])
    assert incident["incidentStatusInternalText"] == ["ON_SCENE", "已到场"]
    assert incident["internalIncidentId"] == case.name and incident["documentIdentification"] == [case.report]
    assert incident["incidentCommonPriorityNumber"] == case.priority
    assert incident["beatOrDispatchGroupText"] == "S01-G01"

    (location,) = doc["locationComponent"]
    assert location["locationTypeDescriptionRegistryText"] == "CurrentIncident"
    lon, lat = case.location.point.longitude, case.location.point.latitude
    assert f"<gml:pos>{lat:.6f} {lon:.6f}</gml:pos>" in location["locationByValue"]
    assert 'srsName="urn:ogc:def:crs:EPSG::4326"' in location["locationByValue"]

    (call,) = doc["callComponent"]
    assert call["direction"] == "incoming" and call["callStartTimestamp"] == eido.stamp(case.report_time.ToDatetime(tzinfo=timezone.utc))
    (person,) = doc["personComponent"]
    assert person["personIncidentRoleRegistryText"] == ["Caller"]
    assert person["ncPersonComponent"]["name"][0]["personFullName"][0]["value"] == "陈女士"
    (callback,) = doc["callbackComponent"]
    assert callback["callBackInformationUri"] == ["tel:+8613800138000"]
    assert person["callBackReference"] == call["callBackReference"] == {"$ref": callback["$id"]}
    # Read from intake for this export, with its purpose and who asked (intake records it).
    report, purpose, reference = intake.reads[-1]
    assert (report, purpose) == (case.report, intake_pb.CALLER_CONTACT_PURPOSE_INCIDENT_TRANSFER)
    assert case.name in reference and "p-centre-eido" in reference

    primary = next(a for a in case.assignments if a.role == pb.ASSIGNMENT_ROLE_PRIMARY)
    resources = {r["emergencyResourceName"]: r for r in doc["emergencyResourceComponent"]}
    unit = resources[primary.call_sign]
    assert unit["primaryUnitStatusRegistryText"] == "NotAvailable"
    assert "Arrived" in unit["secondaryUnitStatusRegistryText"] and unit["unitStatusInternal"][0] == "ON_SCENE"
    assert unit["activeOnIncidentId"] == doc["$id"]
    # One dispatch per assignment (the sweeper may have offered more since `case` was read).
    assert {f"urn:smart110:110.smart110.gov.cn:{a.name}" for a in case.assignments} \
        <= {d["$id"] for d in doc["dispatchComponent"]}
    notes = {n["$id"]: n["notesActionComments"] for n in doc["notesComponent"]}
    (dispatch,) = [d for d in doc["dispatchComponent"] if d["emergencyResourceReference"] == [{"$ref": unit["$id"]}]
                   and "到场" in notes[d["notesReference"][0]["$ref"]]]
    assert "接单" in notes[dispatch["notesReference"][0]["$ref"]]

    agencies = {a["$id"]: a for a in doc["agencyComponent"]}
    station = agencies["s01.110.smart110.gov.cn"]
    assert station["incidentOwningAgencyIndicator"] is True and "Dispatched" in station["agencyRoleDescriptionRegistryText"]
    assert "派出所" in json.loads(station["agencyJcard"])[1][1][3]
    assert agencies["110.smart110.gov.cn"]["agencyRoleDescriptionRegistryText"] == ["CallReceiving", "Dispatching"]
    # Every timeline entry is a note of the incident, at its time: all of them as they stood when the
    # export read the case (the offer sweeper runs meanwhile, so the timeline may grow around it).
    noted = sorted(int(n["$ref"].rsplit("/", 1)[1]) for n in incident["notesReference"] if "/timeline/" in n["$ref"])
    assert noted == list(range(1, len(noted) + 1)) and before_export <= len(noted) <= after_export


def test_an_unknown_or_malformed_case_is_not_exported(h):
    assert code_of(lambda: export(h, "cases/does-not-exist")) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: export(h, "units/U1")) == grpc.StatusCode.INVALID_ARGUMENT


def test_access_is_get_case_s_another_station_and_other_roles_get_nothing(h):
    case = h.open_case(incident_type="FIGHT", station="S03", grid="S03-G01")
    # A station of another district: automatic offers stay in the case's district, so none of its
    # units is on the case (a unit of a neighbour in the district may be, and its station sees it).
    other = support.caller(["officer"], station="S06", sub="p-s06-eido")
    # As GetCase answers: a case outside the caller's jurisdiction is not there (ids cannot be probed).
    assert code_of(lambda: h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=other)) \
        == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: export(h, case.name, other)) == grpc.StatusCode.NOT_FOUND
    # A role GetCase refuses is refused here too.
    for roles in (["hotline_agent"], ["department"], ["expert"]):
        assert code_of(lambda: export(h, case.name, support.caller(roles, station="S03", sub="x"))) \
            == grpc.StatusCode.PERMISSION_DENIED


def test_an_active_grant_opens_the_export_as_it_opens_get_case(h):
    mine = h.open_case(incident_type="ROBBERY", priority=1, station="S01", grid="S01-G01")
    theirs = h.open_case(incident_type="THEFT", station="S10", grid="S10-G01")
    me = support.caller(["officer"], station="S01", sub="p-eido-grant")
    assert code_of(lambda: export(h, theirs.name, me)) == grpc.StatusCode.NOT_FOUND
    grant = h.stub.RequestAccessGrant(pb.RequestAccessGrantRequest(
        parent=mine.name, scope=pb.ACCESS_SCOPE_STATION_CASES, station_ids=["S10"], reason="嫌疑人逃往邻所辖区",
        request_id=uuid.uuid4().hex), metadata=me, timeout=10)
    assert grant.state == pb.ACCESS_GRANT_STATE_ACTIVE
    _, doc = export(h, theirs.name, me)
    check_document(doc)
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "LARCENY"


def test_who_may_not_see_personal_data_gets_the_caller_without_name_or_number(h, intake):
    case = h.open_case(incident_type="NOISE", priority=3, station="S02", grid="S02-G01",
                       caller_phone="13912345678", caller_name="王先生")
    reads = len(intake.reads)
    for who in (support.caller(["officer"], station="S02", sub="p-s02-eido"),
                support.caller(["supervisor"], sub="sup-eido"),
                support.caller(["service"], sub="svc-eido")):
        _, doc = export(h, case.name, who)
        check_document(doc)
        text = json.dumps(doc, ensure_ascii=False)
        assert "王先生" not in text and "13912345678" not in text
        assert "callbackComponent" not in doc
        (person,) = doc["personComponent"]
        assert person["personIncidentRoleRegistryText"] == ["Caller"] and "ncPersonComponent" not in person
        assert "callBackReference" not in person and "callBackReference" not in doc["callComponent"][0]
    assert len(intake.reads) == reads, "nothing personal is read for them"
    # A station chief of the case's station sees it.
    _, doc = export(h, case.name, support.caller(["station_chief"], station="S02", sub="chief-S02"))
    assert doc["callbackComponent"][0]["callBackInformationUri"] == ["tel:+8613912345678"]


def test_a_cancelled_case_says_so_and_intake_away_is_unavailable(h, intake):
    case = h.open_case(incident_type="DISPUTE", priority=3, station="S05", grid="S05-G01")
    h.stub.CancelCase(pb.CancelCaseRequest(request_id=uuid.uuid4().hex, name=case.name,
                                           reason=pb.CANCEL_REASON_DUPLICATE), metadata=DISPATCHER, timeout=10)
    _, doc = export(h, case.name)
    check_document(doc)
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == ["Cancelled"]
    assert any(n["notesActionComments"].startswith("撤销：重复报警") for n in doc["notesComponent"])
    assert all(r["primaryUnitStatusRegistryText"] == "Available" and "activeOnIncidentId" not in r
               for r in doc.get("emergencyResourceComponent", []))

    intake.stop()
    try:
        assert code_of(lambda: export(h, case.name)) == grpc.StatusCode.UNAVAILABLE
        # Without the contact, nothing depends on intake.
        _, doc = export(h, case.name, support.caller(["officer"], station="S05", sub="p-s05-eido"))
        check_document(doc)
    finally:
        intake.start()
        # Dispatch's channel reconnects within its back-off (at most 2 s): the tests after this one
        # find intake back, as a restarted intake is found in service.
        eventually(lambda: reached_intake(h, case.name))


def reached_intake(h, name: str) -> bool:
    try:
        export(h, name)
        return True
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return False


def test_the_roles_that_see_personal_data_are_intake_s():
    assert set(PERSONAL_DATA_ROLES) == set(OPERATOR_ROLES)


def test_mainland_numbers_become_tel_uris():
    assert eido.tel_uri("13800138000") == "tel:+8613800138000"
    assert eido.tel_uri("027-8277 1234") == "tel:+862782771234"
    assert eido.tel_uri("+85291234567") == "tel:+85291234567"
    assert eido.tel_uri("110") == "tel:110;phone-context=+86"


def test_the_schema_check_refuses_what_the_published_schema_refuses(h):
    case = h.open_case(incident_type="THEFT", station="S01", grid="S01-G01")
    _, doc = export(h, case.name)
    check_document(doc)

    def errors(change) -> list[str]:
        broken = json.loads(json.dumps(doc))
        change(broken)
        return [e.message for e in VALIDATOR.iter_errors(broken)]

    assert errors(lambda d: d.pop("agencyComponent"))
    assert errors(lambda d: d["incidentComponent"].pop("incidentTypeCommonRegistryText"))
    assert errors(lambda d: d["callComponent"][0].update(direction="sideways"))
    assert errors(lambda d: d.update(eidoVersion="2.0"))
    assert errors(lambda d: d["personComponent"][0].update(
        ncPersonComponent={"name": [{"personFullName": [{"value": 7}]}]})), "the NIEM files are reached"
    broken = json.loads(json.dumps(doc))
    broken["incidentComponent"]["incidentTypo"] = "x"
    broken["personComponent"][0]["ncPersonComponent"] = {"name": [{"personFullNmae": []}]}
    assert not list(VALIDATOR.iter_errors(broken))
    assert undeclared(broken) == ["$.incidentComponent.incidentTypo", "$.personComponent[0].ncPersonComponent.name[0]"
                                  ".personFullNmae"]
