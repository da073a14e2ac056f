"""Referral's domain, by aggregate. Nothing here knows gRPC or SQL.

- `departments`: the 12345 catalogue (departments and their matters, the Open311 services they
  make), routing by matter and area (派单), time limits (办理时限);
- `reports`: 110 reports as referral reads and files them, which need a work order and on what
  terms, the places intake locates;
- `work_orders`: the `WorkOrder` aggregate, its lifecycle (routing, the departments' steps,
  follow-up, transfer to 110, overdue, closing) and its events `WorkOrderCreated` and
  `WorkOrderUpdated`;
- `unreasonable`: unreasonable-request (不合理不合规诉求) rules, the `UnreasonableRecord` aggregate and
  its event, anonymised typical cases;
- `figures`: figures per department;
- `police_cases`: the police case of an order in 先期处置, as dispatch announces it, on the order;
- `citizen_updates`: a citizen's update to a request posted through Open311, kept apart from the
  timeline with who sent it.

Each aggregate records the events of its changes; the unit of work publishes them at commit.
Everything is importable from `services.referral12345.domain`.
"""
from .departments import (
    CHINA, Department, Matter, Open311Service, Route, add_working_days, candidates, deadline_for, infer_matter,
    matter_labels, open311_services, route_linkage, route_ordinary,
)
from .police_cases import PoliceCaseNews, order_id_of
from .reports import (
    REFER_ON_UPDATE, CitizenContact, Place, PoliceReport, Referral, needs_order, progress_detail, referable, referral_of,
    referred_order_fields, to_refer, to_refer_after,
)
from .work_orders import (
    ACTIVE_STATES, ASSIGNABLE, CLOSED_FOR_OPEN311, DEPARTMENT_WORKING, OPEN_STATUSES, SOURCE_LABEL, SYSTEM, Assignment,
    OrderEntry, WorkOrder, WorkOrderCreated, WorkOrderUpdated, attributes_text, open311_statuses,
)
from .unreasonable import (
    UnreasonableRecord, UnreasonableRequestRecorded, Verdict, anonymise, classify_request, typical_case_id,
)
from .figures import Figures, department_figures
from .citizen_updates import CitizenUpdate

