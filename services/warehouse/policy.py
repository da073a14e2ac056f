"""Who may call each warehouse RPC (警情数据大水库): the access table the server consults before a handler runs.

Every read is scoped further by the caller's jurisdiction (services.runtime.policy): the city's command and
110 centre see the whole city, a district commander the district, a station's people their station.
"""
from services.runtime.policy import SERVICE, Access, Policy

SERVICE_NAME = "smart110.warehouse.v1.WarehouseService"
READERS = ("commander", "district_commander", "dispatcher", "call_taker", "station_chief", "officer",
           "legal_officer", "supervisor", SERVICE)

POLICIES = {SERVICE_NAME: Policy(SERVICE_NAME, {
    "GetHeatMap": Access(*READERS),
    "GetTrend": Access(*READERS),
    "GetStationKpis": Access(*READERS),
    "CheckThreshold": Access(*READERS),
    "GetTopTypes": Access(*READERS),
    "GetTopPlaces": Access(*READERS),
    # Analysts' slices of the facts (no personal data in them): not for a station's officers.
    "ExportReports": Access("commander", "district_commander", "station_chief", "supervisor", SERVICE),
    "StreamEvents": Access(SERVICE, scoped=False),
})}
