"""Who may call each intake RPC (接警): the access table the server consults before a handler runs.

Finer checks stay with the use cases (the station of a report, the caller's own consultation).
"""
from services.runtime.policy import ALL_ROLES, POLICE_ROLES, SERVICE, Access, Policy

SERVICE_NAME = "smart110.intake.v1.IntakeService"
ANYONE = tuple(ALL_ROLES)
POLICE = (*POLICE_ROLES, SERVICE)
CALL_TAKING = ("call_taker", "commander", SERVICE)
READING = ("call_taker", "dispatcher", "commander", "district_commander", "station_chief", "legal_officer",
           "officer", SERVICE)
CONSULTATION_READERS = ("expert", "call_taker", "commander", "supervisor", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    # Reports come from every channel: phones, 12345's transfer, apps, partners' alarms.
    "ReportIncident": Access(*ANYONE, why="every channel files reports"),
    # Classification and duplicate candidates while a report is being taken: nothing is recorded.
    "PreviewReport": Access(*CALL_TAKING),
    "GetReport": Access(*READING),
    # Unmasked caller contact for another service (stop-payment, 12345 follow-up); each read is recorded.
    "GetCallerContact": Access(SERVICE, why="personal data for a service that must reach the caller, recorded"),
    "ListReports": Access("call_taker", "commander", "dispatcher", SERVICE, "station_chief"),
    "UpdateReport": Access("call_taker"),
    "AnswerReport": Access(*CALL_TAKING),
    "MergeReport": Access(*CALL_TAKING),
    "UnmergeReport": Access(*CALL_TAKING),
    "RateReport": Access("call_taker", "hotline_agent", "supervisor", SERVICE),
    # The gazetteer and the stations are reference data, not personal data.
    "LocateJurisdiction": Access(*ANYONE, scoped=False),
    "ListStations": Access(*ANYONE, scoped=False),
    "GetStation": Access(*ANYONE, scoped=False),
    "SearchAddresses": Access(*ANYONE, scoped=False),
    # The taxonomy (警情类型) every screen names types by.
    "ListIncidentTypes": Access(*ANYONE, scoped=False),
    "SearchKnowledge": Access(*ANYONE, scoped=False, why="即问即复: the knowledge base answers anyone at once"),
    "GetIntakeStatistics": Access("call_taker", "commander", SERVICE, "station_chief", "supervisor"),
    "ListConsultations": Access(*CONSULTATION_READERS),
    "GetConsultation": Access(*CONSULTATION_READERS),
    "ClaimConsultation": Access("expert"),
    "AnswerConsultation": Access("expert"),
    # The feed carries callers' reports: other services only.
    "StreamEvents": Access(SERVICE, scoped=False),
})}
