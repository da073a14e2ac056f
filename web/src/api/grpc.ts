// gRPC-Web through the gateway (Envoy's grpc_web filter), with Connect-ES clients generated from
// protos/ (src/gen/, by scripts/gen-protos.mjs). Used for the live streams; every call carries the
// user's JWT.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { token } from "../auth";
import { DispatchService } from "../gen/smart110/dispatch/v1/dispatch_service_pb";
import { AlertsService } from "../gen/smart110/alerts/v1/alerts_service_pb";
import { IntakeService } from "../gen/smart110/intake/v1/intake_service_pb";

const withToken: Interceptor = (next) => async (req) => {
  const t = token();
  if (t) req.header.set("Authorization", `Bearer ${t}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [withToken],
});

function client<T extends DescService>(service: T): Client<T> {
  return createClient(service, transport);
}

export const dispatch = client(DispatchService);
export const alerts = client(AlertsService);
export const intake = client(IntakeService);
