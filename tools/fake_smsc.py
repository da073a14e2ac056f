"""A stand-in SMS centre (短信网关, SMSC) for development and tests.

It speaks SMPP 3.4 over a real TCP socket, as an operator's gateway would, and keeps what it
received in memory so tests can check what reached a phone:

- `bind_transmitter`, `bind_receiver`, `bind_transceiver` (any system_id; a password, when the
  centre was given one, must match), `unbind`, `enquire_link`;
- `submit_sm` is answered with a message id; the text is decoded (UCS2 when data_coding is 8,
  else Latin-1) and concatenated parts (a user data header) are put together again;
- `fail_next(n, status)` refuses the next n submit_sm with an error status (0x08: system error);
- `reply(number, text)` sends a deliver_sm from `number` to every bound receiver (a phone answering
  "1" to acknowledge);
- `stop()` / `start()` take it off the network and back on the same port with its memory intact.

    python -m tools.fake_smsc --port 2775      # until Ctrl-C / SIGTERM
"""
from __future__ import annotations

import argparse
import signal
import socket
import struct
import threading
from dataclasses import dataclass, field

BIND = {0x00000001: "bind_receiver", 0x00000002: "bind_transmitter", 0x00000009: "bind_transceiver"}
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ESME_ROK, ESME_RINVPASWD, ESME_RSYSERR = 0x00, 0x0E, 0x08


@dataclass
class Submitted:
    """One short message as the centre received it (all its parts)."""

    source: str
    destination: str
    text: str
    data_coding: int
    message_id: str
    parts: int = 1


def _cstring(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\x00", at)
    return body[at:end].decode("latin-1"), end + 1


def _pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def _decode(data: bytes, coding: int) -> str:
    return data.decode("utf-16-be", "replace") if coding == 8 else data.decode("latin-1")


@dataclass
class FakeSmsc:
    port: int = 0
    host: str = "127.0.0.1"
    password: str = ""
    received: list[Submitted] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)  # (bind kind, system_id)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None
    _receivers: list = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _partial: dict = field(default_factory=dict)
    _next_id: int = 0
    _sequence: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    # -- the network side --------------------------------------------------------------
    def start(self) -> "FakeSmsc":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), name="smsc-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        s, self._listener = self._listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            sessions, self._receivers = list(self._receivers), []
        for conn, _ in sessions:
            try:
                conn.close()
            except OSError:
                pass

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- what tests steer -----------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = ESME_RSYSERR) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def reply(self, number: str, text: str) -> int:
        """A phone answers: a deliver_sm from `number` to every bound receiver; returns how many got it."""
        body = b"".join([b"\x00", b"\x01\x01", number.encode() + b"\x00", b"\x00\x00", b"12110\x00",
                         bytes([0, 0, 0]), b"\x00", b"\x00", bytes([0, 0, 8, 0])])
        data = text.encode("utf-16-be")
        body += bytes([len(data)]) + data
        sent = 0
        with self._lock:
            sessions = list(self._receivers)
        for conn, lock in sessions:
            with lock:
                self._sequence += 1
                try:
                    conn.sendall(_pdu(DELIVER_SM, 0, self._sequence, body))
                    sent += 1
                except OSError:
                    pass
        return sent

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Submitted]:
        """The messages received, once there are at least `count` (or when the timeout passes)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def receivers_bound(self, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._receivers), timeout)

    # -- sessions -------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), name="smsc-session", daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        entry = (conn, lock)
        try:
            while True:
                head = self._read(conn, 16)
                if head is None:
                    return
                length, command_id, _status, seq = struct.unpack(">IIII", head)
                body = self._read(conn, length - 16) if length > 16 else b""
                if body is None:
                    return
                out, close = self._answer(command_id, seq, body, entry)
                if out:
                    with lock:
                        conn.sendall(out)
                if close:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                if entry in self._receivers:
                    self._receivers.remove(entry)
            conn.close()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _answer(self, command_id: int, seq: int, body: bytes, entry) -> tuple[bytes, bool]:
        if command_id in BIND:
            system_id, at = _cstring(body, 0)
            password, _ = _cstring(body, at)
            if self.password and password != self.password:
                return _pdu(command_id | RESP, ESME_RINVPASWD, seq, b"smsc\x00"), False
            with self._changed:
                self.binds.append((BIND[command_id], system_id))
                if BIND[command_id] in ("bind_receiver", "bind_transceiver"):
                    self._receivers.append(entry)
                self._changed.notify_all()
            return _pdu(command_id | RESP, ESME_ROK, seq, b"smsc\x00"), False
        if command_id == SUBMIT_SM:
            return self._submit(seq, body), False
        if command_id == ENQUIRE_LINK:
            return _pdu(ENQUIRE_LINK | RESP, ESME_ROK, seq), False
        if command_id == UNBIND:
            return _pdu(UNBIND | RESP, ESME_ROK, seq), True
        if command_id & RESP:  # deliver_sm_resp and the like
            return b"", False
        return _pdu(GENERIC_NACK, 0x03, seq), False  # invalid command id

    def _submit(self, seq: int, body: bytes) -> bytes:
        with self._lock:
            if self._failures:
                return _pdu(SUBMIT_SM | RESP, self._failures.pop(0), seq, b"\x00")
        _service_type, at = _cstring(body, 0)
        at += 2
        source, at = _cstring(body, at)
        at += 2
        destination, at = _cstring(body, at)
        esm_class = body[at]
        at += 3  # esm_class, protocol_id, priority_flag
        _schedule, at = _cstring(body, at)
        _validity, at = _cstring(body, at)
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
        data_coding, sm_length = body[at + 2], body[at + 4]
        message = body[at + 5: at + 5 + sm_length]
        with self._changed:
            self._next_id += 1
            message_id = f"M{self._next_id:06d}"
            if esm_class & 0x40 and message and message[1] in (0x00, 0x08):  # a concatenated part
                udh_len = message[0] + 1
                ref = message[3] if message[1] == 0x00 else (message[3] << 8 | message[4])
                total, number = message[udh_len - 2], message[udh_len - 1]
                key = (source, destination, ref)
                parts = self._partial.setdefault(key, {})
                parts[number] = message[udh_len:]
                if len(parts) == total:
                    del self._partial[key]
                    whole = b"".join(parts[i] for i in range(1, total + 1))
                    self.received.append(Submitted(source, destination, _decode(whole, data_coding), data_coding,
                                                   message_id, total))
            else:
                self.received.append(Submitted(source, destination, _decode(message, data_coding), data_coding,
                                               message_id))
            self._changed.notify_all()
        return _pdu(SUBMIT_SM | RESP, ESME_ROK, seq, message_id.encode() + b"\x00")


def main() -> None:
    parser = argparse.ArgumentParser(description="a stand-in SMS centre speaking SMPP 3.4")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    smsc = FakeSmsc(port=args.port, host=args.host).start()
    print(f"SMS centre (stand-in) on {smsc.address}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    smsc.stop()


if __name__ == "__main__":
    main()
