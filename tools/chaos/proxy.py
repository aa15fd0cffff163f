"""An HTTP proxy on 127.0.0.1 in front of a local AWS endpoint (moto's SQS), that makes a request's answer go
astray after the request did reach the service (the ambiguous sends an acknowledger must not fail back), or
refuses a request or some entries of a batch before they reach it (the refusals it must fail back).

Per request, by a seeded draw:
- `slow`: the request is forwarded and answered, and the answer is held back longer than the client's read
  timeout (the message is on the queue; the client sees a ReadTimeoutError);
- `reset`: the request is forwarded and answered, and the client's connection is reset instead of answered
  (the message is on the queue; the client sees a connection closed before an answer);
- `refused`: the request is not forwarded; the client gets SQS's 400 `KmsAccessDenied` (nothing was stored);
- otherwise the answer is passed on.
A SendMessageBatch request that is forwarded loses each entry, by a further draw (`refuse_entries`), before it is
forwarded: SQS never sees it, and the answer lists it in `Failed`, as SQS lists an entry it did not store.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Self
from urllib.parse import urlsplit

Fate = Literal["slow", "reset", "refused", "passed"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


@dataclass
class ProxyFaults:
    slow: float = 0.0  # share of requests answered too late
    reset: float = 0.0  # share of requests whose connection is reset after the service answered
    refuse: float = 0.0  # share of requests refused (400) without reaching the service
    refuse_entries: float = 0.0  # share of a forwarded SendMessageBatch's entries refused (listed in `Failed`)
    slow_s: float = 1.0  # how late: more than the client's read timeout
    seed: int = 0
    counts: Counter[str] = field(default_factory=Counter)


class FaultyProxy:
    """A threaded proxy to `upstream` (http://host:port), listening on a free loopback port."""

    def __init__(self, upstream: str, faults: ProxyFaults) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = faults
        self._random = random.Random(faults.seed)  # noqa: S311 - fault injection, not cryptography
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="chaos-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fate(self) -> Fate:
        with self._lock:
            draw = self._random.random()
            faults = self.faults
            fate: Fate = (
                "slow"
                if draw < faults.slow
                else "reset"
                if draw < faults.slow + faults.reset
                else "refused"
                if draw < faults.slow + faults.reset + faults.refuse
                else "passed"
            )
            self.faults.counts[fate] += 1
            return fate

    def _refused_entries(self, headers: dict[str, str], body: bytes) -> tuple[bytes, list[str]]:
        """A SendMessageBatch's request without the entries drawn to be refused, and their Ids."""
        if not self.faults.refuse_entries or not headers.get("X-Amz-Target", "").endswith(".SendMessageBatch"):
            return body, []
        request = json.loads(body)
        with self._lock:
            refused = [e["Id"] for e in request["Entries"] if self._random.random() < self.faults.refuse_entries]
            self.faults.counts["entries refused"] += len(refused)
        request["Entries"] = [e for e in request["Entries"] if e["Id"] not in refused]
        return json.dumps(request).encode(), refused

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        reader = client.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                fate = self._fate()
                if fate == "refused":  # never forwarded: SQS stored nothing
                    client.sendall(_refusal())
                    continue
                body, refused = self._refused_entries(headers, body)
                if refused:
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                    headers["Content-Length"] = str(len(body))
                answer = _forward(upstream, method, path, headers, body, refused)
                if fate == "reset":  # the service has the message; the client gets a reset, not its answer
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fate == "slow" and self._closing.wait(self.faults.slow_s):
                    return
                client.sendall(_response(*answer))
        except OSError:
            return
        finally:
            reader.close()
            client.close()
            upstream.close()


def _read_request(reader: BinaryIO) -> tuple[str, str, dict[str, str], bytes] | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline().decode("latin-1").rstrip("\r\n")
        if not header:
            break
        name, _, value = header.partition(":")
        if name.strip().lower() not in _HOP_BY_HOP:
            headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body = reader.read(length) if length else b""
    return method, path, headers, body


Answer = tuple[int, str, list[tuple[str, str]], bytes]  # status, reason, headers, payload
_JSON = [("Content-Type", "application/x-amz-json-1.0")]


def _forward(  # noqa: PLR0917 - the request's parts
    upstream: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    refused: list[str],
) -> Answer:
    """The service's answer; a batch's `refused` entries (not forwarded) listed in its `Failed`. A batch whose
    every entry was refused is not forwarded at all (SQS refuses an empty batch): it is answered here."""
    if refused and not json.loads(body)["Entries"]:
        status, reason, answer_headers = 200, "OK", _JSON
        payload: dict[str, Any] = {"Successful": []}
    else:
        upstream.request(method, path, body=body, headers=headers)
        answer = upstream.getresponse()
        raw = answer.read()
        status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
        if not refused or status != 200:
            return status, reason, answer_headers, raw
        payload = json.loads(raw)
    failed = [
        {"Id": n, "SenderFault": False, "Code": "InternalError", "Message": "refused by the proxy"} for n in refused
    ]
    payload["Failed"] = [*payload.get("Failed", []), *failed]
    return status, reason, answer_headers, json.dumps(payload).encode()


def _refusal() -> bytes:
    """SQS's answer to a request it refused (a 4xx: nothing stored, certainly)."""
    payload = json.dumps({"__type": "com.amazonaws.sqs#KmsAccessDenied", "message": "refused by the proxy"}).encode()
    return _response(400, "Bad Request", _JSON, payload)


def _response(status: int, reason: str, headers: list[tuple[str, str]], payload: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP | {"content-length"}]
    lines += [f"Content-Length: {len(payload)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + payload
