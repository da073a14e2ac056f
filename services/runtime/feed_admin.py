"""FeedAdminService: operators list, replay and discard the events this service's feed consumers parked.

`app.serve` adds it to every service that consumes feeds. Only the `sre`
role (auth.OPERATOR_ROLE) may call it. Replays and discards are idempotent
on their request_id and audited on the dead-letter row: who (subject and
roles), when and why.
"""
from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from smart110.common.v1 import common_pb2, events_pb2
from smart110.common.v1 import feed_admin_pb2 as pb
from smart110.common.v1 import feed_admin_pb2_grpc as pb_grpc

from . import auth
from .policy import Access, Policy
from .consumer import DISCARDED, PARKED, REPLAYED, discard_in, list_parked, replay_parked
from .errors import FailedPrecondition, NotFound
from .timeutil import to_pb
from .validation import Violations, decode_page_token, paginate

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FeedAdminService"].full_name
# Operators only; not scoped to a jurisdiction (they see events, not cases).
POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "ListParkedEvents": Access(auth.OPERATOR_ROLE, scoped=False),
    "ReplayParkedEvent": Access(auth.OPERATOR_ROLE, scoped=False),
    "DiscardParkedEvent": Access(auth.OPERATOR_ROLE, scoped=False),
})}

COLLECTION = "feedConsumers"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FeedAdminService"].full_name
REPLAY = f"/{SERVICE_NAME}/ReplayParkedEvent"
DISCARD = f"/{SERVICE_NAME}/DiscardParkedEvent"
REASON_MAX = 2000
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")
STATUSES = {PARKED: pb.PARKED_EVENT_STATUS_PARKED, REPLAYED: pb.PARKED_EVENT_STATUS_REPLAYED,
            DISCARDED: pb.PARKED_EVENT_STATUS_DISCARDED}
_STATUS_NAMES = {v: k for k, v in STATUSES.items()}


def parked_to_pb(service: str, row) -> pb.ParkedEvent:
    message = pb.ParkedEvent(
        name=f"{COLLECTION}/{service}/parkedEvents/{row.event_id}", source=row.source,
        event=events_pb2.Event.FromString(row.payload), error=row.error, attempts=row.attempts,
        status=STATUSES.get(row.status, pb.PARKED_EVENT_STATUS_UNSPECIFIED), park_time=to_pb(row.park_time))
    if row.resolve_time is not None:
        message.resolution.CopyFrom(common_pb2.AuditStamp(
            actor=row.resolved_by or "", roles=list(row.resolved_roles or []), time=to_pb(row.resolve_time),
            reason=row.resolve_reason or ""))
    return message


