"""Protobuf <-> domain for intake: requests into plain values, reports, consultations, knowledge
entries, places and statistics into messages, the events other services publish into what they say
of a report, and the domain events intake records into its outbox messages (`event_to_message`)."""
from __future__ import annotations

import json

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.audit import timeline_to_pb
from services.runtime.changes import changed_fields, without
from services.runtime.enums import enum_name, enum_value
from services.runtime.logs import mask_name, mask_phone
from services.runtime.model import DomainEvent, TimelineEntry
from services.runtime.timeutil import from_pb, to_pb

from .domain import (
    DEFAULT_LANGUAGE, RATINGS, Address, AddressMatch, AssignmentNews, Attachment, CaseNews, GridArea,
    CATEGORY_LABELS, IncidentReported, KnowledgeEntryAdded, Report, ReportUpdated, StationArea, Statistics,
    TaxonomyEntry, WorkOrderNews, normalize_phone, share,
)
from .knowledge import Consultation, Entry, Match


# -- requests ------------------------------------------------------------------------

def enum_or_unknown(enum, value: int, prefix: str) -> str:
    """The plain name of an enum value; "?" for a number the contract does not define."""
    try:
        return enum_name(enum, value, prefix)
    except ValueError:
        return "?"


def location_fields(loc, present: bool) -> dict:
    has_point = present and loc.HasField("point")
    return dict(
        lon=loc.point.longitude if has_point else None,
        lat=loc.point.latitude if has_point else None,
        accuracy_m=loc.accuracy_m,
        location_source=enum_or_unknown(common_pb2.LocationSource, loc.source, "LOCATION_SOURCE_"),
    )


def new_report_fields(r: pb.Report) -> dict:
    """A new report's fields as plain values (`domain.validate_new_report` checks them)."""
    return dict(
        channel=enum_or_unknown(pb.Channel, r.channel, "CHANNEL_"),
        caller_phone=normalize_phone(r.caller.phone_number),
        caller_name=r.caller.name.strip(),
        **location_fields(r.location, r.HasField("location")),
        address_text=r.address_text.strip(),
        address_code=r.address_code.strip(),
        description=r.description.strip(),
        attachments=attachments_from_pb(r.attachments),
        language=r.language.strip() or DEFAULT_LANGUAGE,
        receive_time=from_pb(r.receive_time) if r.HasField("receive_time") else None,
    )


def correction_changes(r: pb.Report) -> dict:
    """The values a call-taker's UpdateReport gives, as plain values (the mask says which count)."""
    c = r.classification
    return dict(
        category=enum_or_unknown(pb.Category, c.category, "CATEGORY_"), incident_type=c.incident_type.strip(),
        priority=c.priority, address_text=r.address_text.strip(), address_code=r.address_code.strip(),
        **location_fields(r.location, r.HasField("location")),
    )


def report_filters(request: pb.ListReportsRequest) -> dict:
    return dict(
        station_id=request.station_id.strip(),
        channel=enum_or_unknown(pb.Channel, request.channel, "CHANNEL_"),
        category=enum_or_unknown(pb.Category, request.category, "CATEGORY_"),
        incident_type=request.incident_type.strip(),
        priority=request.priority,
        status=enum_or_unknown(pb.ReportStatus, request.status, "REPORT_STATUS_"),
        start=from_pb(request.receive_time_start) if request.HasField("receive_time_start") else None,
        end=from_pb(request.receive_time_end) if request.HasField("receive_time_end") else None,
        query=request.query.strip(),
    )


# -- reports ---------------------------------------------------------------------------


