"""ScoringService gRPC servicer: validate, call a handler (in a unit of work) or a query, map the answer.

Who sees what follows the caller's jurisdiction (services.runtime.policy):
the city's command and service see everything; a station chief or legal
officer their station's; an officer only their own score, entries and
warnings (JWT sub = police number); a legal officer adds reviews. Anyone
else is refused.
"""
from __future__ import annotations

from datetime import datetime

from smart110.scoring.v1 import scoring_service_pb2 as pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound, PermissionDenied
from services.runtime.policy import current_jurisdiction
from services.runtime.timeutil import from_pb, to_pb
from services.runtime.validation import Violations, decode_page_token, name_id, resource_id, time_keyset

from . import domain, handlers, mapping, queries
from .domain import money

STATION_SEEING = ("station_chief", "legal_officer")


def _denied(what: str) -> PermissionDenied:
    return PermissionDenied(f"not allowed to see {what}", reason="OUT_OF_SCOPE")


def _scope() -> tuple[str, str]:
    """("all", ""), ("station", id) or ("officer", id) for the caller, from the jurisdiction the access
    table gave it; refuses anyone else."""
    ctx, j = auth.current(), current_jurisdiction()
    if j.everything:
        return "all", ""
    if ctx.has_role(*STATION_SEEING) and len(j.stations) == 1:
        return "station", next(iter(j.stations))
    if ctx.has_role("officer") and ctx.subject:
        return "officer", ctx.subject
    raise PermissionDenied("the token names no station or officer to scope this to", reason="OUT_OF_JURISDICTION")


def _narrow(officer_id: str, station_id: str) -> tuple[str, str]:
    """List filters narrowed to what the caller may see; asking for more is refused."""
    kind, who = _scope()
    if kind == "station":
        if station_id and station_id != who:
            raise _denied(f"station {station_id}")
        return officer_id, who
    if kind == "officer":
        if officer_id and officer_id != who:
            raise _denied(f"officer {officer_id}")
        return who, station_id
    return officer_id, station_id


def _period(v: Violations, start_pb, end_pb, now: datetime) -> tuple[datetime, datetime]:
    """The requested period; the current calendar month when neither end is given."""
    start, end = from_pb(start_pb), from_pb(end_pb)
    d_start, d_end = domain.default_period(now)
    if start is None and end is None:
        start, end = d_start, d_end
    elif start is None:
        start = end - (d_end - d_start)
    elif end is None:
        end = start + (d_end - d_start)
    v.check(end > start, "end_time", "must be after start_time")
    v.check((end - start).days <= 3660, "end_time", "the period may be at most 10 years")
    return start, end


def _score_name(name: str, v: Violations) -> tuple[str, str]:
    """'officers/{id}/score' -> (officer_id, ""); 'stations/{id}/score' -> ("", station_id)."""
    parts = name.split("/")
    if len(parts) == 3 and parts[2] == "score" and parts[1] and parts[0] in ("officers", "stations"):
        return (parts[1], "") if parts[0] == "officers" else ("", parts[1])
    v.add("name", "must look like officers/{officer_id}/score or stations/{station_id}/score")
    return "", ""


GRANULARITIES = {pb.GRANULARITY_DAY: "DAY", pb.GRANULARITY_WEEK: "WEEK", pb.GRANULARITY_MONTH: "MONTH"}


