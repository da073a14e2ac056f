"""Dispatch's domain (派警/处警), by aggregate. Nothing here knows gRPC or SQL.

- `case`: the `DispatchCase` aggregate: its assignments and their lifecycle (派单 to 回告),
  its level (who follows it), its stop-payment hand-offs and its citizen follow-up (回访); it
  records `CaseCreated`, `AssignmentChanged`, `CaseUpdated` and `FollowUpFlagged`;
- `unit`: the `Unit` aggregate (static data, position, duty) and the duty roster (shifts); it
  records `UnitUpdated`;
- `stop_payment`: emergency stop-payment hand-offs (紧急止付): what the victim's words name, the
  delivery schedule and what the anti-fraud centre's answers do;
- `evidence`: evidence kept for a report-back (现场证据): the types and sizes taken;
- `grant`: access grants bound to a case (权随案走): the `AccessGrant` aggregate and the grant policy;
- `recommend`: the capability matrix and the ranking of units (警力推荐);
- `settings`: the settings and the service's `Context`.

Everything is importable from `services.dispatch.domain`.
"""
from services.runtime.model import DomainEvent, TimelineEntry

from .unit import (
    CITY_TZ, COMMAND_ROLES, EARTH_RADIUS_M, KIND_LABELS, MAX_FIX_AHEAD_S, REPORTABLE_STATUSES, ROSTER_ROLES,
    STATUS_LABELS, UNIT_FIELDS, PositionFix, Shift, Unit, UnitUpdated, authorize_roster, distance_m, duty_roster,
    entry, is_units_officer, may_act_for, officer_ids,
)
from .recommend import SEARCH_RADIUS_M, Matrix, Need, Recommendation, matrix, recommend, search
from .stop_payment import (
    BANKS, CENTRE_ACTOR, FINAL_STATES, FRAUD_TYPE, RESULT_LABELS, CentreError, Receipt, RetryPolicy, StopPayment,
    VictimContact, account_named, amount_fen, banks_named, mask_account, yuan,
)
from .case import (
    ACTIVE_STATUSES, ADVANCE_TARGETS, CANCEL_REASONS, CASE_STATUS_LABELS, DEESCALATE_ROLES, ENDED_OFFER,
    ESCALATE_ROLES, FINAL_STATUSES, WITHDRAWN,
    INITIAL_LEVEL_BY_PRIORITY, INITIAL_LEVEL_BY_TYPE, LEVEL_LABELS, LEVELS, MAX_COMMENT, OUTCOME_LABELS,
    RATE_ROLES, RATEABLE_STATUSES, RATED_ASSIGNMENT_STATES, ROLE_LABELS, SATISFACTION_LABELS, SPECIALIST_KINDS,
    SILENT_INSTRUCTION, STATE_LABELS, SYSTEM, TRANSITIONS, UNIT_STATUS_FOR, WAITING_STATUSES, Assignment,
    AssignmentChanged, Box, CaseCreated, CaseUpdated, DispatchCase, FollowUp, FollowUpFlagged, RatedOfficer,
    ReportFacts, UnitMove, authorize, can_move, case_status, community_matter, in_area, initial_level, levels_from, rank,
    seconds_between, view_of,
)
from .evidence import Evidence
from .grant import AccessGrant, auto_grant
from .settings import Context, DispatchSettings