class FeedAdminServicer(pb_grpc.FeedAdminServiceServicer):
    def __init__(self, rt):
        self.rt = rt
        self.service = rt.settings.service
        self.table = rt.tables.dead_letters

    # -- input -------------------------------------------------------------------
    def _service_path(self, value: str, v: Violations, field: str, shape: str) -> bool:
        """Whether `value` names this service (recording why not)."""
        if not value:
            v.add(field, f"is required, as {shape}")
            return False
        parts = value.split("/")
        if parts[0] != COLLECTION or len(parts) < 2 or not parts[1]:
            v.add(field, f"must look like {shape}")
            return False
        if parts[1] != self.service:
            v.add(field, f"names the {parts[1]} service, but this is the {self.service} service "
                         f"(through the gateway: the header smart110-service: {parts[1]})")
            return False
        return True

    def _event_id(self, name: str, v: Violations) -> str:
        shape = f"{COLLECTION}/{{service}}/parkedEvents/{{event_id}}"
        if not self._service_path(name, v, "name", shape):
            return ""
        parts = name.split("/")
        if len(parts) != 4 or parts[2] != "parkedEvents":
            v.add("name", f"must look like {shape}")
            return ""
        try:
            return str(uuid.UUID(parts[3]))
        except ValueError:
            v.add("name", "must end in an event id (a UUID)")
            return ""

    @staticmethod
    def _reason(reason: str, v: Violations, required: bool) -> str:
        text = reason.strip()
        if required:
            v.require(text, "reason", "is required: why the event may go unapplied, for the record")
        v.check(len(text) <= REASON_MAX, "reason", f"must be at most {REASON_MAX} characters")
        return text

    def _get(self, conn, event_id: str):
        row = conn.execute(select(self.table).where(self.table.c.event_id == event_id)).first()
        if row is None:
            raise NotFound(f"{COLLECTION}/{self.service}/parkedEvents/{event_id}")
        return row

    # -- RPCs --------------------------------------------------------------------
    def ListParkedEvents(self, request: pb.ListParkedEventsRequest, context) -> pb.ListParkedEventsResponse:
        auth.current().require_role(auth.OPERATOR_ROLE)
        v = Violations()
        self._service_path(request.parent, v, "parent", f"{COLLECTION}/{{service}}")
        size = v.page_size(request.page_size)
        if request.source:
            v.check(bool(_SOURCE.match(request.source)), "source", "must be a service name, e.g. intake")
        token = decode_page_token(request.page_token, v, ("src", "seq"))
        v.raise_if_any()
        after = (token["src"], token["seq"]) if token else None
        rows = list_parked(self.rt.engine, self.table, source=request.source or None,
                           status=_STATUS_NAMES.get(request.status), after=after, limit=size + 1)
        page, next_token = paginate(rows, size, lambda r: {"src": r.source, "seq": r.sequence})
        return pb.ListParkedEventsResponse(parked_events=[parked_to_pb(self.service, r) for r in page],
                                           next_page_token=next_token)

    def ReplayParkedEvent(self, request: pb.ReplayParkedEventRequest, context) -> pb.ParkedEvent:
        who = auth.current()
        who.require_role(auth.OPERATOR_ROLE)
        v = Violations()
        v.request_id(request.request_id)
        event_id = self._event_id(request.name, v)
        reason = self._reason(request.reason, v, required=False)
        v.raise_if_any()
        idem = self.rt.idempotency
        with self.rt.engine.begin() as conn:
            if idem.seen(conn, REPLAY, request):
                return idem.claim(conn, REPLAY, request, pb.ParkedEvent)
            source = self._get(conn, event_id).source
        consumer = next((c for c in self.rt.consumers if c.source == source), None)
        if consumer is None:
            raise FailedPrecondition(f"the {self.service} service no longer consumes the {source} feed",
                                     reason="FEED_NOT_CONSUMED")

        def record(conn) -> pb.ParkedEvent:
            response = parked_to_pb(self.service, self._get(conn, event_id))
            idem.claim(conn, REPLAY, request, pb.ParkedEvent)
            idem.remember(conn, REPLAY, request, response)
            return response

        try:
            return replay_parked(consumer, event_id, who.subject, roles=who.roles, reason=reason, within=record)
        except FailedPrecondition:
            # A concurrent retry with the same request_id replayed it first: its answer.
            with self.rt.engine.begin() as conn:
                if idem.seen(conn, REPLAY, request):
                    return idem.claim(conn, REPLAY, request, pb.ParkedEvent)
            raise

    def DiscardParkedEvent(self, request: pb.DiscardParkedEventRequest, context) -> pb.ParkedEvent:
        who = auth.current()
        who.require_role(auth.OPERATOR_ROLE)
        v = Violations()
        v.request_id(request.request_id)
        event_id = self._event_id(request.name, v)
        reason = self._reason(request.reason, v, required=True)
        v.raise_if_any()

        def work(conn) -> pb.ParkedEvent:
            self._get(conn, event_id)
            discard_in(conn, self.table, event_id, reason, who.subject, who.roles)
            return parked_to_pb(self.service, self._get(conn, event_id))

        return self.rt.idempotent(DISCARD, request, pb.ParkedEvent, work)


def registration(rt) -> tuple:
    """The (add_to_server, servicer, name) triple `create_server` takes."""
    return pb_grpc.add_FeedAdminServiceServicer_to_server, FeedAdminServicer(rt), SERVICE_NAME