def attachments_from_pb(items) -> list[Attachment]:
    return [
        Attachment(
            kind=enum_name(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_") or "UNSPECIFIED",
            content_type=a.content_type, size_bytes=a.size_bytes, sha256=a.sha256.lower(),
            storage_uri=a.storage_uri,
        )
        for a in items
    ]


def report_to_pb(r: Report, *, masked: bool = False) -> pb.Report:
    c = r.classification
    msg = pb.Report(
        name=r.name,
        channel=enum_value(pb.Channel, r.channel, "CHANNEL_"),
        caller=pb.Caller(
            phone_number=mask_phone(r.caller_phone) if masked and r.caller_phone else r.caller_phone,
            name=mask_name(r.caller_name) if masked else r.caller_name,
        ),
        address_text=r.address_text,
        description=r.description,
        attachments=[
            common_pb2.Attachment(
                kind=enum_value(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_"),
                content_type=a.content_type, size_bytes=a.size_bytes, sha256=a.sha256, storage_uri=a.storage_uri,
            )
            for a in r.attachments
        ],
        language=r.language,
        classification=pb.Classification(
            category=enum_value(pb.Category, c.category, "CATEGORY_"),
            incident_type=c.incident_type, priority=c.priority, reason=c.reason,
            rule_ids=c.rule_ids, corrected=c.corrected, confidence=c.confidence,
        ),
        needs_confirmation=c.needs_confirmation, classifier_version=c.classifier_version,
        status=enum_value(pb.ReportStatus, r.status, "REPORT_STATUS_"),
        station_id=r.station_id, grid_id=r.grid_id, border_case=r.border_case,
        shared_station_ids=r.shared_station_ids,
        merged_into=f"reports/{r.merged_into}" if r.merged_into else "",
        satisfaction=enum_value(common_pb2.Satisfaction, r.satisfaction, "SATISFACTION_"),
    )
    if r.lon is not None:
        msg.location.CopyFrom(common_pb2.Location(
            point=common_pb2.GeoPoint(longitude=r.lon, latitude=r.lat), accuracy_m=r.accuracy_m,
            source=enum_value(common_pb2.LocationSource, r.location_source, "LOCATION_SOURCE_"),
        ))
    for field, value in (("receive_time", r.receive_time), ("answer_time", r.answer_time),
                         ("classify_time", r.classify_time), ("hand_off_time", r.hand_off_time),
                         ("on_scene_time", r.on_scene_time),
                         ("create_time", r.create_time), ("update_time", r.update_time)):
        if value is not None:
            getattr(msg, field).CopyFrom(to_pb(value))
    timeline_to_pb(r.timeline, msg.timeline)
    fill_handling(msg, r)
    msg.silent = r.silent
    msg.voice_callback_allowed = r.voice_callback_allowed
    msg.address_code = r.address_code
    if r.address_match is not None:
        msg.address_match.CopyFrom(address_match_to_pb(r.address_match))
    return msg


def preview_to_pb(p) -> pb.ReportPreview:
    """PreviewReport's answer (`handlers.Preview`): the classification, place and duplicate candidates."""
    r, c = p.report, p.report.classification
    msg = pb.ReportPreview(
        classification=pb.Classification(
            category=enum_value(pb.Category, c.category, "CATEGORY_"),
            incident_type=c.incident_type, priority=c.priority, reason=c.reason,
            rule_ids=c.rule_ids, corrected=c.corrected, confidence=c.confidence,
        ),
        needs_confirmation=c.needs_confirmation, classifier_version=c.classifier_version,
        station_id=r.station_id, grid_id=r.grid_id, border_case=r.border_case,
        shared_station_ids=r.shared_station_ids,
    )
    if r.address_match is not None:
        msg.address_match.CopyFrom(address_match_to_pb(r.address_match))
    if r.lon is not None:
        msg.point.CopyFrom(common_pb2.GeoPoint(longitude=r.lon, latitude=r.lat))
    for repeat in p.repeats:
        cand = repeat.candidate
        msg.duplicate_candidates.append(pb.DuplicateCandidate(
            report=f"reports/{cand.report_id}", category=enum_value(pb.Category, cand.category, "CATEGORY_"),
            incident_type=cand.incident_type, description=cand.description, address_text=cand.address_text,
            station_id=cand.station_id, receive_time=to_pb(cand.receive_time),
            distance_m=repeat.distance_m or 0.0, reason=repeat.reason, master=cand.report_id == p.master,
        ))
    return msg


def caller_contact_to_pb(r: Report) -> pb.CallerContact:
    """GetCallerContact's answer: the report's caller, unmasked."""
    return pb.CallerContact(report=r.name, caller=pb.Caller(phone_number=r.caller_phone, name=r.caller_name))


# The lists of a report that grow with its history: events leave them out
# (GetReport has them), so an event's size does not depend on how long the
# report has been handled.
EVENT_OMITS = ("timeline", "duplicates")
# The caller's personal data, which events never carry: their phone number and name. A service
# that must reach the caller reads them with GetCallerContact (recorded). Every feed reader gets
# every event, so what is left out here reaches no consumer, its inbox, its dead letters or the
# feed's retained history.
EVENT_PERSONAL_OMITS = ("caller",)


def report_event_pb(r: Report) -> pb.Report:
    """The report as events carry it: its current state without its timeline and duplicates, and
    without the caller's contact. Both the before and after forms of a ReportUpdated come from
    here, so `changed_fields` never names a field the event does not carry."""
    return without(report_to_pb(r), (*EVENT_OMITS, *EVENT_PERSONAL_OMITS))


def incident_reported_pb(r: Report, new_entries) -> pb.IncidentReported:
    """intake.IncidentReported: the new report and the timeline recorded with it."""
    msg = pb.IncidentReported(report=report_event_pb(r))
    timeline_to_pb(new_entries, msg.new_entries)
    return msg


def report_updated_pb(r: Report, action: str, *, before: pb.Report,
                      new_entries: list[TimelineEntry] | tuple[TimelineEntry, ...]) -> pb.ReportUpdated:
    """intake.ReportUpdated: the report as it now stands, what changed since `before` (an event form,
    from `report_event_pb`, of the report read before the change) and the entries the change appended."""
    after = report_event_pb(r)
    msg = pb.ReportUpdated(report=after, action=action, changed_fields=changed_fields(before, after))
    timeline_to_pb(new_entries, msg.new_entries)
    return msg


# -- consultations and the knowledge base -------------------------------------------------

def knowledge_entry_to_pb(e: Entry) -> pb.KnowledgeEntry:
    msg = pb.KnowledgeEntry(entry_id=e.entry_id, topic=e.topic, question=e.question, answer=e.answer,
                            keywords=list(e.keywords), source=e.source,
                            source_consultation=e.source_consultation)
    if e.create_time is not None:
        msg.create_time.CopyFrom(to_pb(e.create_time))
    return msg


def match_to_pb(m: Match) -> pb.ScoredKnowledgeEntry:
    return pb.ScoredKnowledgeEntry(entry=knowledge_entry_to_pb(m.entry), score=m.score)


def consultation_to_pb(c: Consultation) -> pb.Consultation:
    msg = pb.Consultation(
        name=c.name, report=f"reports/{c.report_id}", question=c.question,
        status=enum_value(pb.ConsultationStatus, c.status, "CONSULTATION_STATUS_"), topic=c.topic, answer=c.answer,
        knowledge_entry_id=c.entry_id, score=c.score, answered_at_once=c.answered_at_once, expert=c.expert,
        expert_name=c.expert_name, station_id=c.station_id,
        suggestions=[
            pb.ScoredKnowledgeEntry(entry=pb.KnowledgeEntry(entry_id=s["entry_id"], topic=s.get("topic", ""),
                                                            question=s.get("question", ""),
                                                            answer=s.get("answer", "")),
                                    score=s["score"])
            for s in c.suggestions
        ],
    )
    for field, value in (("create_time", c.create_time), ("claim_time", c.claim_time),
                         ("answer_time", c.answer_time)):
        if value is not None:
            getattr(msg, field).CopyFrom(to_pb(value))
    return msg


def fill_handling(msg: pb.Report, r) -> None:
    """The report's consultation, duplicates, merge reason and follow-up links."""
    if r.consultation is not None:
        msg.consultation.CopyFrom(consultation_to_pb(r.consultation))
    msg.duplicates.extend(f"reports/{d}" for d in r.duplicates)
    msg.merge_reason = r.merge_reason
    msg.dispatch_case = r.dispatch_case
    msg.work_order = r.work_order
    msg.satisfaction_comment = r.satisfaction_comment


# -- places ---------------------------------------------------------------------------------

def address_to_pb(a: Address) -> pb.Address:
    return pb.Address(
        address_code=a.code, full_address=a.full_address, district=a.district, street=a.street,
        community=a.community, road=a.road, house_number=a.house_number, building=a.building,
        point=common_pb2.GeoPoint(longitude=a.lon, latitude=a.lat), station_id=a.station_id, grid_id=a.grid_id,
    )


def address_match_to_pb(m: AddressMatch) -> pb.AddressMatch:
    msg = pb.AddressMatch(method=enum_value(pb.AddressMatchMethod, m.method, "ADDRESS_MATCH_METHOD_"),
                          confidence=m.confidence)
    if m.address is not None:
        msg.address.CopyFrom(address_to_pb(m.address))
    return msg


def incident_type_to_pb(t: TaxonomyEntry) -> pb.IncidentType:
    return pb.IncidentType(
        name=f"incidentTypes/{t.code}", code=t.code, display_name=t.label,
        category=enum_value(pb.Category, t.category, "CATEGORY_"),
        category_display_name=CATEGORY_LABELS.get(t.category, t.category), group=t.group,
        default_priority=t.default_priority, life_threatening=t.life_threatening,
    )


def station_to_pb(s: StationArea, grids: list[GridArea]) -> pb.Station:
    return pb.Station(
        name=f"stations/{s.station_id}", station_id=s.station_id, display_name=s.name, district=s.district,
        headquarters=common_pb2.GeoPoint(longitude=s.hq_lon, latitude=s.hq_lat),
        boundary_geojson=json.dumps(s.boundary.__geo_interface__, ensure_ascii=False),
        grids=[
            pb.Grid(grid_id=g.grid_id, display_name=g.name, arrival_target_seconds=g.arrival_target_seconds,
                    boundary_geojson=json.dumps(g.boundary.__geo_interface__))
            for g in grids
        ],
    )


def jurisdiction_to_pb(located) -> pb.Jurisdiction:
    return pb.Jurisdiction(
        station_id=located.station_id, station_name=located.station_name, grid_id=located.grid_id,
        district=located.district, border_case=located.border_case, distance_m=located.distance_m,
        shared_station_ids=located.shared_station_ids,
    )


def scored_addresses_to_pb(hits) -> pb.SearchAddressesResponse:
    return pb.SearchAddressesResponse(results=[
        pb.ScoredAddress(address=address_to_pb(a), score=score,
                         method=enum_value(pb.AddressMatchMethod, method, "ADDRESS_MATCH_METHOD_"))
        for a, score, method in hits
    ])


# -- statistics -----------------------------------------------------------------------------

def _figures_into(msg, f) -> None:
    msg.reports = f.reports
    msg.answered_within_3s = f.answered_share
    msg.handed_off_within_30s = f.handed_off_share
    msg.merged = f.merged
    msg.repeat_report_rate = f.repeat_rate


def statistics_to_pb(s: Statistics) -> pb.IntakeStatistics:
    out = pb.IntakeStatistics(reports=s.total.reports, repeat_report_rate=s.total.repeat_rate,
                              answered_within_3s=s.total.answered_share,
                              handed_off_within_30s=s.total.handed_off_share, merged=s.total.merged)
    for channel, f in s.channels.items():
        out.channels.add(channel=enum_value(pb.Channel, channel, "CHANNEL_"), reports=f.reports,
                         answered_within_3s=f.answered_share, handed_off_within_30s=f.handed_off_share,
                         answered=f.answered, police_reports=f.police, handed_off=f.handed_off,
                         merged=f.merged, repeat_report_rate=f.repeat_rate)
    for hour, f in s.hours:
        bucket = out.hours.add(hour_start=to_pb(hour))
        _figures_into(bucket, f)
    for station, f in s.stations.items():
        bucket = out.stations.add(station_id=station)
        _figures_into(bucket, f)
    rated = sum(s.satisfaction.values())
    counts = {k: s.satisfaction.get(k, 0) for k in RATINGS}
    out.satisfaction.CopyFrom(pb.SatisfactionStatistics(
        rated=rated, satisfied=counts["SATISFIED"], basically_satisfied=counts["BASICALLY_SATISFIED"],
        unsatisfied=counts["UNSATISFIED"], satisfied_rate=share(counts["SATISFIED"], rated),
        basically_satisfied_rate=share(counts["BASICALLY_SATISFIED"], rated),
        unsatisfied_rate=share(counts["UNSATISFIED"], rated),
        satisfaction_rate=share(counts["SATISFIED"] + counts["BASICALLY_SATISFIED"], rated)))
    out.satisfied_rate = out.satisfaction.satisfied_rate
    c = s.consultations
    out.consultations.CopyFrom(pb.ConsultationStatistics(
        consultations=c["consultations"], answered_at_once=c["answered_at_once"],
        answered_by_expert=c["answered_by_expert"], waiting=c["waiting"],
        answered_at_once_rate=share(c["answered_at_once"], c["consultations"])))
    return out


# -- what the dispatch and referral feeds say of a report ------------------------------------

def case_news(case: dispatch_pb.DispatchCase) -> CaseNews:
    return CaseNews(case_name=case.name, report_name=case.report, closed=case.status in (dispatch_pb.CASE_STATUS_CLOSED, dispatch_pb.CASE_STATUS_CANCELLED))


def assignment_news(payload: dispatch_pb.AssignmentChanged) -> AssignmentNews:
    a = payload.assignment
    return AssignmentNews(case_name=payload.case_name, unit=a.unit,
                          accepted=a.state == dispatch_pb.ASSIGNMENT_STATE_ACCEPTED,
                          accept_time=from_pb(a.accept_time) if a.HasField("accept_time") else None,
                          on_scene=a.state == dispatch_pb.ASSIGNMENT_STATE_ON_SCENE,
                          arrive_time=from_pb(a.arrive_time) if a.HasField("arrive_time") else None)


def work_order_news(payload) -> WorkOrderNews:
    """referral.WorkOrderCreated or WorkOrderUpdated."""
    order = payload.work_order
    return WorkOrderNews(
        work_order=order.name, report_name=order.report,
        from_110_report=order.source == referral_pb.WORK_ORDER_SOURCE_REPORT_110,
        transferred_to_110=order.status == referral_pb.WORK_ORDER_STATUS_TRANSFERRED_TO_110,
        joint_rescue=order.joint_rescue, closed=order.status == referral_pb.WORK_ORDER_STATUS_CLOSED,
        created=isinstance(payload, referral_pb.WorkOrderCreated),
    )


# -- the events intake publishes ---------------------------------------------------------------

def event_to_message(event: DomainEvent) -> tuple[str, str, object]:
    """A domain event as its outbox message: (event type, subject, payload)."""
    if isinstance(event, ReportUpdated):
        return "intake.ReportUpdated", event.report.name, report_updated_pb(
            event.report, event.action, before=report_event_pb(event.before), new_entries=event.new_entries)
    if isinstance(event, IncidentReported):
        return "intake.IncidentReported", event.report.name, incident_reported_pb(event.report, event.new_entries)
    if isinstance(event, KnowledgeEntryAdded):
        return ("intake.KnowledgeEntryAdded", f"knowledge/{event.entry.entry_id}",
                pb.KnowledgeEntryAdded(entry=knowledge_entry_to_pb(event.entry)))
    raise TypeError(f"intake publishes no {type(event).__name__}")
