"""An HTTP proxy on 127.0.0.1 in front of a local AWS endpoint (moto's SQS), that makes a request's answer go
astray after the request did reach the service: the ambiguous sends an acknowledger must not fail back.

Per request, by a seeded draw:
- `slow`: the request is forwarded and answered, and the answer is held back longer than the client's read
  timeout (the message is on the queue; the client sees a ReadTimeoutError);
- `reset`: the request is forwarded and answered, and the client's connection is reset instead of answered
  (the message is on the queue; the client sees a connection closed before an answer);
- otherwise the answer is passed on.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Literal, Self
from urllib.parse import urlsplit

Fate = Literal["slow", "reset", "passed"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


@dataclass
class ProxyFaults:
    slow: float = 0.0  # share of requests answered too late
    reset: float = 0.0  # share of requests whose connection is reset after the service answered
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
            fate: Fate = (
                "slow"
                if draw < self.faults.slow
                else "reset"
                if draw < self.faults.slow + self.faults.reset
                else "passed"
            )
            self.faults.counts[fate] += 1
            return fate

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        reader = client.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                upstream.request(method, path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                fate = self._fate()
                if fate == "reset":  # the service has the message; the client gets a reset, not its answer
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fate == "slow" and self._closing.wait(self.faults.slow_s):
                    return
                client.sendall(_response(answer, payload))
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


def _response(answer: http.client.HTTPResponse, payload: bytes) -> bytes:
    lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
    lines += [f"{k}: {v}" for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
    lines += [f"Content-Length: {len(payload)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + payload
