"""A stand-in anti-fraud centre (反诈中心) for development and tests.

It speaks the partner contract `smart110.partners.antifraud.v1` over a real
gRPC socket, as the real centre would, and keeps what it received in memory
so tests can check that a hand-off arrived once and only once:

- `RequestStopPayment` is idempotent on the key (the same key returns the
  first receipt; the same key with other content is ALREADY_EXISTS) and
  answers ACCEPTED, or REJECTED when it names neither an amount nor a bank;
- `GetStopPayment` gives the result from the first question on: FROZEN with
  the whole amount when the amount is known, NOT_FROZEN otherwise;
- `stop()` / `start()` take it off the network and back on the same port
  with its memory intact (a partner outage); `lose_replies(n)` makes it do
  the work but drop the next n answers (a reply lost on the way back);
  `refuse_next(code, message)` refuses the next request outright.

    python -m tools.fake_antifraud --port 50060      # until Ctrl-C / SIGTERM
"""
from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import timestamp_pb2

from smart110.partners.antifraud.v1 import antifraud_pb2 as af_pb
from smart110.partners.antifraud.v1 import antifraud_pb2_grpc as af_grpc


@dataclass
class Received:
    request: af_pb.RequestStopPaymentRequest
    receipt: af_pb.StopPaymentReceipt
    deliveries: int = 1


@dataclass
class FakeAntiFraudCentre(af_grpc.AntiFraudCentreServiceServicer):
    port: int = 0
    host: str = "127.0.0.1"
    received: dict[str, Received] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: grpc.Server | None = None
    _lose: int = 0
    _refuse: list = field(default_factory=list)

    # -- the network side --------------------------------------------------------
    def start(self) -> "FakeAntiFraudCentre":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="antifraud"),
                             options=[("grpc.so_reuseport", 0)])
        af_grpc.add_AntiFraudCentreServiceServicer_to_server(self, server)
        bound = server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise SystemExit(f"cannot listen on {self.host}:{self.port}")
        self.port = bound
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait(5)
            self._server = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def lose_replies(self, n: int) -> None:
        with self._lock:
            self._lose = n

    def refuse_next(self, code: grpc.StatusCode, message: str) -> None:
        """The next RequestStopPayment is refused with `code`, before any work."""
        with self._lock:
            self._refuse.append((code, message))

    # -- what tests look at ------------------------------------------------------
    def requests_for(self, case_name: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received.values() if r.request.case_name == case_name]

    # -- the contract ------------------------------------------------------------
    def RequestStopPayment(self, request: af_pb.RequestStopPaymentRequest, context):
        missing = [f for f in ("idempotency_key", "case_name") if not getattr(request, f)]
        if missing:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing: {', '.join(missing)}")
        with self._lock:
            self.calls.append(("RequestStopPayment", request.idempotency_key))
            refused = self._refuse.pop(0) if self._refuse else None
        if refused:
            context.abort(*refused)
        with self._lock:
            known = self.received.get(request.idempotency_key)
            if known is not None:
                if known.request != request:
                    context.abort(grpc.StatusCode.ALREADY_EXISTS,
                                  f"idempotency key {request.idempotency_key} was used for another request")
                known.deliveries += 1
                receipt = known.receipt
            else:
                receipt = self._accept(request)
                self.received[request.idempotency_key] = Received(request, receipt)
            lose = self._lose > 0
            if lose:
                self._lose -= 1
        if lose:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset before the reply")
        return receipt

    def GetStopPayment(self, request: af_pb.GetStopPaymentRequest, context):
        with self._lock:
            self.calls.append(("GetStopPayment", request.idempotency_key))
            known = self.received.get(request.idempotency_key)
            if known is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no stop-payment request {request.idempotency_key}")
            if known.receipt.state == af_pb.STOP_PAYMENT_STATE_ACCEPTED:
                known.receipt = self._result(known.request, known.receipt)
            return known.receipt

    def _accept(self, request: af_pb.RequestStopPaymentRequest) -> af_pb.StopPaymentReceipt:
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        receipt_id = f"ZF{len(self.received) + 1:08d}"
        has_bank = any(a.bank for a in request.victim_accounts)
        if not request.amount_fen and not has_bank:
            return af_pb.StopPaymentReceipt(
                idempotency_key=request.idempotency_key, receipt_id=receipt_id,
                state=af_pb.STOP_PAYMENT_STATE_REJECTED, result_text="缺少受害人账户和涉案金额，不予受理",
                accept_time=now, result_time=now)
        return af_pb.StopPaymentReceipt(idempotency_key=request.idempotency_key, receipt_id=receipt_id,
                                        state=af_pb.STOP_PAYMENT_STATE_ACCEPTED, accept_time=now)

    @staticmethod
    def _result(request: af_pb.RequestStopPaymentRequest, accepted: af_pb.StopPaymentReceipt):
        done = af_pb.StopPaymentReceipt()
        done.CopyFrom(accepted)
        done.result_time.GetCurrentTime()
        if request.amount_fen:
            done.state = af_pb.STOP_PAYMENT_STATE_FROZEN
            done.frozen_amount_fen = request.amount_fen
            done.result_text = "已对涉案账户实施紧急止付"
        else:
            done.state = af_pb.STOP_PAYMENT_STATE_NOT_FROZEN
            done.result_text = "未查到可冻结的涉案资金"
        return done


def main() -> None:
    parser = argparse.ArgumentParser(description="a stand-in anti-fraud centre speaking smart110.partners.antifraud.v1")
    parser.add_argument("--port", type=int, default=50060)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    centre = FakeAntiFraudCentre(port=args.port, host=args.host).start()
    print(f"anti-fraud centre (stand-in) on {centre.address}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    centre.stop()


if __name__ == "__main__":
    main()
