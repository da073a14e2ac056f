"""A dispatch case as a NENA EIDO (Emergency Incident Data Object, NENA-STA-021, EIDO version 1.0)
JSON document, for another province's or a national system to take the incident over.

Pure code: `document(case, issuer=..., stations=..., caller=...)` is the document as a dict, ready
for `json.dumps`. Codes go to the EIDO registries (NENA-STA-021 chapter 3: incident types are the
APCO ANS 2.103.2-2019 common codes; incident statuses, agency roles, location types, person roles,
unit statuses and resource types are the EIDO registries'), each with the local code and its
Chinese label beside it where the schema has an "internal" field. The schema the tests validate
against is in `schema/` (see its NOTICE.md).

Personal data: the caller's name and call-back number are in the document only when the caller
passes a `Caller` (dispatch keeps no caller contact; the servicer reads it from intake for a
requester who may see it). Officers appear as their unit's call sign, never by name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from xml.sax.saxutils import escape as xml_escape

from services.runtime.config import env_str
from services.runtime.labels import incident_type_label

from ..domain import CANCEL_REASONS, CASE_STATUS_LABELS, LEVEL_LABELS, OUTCOME_LABELS, ROLE_LABELS, STATE_LABELS
from ..domain import Assignment, DispatchCase
from ..domain.case import source_label

EIDO_VERSION = "1.0"
CONTENT_TYPE = "application/json; charset=utf-8"

# The case's incident type (intake's taxonomy) -> EIDO-IncidentType-Common (APCO ANS 2.103.2-2019).
INCIDENT_TYPES: dict[str, str] = {
    "HOMICIDE": "HOMICIDE", "ROBBERY": "ROBBERY", "KIDNAPPING": "ABDUCTNF", "THEFT": "LARCENY",
    "TELECOM_FRAUD": "FRAUD", "ASSAULT": "ASSAULT", "DOMESTIC_VIOLENCE": "DVA", "DRUGS": "DRUGS",
    "SEXUAL_ASSAULT": "SEXOFFNS", "FIGHT": "FIGHT", "DISPUTE": "CDX", "NOISE": "NOISE", "GAMBLING": "VICE",
    "SUSPICIOUS_PERSON": "PERSUSP", "OTHER": "TROUBLE", "SILENT_ALARM": "ALRPANS",
    "TRAFFIC_ACCIDENT": "MVAUNK", "CONGESTION": "THAZ", "DRUNK_DRIVING": "DUI",
    "MISSING_PERSON": "PERMISS", "TRAPPED": "RESCUE", "DROWNING_RISK": "WATER", "FIRE": "FUNK",
    "GAS_LEAK": "GASLEAK", "SUICIDE_RISK": "SUICTHRT",
    # An officer's panic button (紧急求助): police in trouble.
    "OFFICER_EMERGENCY": "HLP1",
}
# A type the table does not know (a newer one): "Unknown Type Trouble".
DEFAULT_INCIDENT_TYPE = "TROUBLE"
OFFICER_EMERGENCY_LABEL = "民警紧急求助"

# Case status -> EIDO-IncidentStatus-Common (more may follow from the assignments).
CASE_STATUSES: dict[str, tuple[str, ...]] = {
    "PENDING": ("Active",), "DISPATCHED": ("Active", "ResourcesAssigned"),
    "ON_SCENE": ("Active", "ResourcesAssigned", "ResourcesOnscene"),
    "CLEARED": ("Active", "ResourcesAssigned"), "REPORTED_BACK": ("Active",),
    "CLOSED": ("Closed",), "CANCELLED": ("Cancelled",),
}

# Assignment state -> (EIDO-PrimaryUnitStatus-Common, EIDO-SecondaryUnitStatus-Common).
UNIT_STATUSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "OFFERED": ("ConditionallyAvailable", ("Dispatched",)),
    "ACCEPTED": ("NotAvailable", ("AcknowledgedTransmission", "Assigned")),
    "EN_ROUTE": ("NotAvailable", ("Assigned", "EnRoute")),
    "ON_SCENE": ("NotAvailable", ("Assigned", "Arrived")),
    "CLEARED": ("ConditionallyAvailable", ("Cleared",)),
    "REPORTED_BACK": ("Available", ("Cleared",)),
    "DECLINED": ("Available", ("AssignmentCancelled",)),
    "EXPIRED": ("Available", ("AssignmentCancelled",)),
    "CANCELLED": ("Available", ("AssignmentCancelled",)),
    "WITHDRAWN": ("Available", ("AssignmentCancelled",)),
}
# States in which the unit is working the case (an offer included).
ACTIVE_STATES = frozenset({"OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED"})

# Unit kind -> EIDO-EmergencyResourceType-Common.
RESOURCE_TYPES: dict[str, str] = {
    "COMMUNITY_OFFICER": "PatrolUnit", "PATROL_CAR": "PatrolUnit", "FOOT_PATROL": "PatrolUnit",
    "CRIMINAL_INVESTIGATION": "Investigator", "PUBLIC_SECURITY": "PatrolUnit", "ECONOMIC_CRIME": "Investigator",
    "NARCOTICS": "Investigator", "TRAFFIC": "TrafficUnit", "SPECIAL_POLICE": "SWAT",
    "DRONE": "UnmannedAerialVehicle", "LEGAL_OFFICER": "LawEnforcementCommandUnit", "ANTI_FRAUD": "Investigator",
}
DEFAULT_RESOURCE_TYPE = "PatrolUnit"

# Assignment times, in the order they happen, for the dispatch notes.
ASSIGNMENT_TIMES = (("offer_time", "派单"), ("accept_time", "接单"), ("en_route_time", "出警"),
                    ("arrive_time", "到场"), ("clear_time", "处置完毕"), ("report_back_time", "回告"))


@dataclass(frozen=True)
class Issuer:
    """Who issues the documents: `domain` (EIDO_AGENCY_DOMAIN) names the 110 command centre's agency
    and makes every identifier globally unique; `name` (EIDO_AGENCY_NAME) is the centre's name."""

    domain: str = "110.smart110.gov.cn"
    name: str = "江城市公安局110指挥中心"

    @classmethod
    def from_env(cls) -> "Issuer":
        return cls(env_str("EIDO_AGENCY_DOMAIN", cls.domain), env_str("EIDO_AGENCY_NAME", cls.name))

    def urn(self, path: str) -> str:
        """An identifier of one of the document's components, e.g. urn:smart110:110.smart110.gov.cn:cases/C1/location."""
        return f"urn:smart110:{self.domain}:{path}"

    def station_agency(self, station_id: str) -> str:
        return f"{station_id.lower()}.{self.domain}"


