"""AlertsService gRPC servicer: proto -> command -> handler -> proto.

Only the event feed is served so far; the other RPCs answer UNIMPLEMENTED.
"""
from __future__ import annotations

from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime


class AlertsServicer(pb_grpc.AlertsServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
