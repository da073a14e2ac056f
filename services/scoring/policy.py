"""Who may call each scoring RPC (执法办案积分): the access table the server consults before a handler runs.

Scores are scoped further by the use cases: an officer sees his own, a station's chief and legal
officer their station's, command the city's.
"""
from services.runtime.policy import SERVICE, Access, Policy

SERVICE_NAME = "smart110.scoring.v1.ScoringService"
READERS = ("commander", "station_chief", "legal_officer", "officer", SERVICE)
SUPERVISORS = ("commander", "station_chief", "legal_officer", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "ListLedgerEntries": Access(*READERS),
    "GetLedgerEntry": Access(*READERS),
    "ReverseLedgerEntry": Access("commander", "legal_officer", "station_chief", SERVICE),
    "CreateReview": Access("legal_officer", SERVICE),
    "GetReview": Access(*READERS),
    "ListReviews": Access(*READERS),
    "CreateRuleSet": Access("commander", SERVICE),
    "GetRuleSet": Access(*READERS),
    "ListRuleSets": Access(*READERS),
    "PublishRuleSet": Access("commander", SERVICE),
    "GetOfficerScore": Access(*READERS),
    "GetStationScore": Access(*READERS),
    "ListRankings": Access(*SUPERVISORS),
    "ExplainScore": Access(*READERS),
    "RecomputeScore": Access(*READERS),
    "GetWarning": Access(*READERS),
    "ListWarnings": Access(*READERS),
    "GetWarningStatistics": Access(*SUPERVISORS),
    "StreamEvents": Access(SERVICE, scoped=False),
})}
