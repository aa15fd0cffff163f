"""The two wire protocols botocore's model lists for CodePipeline, and reading a request body as HTTP/1.1 does.

- awsJson1_1: `POST /`, `X-Amz-Target: CodePipeline_20150709.<Operation>`, `application/x-amz-json-1.1` bodies;
  errors `{"__type": "<Code>", "message": ...}`.
- Smithy RPC v2 CBOR: `POST /service/CodePipeline_20150709/operation/<Operation>`, `smithy-protocol: rpc-v2-cbor`,
  `application/cbor` bodies; errors carry the error's shape id in `__type`.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import cbor2

from .model import TARGET_PREFIX, ServiceError

if TYPE_CHECKING:
    from email.message import Message
    from io import BufferedIOBase

JSON_1_1 = "application/x-amz-json-1.1"
CBOR = "application/cbor"
CBOR_PREFIX = f"/service/{TARGET_PREFIX.rstrip('.')}/operation/"
SHAPE_NAMESPACE = "com.amazonaws.codepipeline"
# Far above any CodePipeline request (outputVariables are at most 122,880 bytes) and room for seeded files.
MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_CHUNK_LINE = 1024


class LoopbackServer(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog for hundreds of clients connecting at once (the pollers of many
    workers, the chaos runs): a connection the backlog cannot hold waits a second for its SYN to be sent again."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, answers sent at once, idle connections closed, nothing logged."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is closed after this long, so idle clients do not hold threads forever.
    timeout = 300

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the endpoint's record is its jobs' history and its stats."""


class HttpError(Exception):
    """A request HTTP itself cannot take: answered with this status, and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def renamed(body: dict[str, Any], names: dict[str, str], what: str) -> dict[str, Any]:
    """A control request's members under the Python names `names` maps them to; ValueError for any other."""
    unknown = set(body) - set(names)
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(sorted(unknown))}")
    return {names[k]: v for k, v in body.items()}


def read_body(headers: Message, stream: BufferedIOBase) -> bytes:
    """The request body, framed by Transfer-Encoding: chunked or by Content-Length (RFC 9112, section 6)."""
    encoding = headers.get("Transfer-Encoding")
    length = headers.get("Content-Length")
    if encoding is not None:
        if length is not None:  # both: a request smuggling vector; refuse rather than guess
            raise HttpError(400, "Transfer-Encoding and Content-Length together")
        if encoding.strip().lower() != "chunked":
            raise HttpError(501, f"Transfer-Encoding {encoding} is not supported")
        return _read_chunked(stream)
    if length is None:
        return b""
    if not length.strip().isdigit():
        raise HttpError(400, f"Content-Length {length!r} is not a non-negative integer")
    size = int(length)
    if size > MAX_BODY_BYTES:
        raise HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = stream.read(size)
    if len(body) != size:
        raise HttpError(400, "the connection closed before the body's Content-Length")
    return body


def _read_chunked(stream: BufferedIOBase) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(_MAX_CHUNK_LINE)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(400, "malformed chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        if size == 0:
            while stream.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):  # trailers, ignored
                pass
            return bytes(body)
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n"):
            raise HttpError(400, "malformed chunk")
        body += chunk


@dataclass(frozen=True)
class Protocol:
    """How one protocol names the operation, reads parameters and writes answers."""

    name: str
    content_type: str

    def decode(self, body: bytes) -> Any:
        raise NotImplementedError

    def encode(self, answer: dict[str, Any] | None) -> bytes:
        raise NotImplementedError

    def error(self, error: ServiceError) -> dict[str, Any]:
        return {"__type": error.code, "message": error.message}

    def headers(self) -> dict[str, str]:
        return {}


class _Json(Protocol):
    def decode(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"{}")
        except ValueError:
            return None  # check_request answers SerializationException

    def encode(self, answer: dict[str, Any] | None) -> bytes:
        return json.dumps(answer if answer is not None else {}).encode()


class _Cbor(Protocol):
    def decode(self, body: bytes) -> Any:
        if not body:
            return {}
        try:
            return _plain(cbor2.loads(body))
        except (cbor2.CBORDecodeError, ValueError):
            return None

    def encode(self, answer: dict[str, Any] | None) -> bytes:
        return b"" if answer is None else cbor2.dumps(answer)

    def error(self, error: ServiceError) -> dict[str, Any]:
        return {"__type": f"{SHAPE_NAMESPACE}#{error.code}", "message": error.message}

    def headers(self) -> dict[str, str]:
        return {"smithy-protocol": "rpc-v2-cbor"}


AWS_JSON: Protocol = _Json("awsJson1_1", JSON_1_1)
RPC_V2_CBOR: Protocol = _Cbor("smithy-rpc-v2-cbor", CBOR)


def protocol_for(path: str) -> Protocol:
    """The protocol a service request's path speaks: its answers, errors included, are in that protocol."""
    return RPC_V2_CBOR if path.startswith(CBOR_PREFIX) else AWS_JSON


def operation_name(protocol: Protocol, path: str, headers: Message) -> str:
    """The operation a request names; ServiceError when it names none the protocol's way."""
    if protocol is RPC_V2_CBOR:
        if headers.get("smithy-protocol") != "rpc-v2-cbor":
            raise ServiceError("ValidationException", "an RPC v2 CBOR request carries smithy-protocol: rpc-v2-cbor")
        return path.removeprefix(CBOR_PREFIX)
    target = headers.get("X-Amz-Target", "")
    if path != "/" or not target.startswith(TARGET_PREFIX):
        raise ServiceError("UnknownOperationException", f"Unknown operation {target or '(no X-Amz-Target)'}")
    return target.removeprefix(TARGET_PREFIX)


def _plain(value: Any) -> Any:
    """CBOR's values as the JSON protocol's: a timestamp (tag 1) becomes epoch seconds."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return value