@dataclass(frozen=True)
class Station:
    """A station as an agency of the document (organisation data, not personal)."""

    station_id: str
    name: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Caller:
    """The caller's contact, read from intake for a requester who may see it."""

    name: str = ""
    phone: str = ""


def stamp(t: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-12-04T13:02:03.123Z."""
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ref(target: str) -> dict:
    return {"$ref": target}


def tel_uri(phone: str) -> str:
    """A mainland number as a tel: URI: a mobile with +86, a landline (with area code) with +86 and
    without the trunk 0; anything else as it is (global or local, digits only)."""
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    if digits.startswith("+"):
        return f"tel:{digits}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"tel:+86{digits}"
    if digits.startswith("0") and len(digits) >= 10:
        return f"tel:+86{digits[1:]}"
    return f"tel:{digits};phone-context=+86"


def jcard(name: str, phone: str = "") -> str:
    """An agency's contact as a jCard (RFC 7095), the string AgencyType.agencyJcard holds."""
    props: list = [["version", {}, "text", "4.0"], ["fn", {}, "text", name]]
    if phone:
        props.append(["tel", {"type": "work"}, "uri", tel_uri(phone)])
    return json.dumps(["vcard", props], ensure_ascii=False)


def pidf_point(entity: str, lon: float, lat: float) -> str:
    """A PIDF-LO (RFC 4119, RFC 5491) with the point in WGS 84 (EPSG:4326, latitude first)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
        ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:gml="http://www.opengis.net/gml"'
        f' entity="{xml_escape(entity, {chr(34): "&quot;"})}">'
        '<dm:device id="incident"><gp:geopriv><gp:location-info>'
        f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat:.6f} {lon:.6f}</gml:pos></gml:Point>'
        '</gp:location-info><gp:usage-rules/></gp:geopriv></dm:device></presence>')


def incident_label(code: str) -> str:
    return OFFICER_EMERGENCY_LABEL if code == "OFFICER_EMERGENCY" else incident_type_label(code)


def incident_statuses(case: DispatchCase) -> list[str]:
    found = list(CASE_STATUSES.get(case.status, ("Active",)))
    if case.status not in ("CLOSED", "CANCELLED"):
        states = {a.state for a in case.assignments}
        if states & {"ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED"} and "ResourcesAssigned" not in found:
            found.append("ResourcesAssigned")
        if "EN_ROUTE" in states:
            found.append("ResourcesEnroute")
        if "ON_SCENE" in states and "ResourcesOnscene" not in found:
            found.append("ResourcesOnscene")
        if case.reopen_time is not None:
            found.append("ReOpened")
    return found


def _prologue(component_id: str, at: datetime, agency: str) -> dict:
    return {"$id": component_id, "lastUpdateTimeStamp": stamp(at), "updatedByAgencyReference": ref(agency)}


def _note(issuer: Issuer, path: str, at: datetime, text: str, agency: str) -> dict:
    """A note; notesActionComments is HTML5, so the text is escaped."""
    return {**_prologue(issuer.urn(path), at, agency), "notesActionComments": escape(text, quote=False)}


def _assignment_text(a: Assignment) -> str:
    times = "，".join(f"{label}{stamp(t)}" for attr, label in ASSIGNMENT_TIMES
                     if (t := getattr(a, attr, None)) is not None)
    parts = [f"{ROLE_LABELS.get(a.role, a.role)} {a.call_sign}：{STATE_LABELS.get(a.state, a.state)}", times]
    if a.decline_reason:
        parts.append(f"拒单理由：{a.decline_reason}")
    if a.outcome:
        parts.append(f"处理结果：{OUTCOME_LABELS.get(a.outcome, a.outcome)}")
    return "；".join(p for p in parts if p)


def document(case: DispatchCase, *, issuer: Issuer, stations: dict[str, Station] | None = None,
             caller: Caller | None = None) -> dict:
    """The EIDO of a case loaded whole (assignments and timeline). `stations`: names and phones of
    the stations involved (those not given are named by their id). `caller`: the caller's contact,
    for a requester who may see it; None leaves the caller's person without name and call-back."""
    stations = stations or {}
    centre = issuer.domain
    owner = issuer.station_agency(case.station_id)
    incident_id = f"urn:emergency:uid:incidentid:{case.id}:{issuer.domain}"
    updated = case.update_time
    notes: list[dict] = []

    def note(path: str, at: datetime, text: str, agency: str = centre) -> dict:
        n = _note(issuer, f"{case.name}/{path}", at, text, agency)
        notes.append(n)
        return ref(n["$id"])

    # -- location
    locations = []
    location_refs = []
    if case.lon is not None or case.address_text:
        loc = {**_prologue(issuer.urn(f"{case.name}/location"), case.create_time, centre),
               "locationTypeDescriptionRegistryText": "CurrentIncident"}
        if case.lon is not None and case.lat is not None:
            loc["locationByValue"] = pidf_point(incident_id, case.lon, case.lat)
        if case.address_text:
            loc["locationDescriptionText"] = case.address_text
        if case.grid_id:
            loc["localIdentifier"] = [case.grid_id]
        locations.append(loc)
        location_refs.append(ref(loc["$id"]))

    # -- the call (the report) and its caller
    calls, people, callbacks = [], [], []
    person_refs = []
    if not case.report.startswith("units/"):
        call_id = f"urn:emergency:uid:callid:{case.report.rsplit('/', 1)[-1]}:{issuer.domain}"
        person = {**_prologue(issuer.urn(f"{case.report}/caller"), case.report_time, centre),
                  "personIncidentRoleRegistryText": ["Caller"], "callIdentifier": [call_id]}
        if location_refs:
            person["locationReference"] = list(location_refs)
        call = {**_prologue(call_id, case.report_time, centre),
                "standardPrimaryCallType": "emergency", "localCallType": source_label(case.report),
                "direction": "incoming", "callStartTimestamp": stamp(case.report_time),
                "callStateRegistryText": "callEnd", "agencyReference": [ref(centre)]}
        if caller is not None and (caller.name or caller.phone):
            if caller.name:
                person["ncPersonComponent"] = {"name": [{"personFullName": [{"value": caller.name}]}]}
            if caller.phone:
                callback = {**_prologue(issuer.urn(f"{case.report}/callback"), case.report_time, centre),
                            "callBackInformationUri": [tel_uri(caller.phone)]}
                callbacks.append(callback)
                person["callBackReference"] = ref(callback["$id"])
                call["callBackReference"] = ref(callback["$id"])
        people.append(person)
        person_refs.append(ref(person["$id"]))
        call["personReference"] = list(person_refs)
        if location_refs:
            call["locationReference"] = list(location_refs)
        if case.silent:
            call["notesReference"] = [note("instructions", case.create_time, case.instructions)]
        calls.append(call)

    # -- units and dispatches
    resources: dict[str, dict] = {}
    dispatches = []
    for a in case.assignments:
        resource_id = issuer.urn(f"units/{a.unit_id}")
        primary, secondary = UNIT_STATUSES.get(a.state, ("Available", ()))
        resource = {**_prologue(resource_id, a.update_time, issuer.station_agency(a.station_id)),
                    "emergencyResourceTypeCommonRegistryText": RESOURCE_TYPES.get(a.kind, DEFAULT_RESOURCE_TYPE),
                    "emergencyResourceTypeInternalText": a.kind, "emergencyResourceName": a.call_sign,
                    "primaryUnitStatusRegistryText": primary, "secondaryUnitStatusRegistryText": list(secondary),
                    "unitStatusInternal": [a.state, STATE_LABELS.get(a.state, a.state)],
                    "resourceAttributeRegistryText": [], "agentReference": []}
        if a.state in ACTIVE_STATES:
            resource["activeOnIncidentId"] = incident_id
        earlier = resources.get(resource_id)
        if earlier is None or earlier["lastUpdateTimeStamp"] <= resource["lastUpdateTimeStamp"]:
            resources[resource_id] = resource
        path = f"{case.name}/assignments/{a.id}"
        dispatches.append({
            **_prologue(issuer.urn(path), a.update_time, centre),
            "agencyReference": ref(issuer.station_agency(a.station_id)),
            "emergencyResourceReference": [ref(resource_id)],
            "notesReference": [note(f"assignments/{a.id}/note", a.update_time, _assignment_text(a))]})

    # -- agencies: the centre, the case's station, the units' stations, border stations
    roles: dict[str, set[str]] = {case.station_id: set()}
    for s in case.shared_station_ids:
        roles.setdefault(s, set()).add("Informational")
    for a in case.assignments:
        roles.setdefault(a.station_id, set()).add("Dispatched")
    agencies = [{**_prologue(centre, updated, centre), "agencyJcard": jcard(issuer.name),
                 "agencyRoleDescriptionRegistryText": ["CallReceiving", "Dispatching"], "agencyType": ["police"],
                 "incidentOwningAgencyIndicator": False}]
    for station_id, station_roles in roles.items():
        if station_id == case.station_id:
            station_roles = (station_roles - {"Informational"}) or {"Assisting"}
        elif "Dispatched" in station_roles:
            station_roles = station_roles - {"Informational"}
        known = stations.get(station_id) or Station(station_id)
        agencies.append({**_prologue(issuer.station_agency(station_id), updated, centre),
                         "agencyJcard": jcard(known.name or station_id, known.phone),
                         "agencyRoleDescriptionRegistryText": sorted(station_roles),
                         "agencyType": ["police"], "incidentOwningAgencyIndicator": station_id == case.station_id})

    # -- the incident, with its notes: summary, close/cancel, timeline
    incident_notes = []
    if case.summary:
        incident_notes.append(note("summary", case.create_time, case.summary))
    times = [(label, t) for label, t in (("接报", case.report_time), ("立案", case.create_time),
                                          ("首次接单", case.accept_time), ("首车到场", case.arrive_time),
                                          ("重新处置", case.reopen_time), ("结束", case.close_time)) if t is not None]
    incident_notes.append(note("times", max(t for _, t in times),
                               "；".join(f"{label} {stamp(t)}" for label, t in times)))
    if case.outcome or case.cancel_reason:
        what = (f"办结：{OUTCOME_LABELS.get(case.outcome, case.outcome)}" if case.outcome
                else f"撤销：{CANCEL_REASONS.get(case.cancel_reason, case.cancel_reason)}")
        incident_notes.append(note("ending", case.close_time or updated,
                                   what + (f"。{case.close_notes}" if case.close_notes else "")))
    for i, entry in enumerate(case.timeline):
        text = f"[{entry.action}] {entry.detail}".rstrip() + (f"（{entry.reason}）" if entry.reason else "")
        incident_notes.append(note(f"timeline/{i + 1}", entry.time, text))
    incident = {
        **_prologue(issuer.urn(f"{case.name}/incident"), updated, owner),
        "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(case.incident_type, DEFAULT_INCIDENT_TYPE),
        "incidentTypeInternalCode": case.incident_type, "incidentTypeInternalText": incident_label(case.incident_type),
        "incidentStatusCommonRegistryText": incident_statuses(case),
        "incidentStatusInternalText": [case.status, CASE_STATUS_LABELS.get(case.status, case.status)],
        "internalIncidentId": case.name, "documentIdentification": [case.report],
        "incidentPriorityInternalText": f"P{case.priority}（{LEVEL_LABELS.get(case.level, case.level)}）",
        "incidentCommonPriorityNumber": case.priority,
        "reportNumberType": "Reopened" if case.reopen_time is not None else "New",
        "locationReference": location_refs, "personReference": person_refs, "notesReference": incident_notes,
    }
    if case.grid_id:
        incident["beatOrDispatchGroupText"] = case.grid_id
    incident = {k: v for k, v in incident.items() if v != []}

    doc = {
        **_prologue(incident_id, updated, centre),
        "eidoVersion": EIDO_VERSION, "issuingElementIdentification": f"dispatch.{issuer.domain}",
        "incidentComponent": incident, "callComponent": calls, "dispatchComponent": dispatches,
        "notesComponent": notes, "emergencyResourceComponent": list(resources.values()),
        "agencyComponent": agencies, "locationComponent": locations, "personComponent": people,
    }
    if callbacks:
        doc["callbackComponent"] = callbacks
    return {k: v for k, v in doc.items() if v != []}


def to_json(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
