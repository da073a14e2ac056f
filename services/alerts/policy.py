"""Who may call each alerts RPC (预警): the access table the server consults before a handler runs.

Which alerts a caller sees (their station's, their district's, the city's) is decided per alert
by the alert's routing; this table says who may call at all.
"""
from services.runtime.policy import ALL_ROLES, SERVICE, Access, Policy

SERVICE_NAME = "smart110.alerts.v1.AlertsService"
ANYONE = tuple(ALL_ROLES)
RULE_EDITORS = ("commander", "supervisor", SERVICE)
RESPONDERS = ("officer", "station_chief", "commander", "dispatcher", "call_taker", "supervisor", SERVICE)
SILENCERS = ("commander", "station_chief", "supervisor", SERVICE)
OBLIGATION_EDITORS = ("station_chief", "commander", "supervisor", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "CreateRule": Access(*RULE_EDITORS),
    "GetRule": Access(*ANYONE),
    "ListRules": Access(*ANYONE),
    "UpdateRule": Access(*RULE_EDITORS),
    "DeleteRule": Access(*RULE_EDITORS),
    "GetAlert": Access(*ANYONE),
    "ListAlerts": Access(*ANYONE),
    "AcknowledgeAlert": Access(*RESPONDERS),
    "ResolveAlert": Access(*RESPONDERS),
    "CreateSilence": Access(*SILENCERS),
    "ListSilences": Access(*ANYONE),
    "DeleteSilence": Access(*SILENCERS),
    "IngestSignal": Access("commander", "dispatcher", SERVICE),
    "Subscribe": Access(*ANYONE),
    "GetHeatMap": Access(*ANYONE),
    "ExportCap": Access(*ANYONE),
    "GetCapMessage": Access(*ANYONE),
    "GetCapFeed": Access(*ANYONE),
    "CreateObligation": Access(*OBLIGATION_EDITORS),
    "GetObligation": Access(*ANYONE),
    "ListObligations": Access(*ANYONE),
    "CompleteObligation": Access(*OBLIGATION_EDITORS, "officer"),
    "StreamEvents": Access(SERVICE, scoped=False),
})}
