"""Who may call each referral RPC (12345 工单, 110⇄12345 双线): the access table the server consults first.

Finer checks stay with the use cases: a department acts only on orders assigned to it, a
confidential order's caller is shown to hotline agents only.
"""
from services.runtime.policy import ALL_ROLES, SERVICE, Access, Policy

SERVICE_NAME = "smart110.referral.v1.ReferralService"
ANYONE = tuple(ALL_ROLES)
AGENTS = ("hotline_agent", "supervisor", SERVICE)
POLICE_READERS = ("call_taker", "dispatcher", "commander", "station_chief")
READERS = (*AGENTS, "department", *POLICE_READERS)
DEPARTMENTS = ("department", "supervisor", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "CreateWorkOrder": Access(*AGENTS),
    "GetWorkOrder": Access(*READERS),
    "ListWorkOrders": Access(*READERS),
    "AssignWorkOrder": Access(*AGENTS),
    "AcceptWorkOrder": Access(*DEPARTMENTS),
    "RejectWorkOrder": Access(*DEPARTMENTS),
    "StartWorkOrder": Access(*DEPARTMENTS),
    "ResolveWorkOrder": Access(*DEPARTMENTS),
    "ReviewWorkOrder": Access(*AGENTS),
    "TransferTo110": Access(*AGENTS),
    # The directory of departments and their published statistics are public information.
    "ListDepartments": Access(*ANYONE, scoped=False),
    "GetDepartment": Access(*ANYONE, scoped=False),
    "GetDepartmentStatistics": Access(*ANYONE, scoped=False),
    "ClassifyRequest": Access(*AGENTS),
    "RecordUnreasonableRequest": Access(*AGENTS),
    "GetUnreasonableRequest": Access(*AGENTS),
    "ListUnreasonableRequests": Access(*AGENTS),
    "OverturnUnreasonableRequest": Access("supervisor"),
    # Anonymised typical cases are published (典型案例).
    "ListTypicalCases": Access(*ANYONE, scoped=False),
    "SweepOverdueWorkOrders": Access("supervisor", SERVICE, scoped=False),
    "StreamEvents": Access(SERVICE, scoped=False),
})}
