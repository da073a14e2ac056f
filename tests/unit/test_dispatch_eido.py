"""The EIDO document of cases the integration tests do not reach easily (services/dispatch/eido),
each checked against the vendored EIDO schema: an officer's panic button (no call, no caller), a
silent alarm, a border case, a reopened case, an incident type the mapping does not know, a case
without a point."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.dispatch import eido
from services.dispatch.domain import Assignment, DispatchCase
from services.runtime.model import TimelineEntry
from tests.eido_schema import check_document

T0 = datetime(2026, 12, 4, 13, 0, tzinfo=timezone.utc)
ISSUER = eido.Issuer()


def case(**kw) -> DispatchCase:
    values = dict(id="20261204-abc", report="reports/r1", station_id="S01", grid_id="S01-G01", incident_type="FIGHT",
                  priority=2, level="STATION", status="PENDING", lon=114.3, lat=30.58, address_text="江岸区大智路1号",
                  summary="小区门口有人打架", recommendations=[], report_time=T0, create_time=T0 + timedelta(seconds=2),
                  update_time=T0 + timedelta(seconds=5))
    values.update(kw)
    return DispatchCase(**values)


def assignment(state: str, *, unit: str = "U-S01-001", station: str = "S01", n: int = 1, **kw) -> Assignment:
    values = dict(id=f"a{n}", case_id="20261204-abc", unit_id=unit, call_sign=f"江岸{n}", kind="PATROL_CAR",
                  station_id=station, officers=[{"officer_id": "p1", "name": "张警官", "station_id": station}],
                  role="PRIMARY", capability="PATROL", state=state, version=1, reason="最近", arrival_target_s=300,
                  offer_time=T0 + timedelta(seconds=3), offer_expire_time=None, update_time=T0 + timedelta(seconds=n * 10))
    values.update(kw)
    return Assignment(**values)


def test_an_officer_s_panic_button_has_no_call_and_no_caller():
    doc = eido.document(case(id="20261204-sos", report="units/U-S01-001", incident_type="OFFICER_EMERGENCY",
                             priority=1, level="CITY", summary="民警紧急求助"),
                        issuer=ISSUER, caller=eido.Caller(name="不该出现", phone="13800000000"))
    check_document(doc)
    assert "callComponent" not in doc and "personComponent" not in doc and "callbackComponent" not in doc
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "HLP1"
    assert doc["incidentComponent"]["incidentTypeInternalText"] == "民警紧急求助"


def test_a_silent_alarm_carries_its_instructions_with_the_call():
    doc = eido.document(case(silent=True, incident_type="SILENT_ALARM"), issuer=ISSUER)
    check_document(doc)
    notes = {n["$id"]: n["notesActionComments"] for n in doc["notesComponent"]}
    (call,) = doc["callComponent"]
    assert [notes[r["$ref"]] for r in call["notesReference"]] == ["无声报警：勿回拨报警人，静默接近"]
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "ALRPANS"


def test_a_border_case_with_a_helping_station_and_a_reopened_case():
    c = case(status="DISPATCHED", shared_station_ids=["S02"], reopen_time=T0 + timedelta(hours=1),
             assignments=[assignment("DECLINED", n=1, decline_reason="车辆故障"),
                          assignment("EN_ROUTE", unit="U-S03-002", station="S03", n=2,
                                     accept_time=T0 + timedelta(seconds=40), en_route_time=T0 + timedelta(seconds=50))],
             timeline=[TimelineEntry("CREATED", "system", [], T0, "由接警单创建 <b>", ""),
                       TimelineEntry("OFFERED", "system", [], T0 + timedelta(seconds=3), "派单", "最近 & 空闲")])
    doc = eido.document(c, issuer=ISSUER, stations={"S01": eido.Station("S01", "大智路派出所", "027-82771234")})
    check_document(doc)
    incident = doc["incidentComponent"]
    assert {"ResourcesAssigned", "ResourcesEnroute", "ReOpened"} <= set(incident["incidentStatusCommonRegistryText"])
    assert incident["reportNumberType"] == "Reopened"
    roles = {a["$id"]: a["agencyRoleDescriptionRegistryText"] for a in doc["agencyComponent"]}
    assert roles["s02.110.smart110.gov.cn"] == ["Informational"]
    assert roles["s03.110.smart110.gov.cn"] == ["Dispatched"]
    assert roles["s01.110.smart110.gov.cn"] == ["Dispatched"]
    owner = next(a for a in doc["agencyComponent"] if a["$id"] == "s01.110.smart110.gov.cn")
    assert owner["incidentOwningAgencyIndicator"] and "tel:+862782771234" in owner["agencyJcard"]
    units = {r["emergencyResourceName"]: r for r in doc["emergencyResourceComponent"]}
    assert units["江岸2"]["secondaryUnitStatusRegistryText"] == ["Assigned", "EnRoute"]
    assert units["江岸1"]["primaryUnitStatusRegistryText"] == "Available" and "activeOnIncidentId" not in units["江岸1"]
    notes = [n["notesActionComments"] for n in doc["notesComponent"]]
    # HTML5 text: escaped.
    assert "[CREATED] 由接警单创建 &lt;b&gt;" in notes and "[OFFERED] 派单（最近 &amp; 空闲）" in notes
    assert any("拒单理由：车辆故障" in n for n in notes)
    # Officers are not named.
    assert "张警官" not in str(doc)


def test_an_unknown_type_and_a_case_without_a_point():
    doc = eido.document(case(incident_type="SOMETHING_NEW", lon=None, lat=None, grid_id=""), issuer=ISSUER)
    check_document(doc)
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "TROUBLE"
    assert doc["incidentComponent"]["incidentTypeInternalText"] == "SOMETHING_NEW"
    (location,) = doc["locationComponent"]
    assert "locationByValue" not in location and location["locationDescriptionText"] == "江岸区大智路1号"


def test_every_mapped_code_is_one_of_the_registry_s():
    # NENA-STA-021 tables 3-2 (incident types, APCO ANS 2.103.2-2019), 3-9, 3-10 and 3-11.
    incident_types = {"HOMICIDE", "ROBBERY", "ABDUCTNF", "LARCENY", "FRAUD", "ASSAULT", "DVA", "DRUGS", "SEXOFFNS",
                      "FIGHT", "CDX", "NOISE", "VICE", "PERSUSP", "TROUBLE", "ALRPANS", "MVAUNK", "THAZ", "DUI",
                      "PERMISS", "RESCUE", "WATER", "FUNK", "GASLEAK", "SUICTHRT", "HLP1"}
    assert set(eido.INCIDENT_TYPES.values()) | {eido.DEFAULT_INCIDENT_TYPE} <= incident_types
    assert {p for p, _ in eido.UNIT_STATUSES.values()} <= {"Available", "ConditionallyAvailable", "NotAvailable"}
    assert {s for _, ss in eido.UNIT_STATUSES.values() for s in ss} <= {
        "Dispatched", "AcknowledgedTransmission", "Assigned", "EnRoute", "Arrived", "Cleared", "AssignmentCancelled"}
    assert set(eido.RESOURCE_TYPES.values()) <= {"PatrolUnit", "Investigator", "TrafficUnit", "SWAT",
                                                 "UnmannedAerialVehicle", "LawEnforcementCommandUnit"}


def test_the_case_s_times_are_a_note_of_the_incident():
    c = case(status="CLOSED", accept_time=T0 + timedelta(seconds=40), arrive_time=T0 + timedelta(minutes=4),
             close_time=T0 + timedelta(minutes=30), outcome="MEDIATED", close_notes="双方已和解")
    doc = eido.document(c, issuer=ISSUER)
    check_document(doc)
    notes = {n["$id"]: n for n in doc["notesComponent"]}
    times = notes[ISSUER.urn("cases/20261204-abc/times")]
    assert times["notesActionComments"].startswith("接报 2026-12-04T13:00:00.000Z；立案 2026-12-04T13:00:02.000Z；首次接单")
    assert "首车到场 2026-12-04T13:04:00.000Z" in times["notesActionComments"]
    assert times["lastUpdateTimeStamp"] == "2026-12-04T13:30:00.000Z"
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == ["Closed"]
    assert any(n["notesActionComments"].startswith("办结：") and n["notesActionComments"].endswith("双方已和解")
               for n in notes.values())