class ScoringServicer(pb_grpc.ScoringServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    # -- ledger ---------------------------------------------------------------------
    def ListLedgerEntries(self, request, context):
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("t", "id"))
        after = time_keyset(token, v)
        start, end = from_pb(request.occur_time_start), from_pb(request.occur_time_end)
        if start and end:
            v.check(end > start, "occur_time_end", "must be after occur_time_start")
        v.check(request.dimension in pb.Dimension.values(), "dimension", "is not a known dimension")
        v.raise_if_any()
        officer_id, station_id = _narrow(request.officer_id, request.station_id)
        with read_snapshot(self.rt.engine) as conn:
            page = queries.ledger_entries_page(
                conn, size=size, after=after, officer_id=officer_id, station_id=station_id,
                dimension=enum_name(pb.Dimension, request.dimension, "DIMENSION_"),
                reason_code=request.reason_code, subject=request.subject,
                rule_set_version=request.rule_set_version, start=start, end=end)
        return pb.ListLedgerEntriesResponse(
            ledger_entries=[mapping.entry_to_pb(line.entry, line.reversed_by) for line in page.items],
            next_page_token=page.next_page_token)

    def GetLedgerEntry(self, request, context):
        entry_id = name_id(request.name, "ledgerEntries")
        kind, who = _scope()
        with read_snapshot(self.rt.engine) as conn:
            line = queries.ledger_entry(conn, entry_id)
        if line is None:
            raise NotFound(request.name)
        e = line.entry
        if (kind == "station" and e.station_id != who) or (kind == "officer" and e.officer_id != who):
            raise _denied(request.name)
        return mapping.entry_to_pb(e, line.reversed_by)

    def ReverseLedgerEntry(self, request, context):
        ctx = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        entry_id = resource_id(request.name, "ledgerEntries", v)
        v.require(request.reason.strip(), "reason", "is required: why the entry is corrected")
        corrected = money(request.corrected_points) if request.HasField("corrected_points") else None
        if corrected is not None:
            v.check(corrected != 0, "corrected_points", "must not be 0; leave it out to cancel the entry")
            v.check(abs(corrected) <= 100, "corrected_points", "must be between -100 and 100")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "ReverseLedgerEntry", request, pb.ReverseLedgerEntryResponse,
            lambda uow: handlers.reverse_entry(uow, entry_id=entry_id, reason=request.reason.strip(),
                                               corrected_points=corrected),
            actor=ctx, respond=mapping.correction_to_pb)

    # -- reviews ----------------------------------------------------------------------
    def CreateReview(self, request, context):
        ctx = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        r = request.review
        v.require(request.HasField("review"), "review")
        resource_id(r.case_name, "cases", v, "review.case_name")
        v.check(r.evidence != 0, "review.evidence", "is required")
        v.check(r.procedure != 0, "review.procedure", "is required")
        v.check(r.classification != 0, "review.classification", "is required")
        if r.evidence == pb.EVIDENCE_VERDICT_MISSING:
            v.require(list(r.missing_evidence), "review.missing_evidence", "must say what is missing")
        if r.procedure == pb.PROCEDURE_VERDICT_FLAWED:
            v.require(list(r.procedure_flaws), "review.procedure_flaws", "must name the flaws")
        if r.classification == pb.CLASSIFICATION_VERDICT_WRONG:
            v.require(r.corrected_incident_type, "review.corrected_incident_type", "must give the right type")
        v.check(len(set(r.officer_ids)) == len(r.officer_ids), "review.officer_ids", "must not repeat an officer")
        v.check(len(r.comment) <= 2000, "review.comment", "must be at most 2000 characters")
        v.raise_if_any()
        findings = mapping.findings_from_pb(r)
        return self.rt.idempotent_work(
            "CreateReview", request, pb.Review,
            lambda uow: handlers.create_review(uow, case_name=r.case_name, officer_ids=list(r.officer_ids),
                                               findings=findings),
            actor=ctx, respond=mapping.review_to_pb)

    def GetReview(self, request, context):
        review_id = name_id(request.name, "reviews")
        kind, who = _scope()
        with read_snapshot(self.rt.engine) as conn:
            review = queries.review(conn, review_id)
        if review is None:
            raise NotFound(request.name)
        if (kind == "station" and review.station_id != who) or (kind == "officer" and who not in review.officer_ids):
            raise _denied(request.name)
        return mapping.review_to_pb(review)

    def ListReviews(self, request, context):
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        if request.case_name:
            resource_id(request.case_name, "cases", v, "case_name")
        v.raise_if_any()
        officer_id, station_id = _narrow(request.officer_id, request.station_id)
        with read_snapshot(self.rt.engine) as conn:
            page = queries.reviews_page(
                conn, size=size, after=after, case_name=request.case_name, officer_id=officer_id,
                station_id=station_id,
                start=from_pb(request.create_time_start) if request.HasField("create_time_start") else None,
                end=from_pb(request.create_time_end) if request.HasField("create_time_end") else None)
        return pb.ListReviewsResponse(reviews=[mapping.review_to_pb(r) for r in page.items],
                                      next_page_token=page.next_page_token)

    # -- rule sets --------------------------------------------------------------------
    def CreateRuleSet(self, request, context):
        ctx = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        rs = request.rule_set
        v.require(request.HasField("rule_set"), "rule_set")
        v.check(rs.HasField("effective_time"), "rule_set.effective_time", "is required")
        rules = [mapping.rule_from_pb(r) for r in rs.rules]
        for f, d in domain.rule_violations(rules, "rule_set.rules"):
            v.add(f, d)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "CreateRuleSet", request, pb.RuleSet,
            lambda uow: handlers.create_rule_set(uow, description=rs.description, rules=rules,
                                                 effective_time=from_pb(rs.effective_time)),
            actor=ctx, respond=mapping.rule_set_to_pb)

    def GetRuleSet(self, request, context):
        v = Violations()
        version = _version(resource_id(request.name, "ruleSets", v), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            rs = queries.rule_set(conn, version)
        if rs is None:
            raise NotFound(request.name)
        return mapping.rule_set_to_pb(rs)

    def ListRuleSets(self, request, context):
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("v",))
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            page = queries.rule_sets_page(conn, size=size, before=int(token["v"]) if token else None,
                                          published_only=request.published_only)
        return pb.ListRuleSetsResponse(rule_sets=[mapping.rule_set_to_pb(r) for r in page.items],
                                       next_page_token=page.next_page_token)

    def PublishRuleSet(self, request, context):
        ctx = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        version = _version(resource_id(request.name, "ruleSets", v), v)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "PublishRuleSet", request, pb.RuleSet, lambda uow: handlers.publish_rule_set(uow, version=version),
            actor=ctx, respond=mapping.rule_set_to_pb)

    # -- scores -----------------------------------------------------------------------
    def _score_subject(self, conn, officer_id: str, station_id: str, name: str) -> str:
        """Checks the subject exists and the caller may see it; returns the station scope for a chief."""
        kind, who = _scope()
        if officer_id:
            if not queries.officer_known(conn, officer_id):
                raise NotFound(f"officers/{officer_id}", f"officer {officer_id} has no scoring record")
            if kind == "officer" and officer_id != who:
                raise _denied(name)
            if kind == "station":
                if who not in queries.officer_stations(conn, officer_id):
                    raise _denied(name)
                return who
            return ""
        if not queries.station_known(conn, station_id):
            raise NotFound(f"stations/{station_id}")
        if kind == "officer" or (kind == "station" and station_id != who):
            raise _denied(name)
        return ""

    def _get_score(self, request):
        v = Violations()
        officer_id, station_id = _score_name(request.name, v)
        start, end = _period(v, request.start_time, request.end_time, self.rt.clock())
        v.check(request.trend_granularity in pb.Granularity.values(), "trend_granularity", "is not known")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            scope = self._score_subject(conn, officer_id, station_id, request.name)
            score = queries.score(conn, officer_id=officer_id, station_id=station_id, start=start, end=end,
                                  granularity=GRANULARITIES.get(request.trend_granularity, ""), station_scope=scope)
        return mapping.score_to_pb(score)

    def GetOfficerScore(self, request, context):
        if not request.name.startswith("officers/"):
            v = Violations()
            v.add("name", "must look like officers/{officer_id}/score")
            v.raise_if_any()
        return self._get_score(request)

    def GetStationScore(self, request, context):
        if not request.name.startswith("stations/"):
            v = Violations()
            v.add("name", "must look like stations/{station_id}/score")
            v.raise_if_any()
        return self._get_score(request)

    def ListRankings(self, request, context):
        v = Violations()
        v.check(request.scope in (pb.RANKING_SCOPE_OFFICERS, pb.RANKING_SCOPE_STATIONS), "scope",
                "is required: RANKING_SCOPE_OFFICERS or RANKING_SCOPE_STATIONS")
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("o",))
        start, end = _period(v, request.start_time, request.end_time, self.rt.clock())
        v.check(request.dimension in pb.Dimension.values(), "dimension", "is not a known dimension")
        v.raise_if_any()
        kind, who = _scope()
        scope = "OFFICERS" if request.scope == pb.RANKING_SCOPE_OFFICERS else "STATIONS"
        station_id = request.station_id
        if kind == "station" and scope == "OFFICERS":
            if station_id and station_id != who:
                raise _denied(f"the ranking of station {station_id}")
            station_id = who
        with read_snapshot(self.rt.engine) as conn:
            if station_id and not queries.station_known(conn, station_id):
                raise NotFound(f"stations/{station_id}")
            page = queries.rankings_page(conn, scope=scope, station_id=station_id if scope == "OFFICERS" else "",
                                         dimension=enum_name(pb.Dimension, request.dimension, "DIMENSION_"),
                                         start=start, end=end, size=size, offset=int(token["o"]) if token else 0)
        return pb.ListRankingsResponse(rankings=[mapping.ranking_to_pb(r) for r in page.items],
                                       next_page_token=page.next_page_token)

    def ExplainScore(self, request, context):
        v = Violations()
        officer_id, station_id = _score_name(request.name, v)
        start, end = _period(v, request.start_time, request.end_time, self.rt.clock())
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.check(request.dimension in pb.Dimension.values(), "dimension", "is not a known dimension")
        v.raise_if_any()
        dimension = enum_name(pb.Dimension, request.dimension, "DIMENSION_")
        with read_snapshot(self.rt.engine) as conn:
            scope = self._score_subject(conn, officer_id, station_id, request.name)
            score = queries.score(conn, officer_id=officer_id, station_id=station_id, start=start, end=end,
                                  station_scope=scope)
            flt = dict(officer_id=officer_id, station_id=station_id or scope, dimension=dimension, start=start,
                       end=end)
            page = queries.ledger_entries_page(conn, size=size, after=after, **flt)
            reasons = queries.reasons(conn, **flt)
        return pb.ScoreExplanation(
            score=mapping.score_to_pb(score), reasons=mapping.reasons_to_pb(reasons),
            ledger_entries=[mapping.entry_to_pb(line.entry, line.reversed_by) for line in page.items],
            next_page_token=page.next_page_token)

    def RecomputeScore(self, request, context):
        v = Violations()
        officer_id, station_id = _score_name(request.name, v)
        version = _version(resource_id(request.rule_set, "ruleSets", v, "rule_set"), v, "rule_set")
        start, end = _period(v, request.start_time, request.end_time, self.rt.clock())
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            scope = self._score_subject(conn, officer_id, station_id, request.name)
            rule_set = queries.rule_set(conn, version)
            if rule_set is None:
                raise NotFound(request.rule_set)
            recomputed = queries.recompute(conn, rule_set=rule_set, officer_id=officer_id, station_id=station_id,
                                           start=start, end=end, station_scope=scope)
        return mapping.recomputed_to_pb(recomputed)

    # -- warnings -----------------------------------------------------------------------
    def GetWarning(self, request, context):
        warning_id = name_id(request.name, "warnings")
        kind, who = _scope()
        with read_snapshot(self.rt.engine) as conn:
            warning = queries.warning(conn, warning_id)
        if warning is None:
            raise NotFound(request.name)
        if (kind == "station" and warning.station_id != who) or (kind == "officer" and warning.officer_id != who):
            raise _denied(request.name)
        return mapping.warning_to_pb(warning, with_timeline=True)

    def ListWarnings(self, request, context):
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.check(request.kind in pb.WarningKind.values(), "kind", "is not a known kind")
        v.check(request.status in pb.WarningStatus.values(), "status", "is not a known status")
        if request.case_name:
            resource_id(request.case_name, "cases", v, "case_name")
        v.raise_if_any()
        officer_id, station_id = _narrow(request.officer_id, request.station_id)
        with read_snapshot(self.rt.engine) as conn:
            page = queries.warnings_page(
                conn, size=size, after=after, kind=enum_name(pb.WarningKind, request.kind, "WARNING_KIND_"),
                status=enum_name(pb.WarningStatus, request.status, "WARNING_STATUS_"), officer_id=officer_id,
                station_id=station_id, case_name=request.case_name,
                start=from_pb(request.raise_time_start) if request.HasField("raise_time_start") else None,
                end=from_pb(request.raise_time_end) if request.HasField("raise_time_end") else None)
        return pb.ListWarningsResponse(warnings=[mapping.warning_to_pb(w) for w in page.items],
                                       next_page_token=page.next_page_token)

    def GetWarningStatistics(self, request, context):
        v = Violations()
        start, end = _period(v, request.start_time, request.end_time, self.rt.clock())
        v.check(request.granularity in pb.Granularity.values(), "granularity", "is not known")
        v.check(all(k in pb.WarningKind.values() and k != 0 for k in request.kinds), "kinds",
                "must be known warning kinds")
        v.raise_if_any()
        kind, who = _scope()
        station_id = request.station_id
        if kind == "station":
            if station_id and station_id != who:
                raise _denied(f"station {station_id}")
            station_id = who
        granularity = GRANULARITIES.get(request.granularity, "WEEK")
        with read_snapshot(self.rt.engine) as conn:
            if station_id and not queries.station_known(conn, station_id):
                raise NotFound(f"stations/{station_id}")
            stations = queries.warning_statistics(
                conn, start=start, end=end, station_id=station_id, granularity=granularity,
                kinds=[enum_name(pb.WarningKind, k, "WARNING_KIND_") for k in request.kinds])
        return pb.WarningStatistics(stations=mapping.warning_statistics_to_pb(stations), start_time=to_pb(start),
                                    end_time=to_pb(end), granularity=request.granularity or pb.GRANULARITY_WEEK)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)


def _version(raw: str, v: Violations, field: str = "name") -> int:
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        v.add(field, "must look like ruleSets/{version} with a version of 1 or more")
        return 0
    return int(raw)
