"""Who may call each dispatch RPC (派警/处警): the access table the server consults before a handler runs.

Finer checks stay with the use cases: an officer acts only on his own unit's assignments, a station
chief keeps only his station's roster.
"""
from services.runtime.policy import POLICE_ROLES, SERVICE, Access, Policy

SERVICE_NAME = "smart110.dispatch.v1.DispatchService"
POLICE = (*POLICE_ROLES, SERVICE)
COMMAND = ("dispatcher", "commander", SERVICE)
# The unit's own officers, and the command that dispatched them.
CREW = ("officer", "station_chief", "dispatcher", "commander", SERVICE)
# Who closes or cancels a case: the 110 centre's command, or the chief of the case's own station.
CLOSING = ("dispatcher", "commander", "station_chief")
GRANT_DECIDERS = ("station_chief", "legal_officer", "commander")
# Who sees a caller's name and phone (号码、姓名) where dispatch shows them (the EIDO export): the
# people intake shows them to in GetReport (services/intake/api.py, OPERATOR_ROLES); dispatch keeps
# no caller contact and reads it from intake for them.
PERSONAL_DATA_ROLES = ("call_taker", "dispatcher", "commander", "station_chief")
SUPERVISING = ("commander", "district_commander", "supervisor", "dispatcher", "station_chief", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "GetCase": Access(*POLICE, "supervisor"),
    "ListCases": Access(*POLICE, "supervisor"),
    # The case as a NENA EIDO document for another system to take it over: whoever may read it.
    "ExportCaseEido": Access(*POLICE, "supervisor"),
    "RecommendUnits": Access("dispatcher", "commander", "call_taker", "station_chief", SERVICE),
    "OfferCase": Access(*COMMAND),
    "EscalateCase": Access("commander", "dispatcher", "station_chief"),
    # The use case keeps a station chief to their own station's cases.
    "CloseCase": Access(*CLOSING),
    "CancelCase": Access(*CLOSING),
    # The chief of the case's station reviews (the use case checks the station); the centre may too.
    "ReviewFollowUp": Access(*CLOSING),
    "RateCase": Access("call_taker", "dispatcher", "supervisor", "hotline_agent", SERVICE),
    "GetAssignment": Access(*POLICE),
    "AcceptAssignment": Access(*CREW),
    "DeclineAssignment": Access(*CREW),
    "AdvanceAssignment": Access(*CREW),
    "ReportBack": Access(*CREW),
    # The unit's own officers or the command (the use case checks); read by whoever may read the case.
    "UploadEvidence": Access(*CREW),
    "DownloadEvidence": Access(*POLICE, "supervisor"),
    "WatchAssignments": Access(*CREW),
    "GetUnit": Access(*POLICE),
    "ListUnits": Access(*POLICE, "supervisor"),
    "UpdateUnit": Access(*CREW),
    # The unit's own officers (the use case checks) or the command.
    "SetUnitStatus": Access(*CREW),
    "WatchUnits": Access("commander", "dispatcher", "district_commander", "station_chief", "supervisor", SERVICE),
    "CreateShift": Access("dispatcher", "commander", "station_chief", SERVICE),
    "ListShifts": Access(*POLICE),
    "ReportPositions": Access(*CREW),
    "ReportPosition": Access(*CREW),
    "GetSituation": Access("call_taker", "commander", "dispatcher", SERVICE, "station_chief", "supervisor"),
    "RequestStopPayment": Access("call_taker", "commander", "dispatcher", "station_chief"),
    "WatchCases": Access("commander", "dispatcher", SERVICE, "station_chief", "supervisor"),
    "GetFollowUpStats": Access(*SUPERVISING),
    "GetResponseCircleStats": Access(*SUPERVISING),
    "StreamEvents": Access(SERVICE, scoped=False),
    # Access grants bound to a case (权随案走): asked for by the police working the case, decided
    # by the case station's chief or legal officer (the use case checks the station) or the city's
    # command, overseen by supervision.
    "RequestAccessGrant": Access("officer", "station_chief", "legal_officer", "dispatcher"),
    "ApproveAccessGrant": Access(*GRANT_DECIDERS),
    "DenyAccessGrant": Access(*GRANT_DECIDERS),
    "RevokeAccessGrant": Access("officer", "dispatcher", *GRANT_DECIDERS),
    "ListAccessGrants": Access(*POLICE, "supervisor"),
    "GetAccessGrantStats": Access(*SUPERVISING, "legal_officer"),
})}
