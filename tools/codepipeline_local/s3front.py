"""The artifact front: S3 on 127.0.0.1 for workers, that lets through only what a job's artifact credentials allow.

moto's S3 takes any credentials, so a worker that read artifacts with its own role would pass every local test
and fail on AWS, where only the job's artifact credentials reach the pipeline's bucket. This front stands between
the worker and moto: it checks each request's Signature V4 against the credentials the endpoint issued (key, secret
and session token), refuses expired ones as S3 does (`ExpiredToken`), allows reads of the job's artifacts and writes
of its output artifacts only, and forwards the rest to moto unchanged, streaming. Path-style requests (what
botocore sends to an IP address) and header signatures; presigned URLs are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import threading
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from .artifacts import Location
from .wire import HttpError, LoopbackServer, QuietHandler, read_body

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import Message

    from .job import Grant

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), *SignedHeaders=(?P<headers>[^,]+), "
    r"*Signature=(?P<signature>[0-9a-f]+)"
)
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade", "expect"}
)
_COPY_BUFFER = 1024 * 1024
_READS = frozenset({"GET", "HEAD"})
_WRITES = frozenset({"PUT", "POST", "DELETE"})


class Refusal(Exception):
    """An S3 error answer: status, code and message as S3 sends them, and the session token it refused, which S3
    quotes in `Token-0` (a worker must not pass such an answer on)."""

    def __init__(self, status: int, code: str, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.token = token


def authorize(method: str, target: str, headers: Message, grants: Callable[[str], Grant | None]) -> Location:
    """The artifact a request may reach, once its signature, credentials and scope are checked."""
    parts = urlsplit(target)
    if "X-Amz-Credential" in parts.query:
        raise Refusal(403, "AccessDenied", "presigned URLs are not accepted by the local artifact front")
    match = _AUTHORIZATION.fullmatch(headers.get("Authorization", "").strip())
    if match is None:
        raise Refusal(403, "AccessDenied", "requests need a Signature V4 Authorization header")
    grant = grants(match["key"])
    if grant is None:
        raise Refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    issued = grant.credentials
    if headers.get("x-amz-security-token") != issued.session_token:
        token = headers.get("x-amz-security-token")
        raise Refusal(400, "InvalidToken", "The provided token is malformed or otherwise invalid.", token)
    expected = _signature(method, target, headers, match, issued.secret_access_key)
    if not hmac.compare_digest(expected, match["signature"]):
        raise Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
    if issued.expired():
        raise Refusal(400, "ExpiredToken", "The provided token has expired.", issued.session_token)
    bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
    location = Location(bucket, key)
    allowed = grant.readable if method in _READS else grant.writable if method in _WRITES else frozenset()
    if location not in allowed:
        raise Refusal(403, "AccessDenied", "Access Denied")
    return location


def _signature(method: str, target: str, headers: Message, auth: re.Match[str], secret: str) -> str:
    """Signature V4 as S3 computes it: the path as sent, the payload hash the client declared."""
    parts = urlsplit(target)
    signed = auth["headers"].split(";")
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in headers.get_all(name, []))}\n" for name in signed
    )
    query = parse_qsl(parts.query, keep_blank_values=True)
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query)
    canonical_request = "\n".join(
        [
            method,
            parts.path,
            "&".join(f"{k}={v}" for k, v in pairs),
            canonical_headers,
            auth["headers"],
            headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ]
    )
    timestamp = headers.get("x-amz-date", "")
    scope = auth["scope"]
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class ArtifactFront:
    """The front on 127.0.0.1, forwarding to the local S3 at `upstream_url`."""

    def __init__(self, upstream_url: str, grants: Callable[[str], Grant | None], port: int = 0) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.grants = grants
        self._server = _FrontServer(("127.0.0.1", port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="codepipeline-local-s3", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever(): only once it was started
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class _FrontServer(LoopbackServer):
    def __init__(self, address: tuple[str, int], front: ArtifactFront) -> None:
        super().__init__(address, _FrontHandler)
        self.front = front


class _FrontHandler(QuietHandler):
    server: _FrontServer

    def handle_expect_100(self) -> bool:
        """Check the request before asking for its body: a refused upload is never sent."""
        try:
            authorize(self.command, self.path, self.headers, self.server.front.grants)
        except Refusal as refusal:
            self.close_connection = True
            self._refuse(refusal)
            return False
        return super().handle_expect_100()

    def _forward(self) -> None:
        try:
            authorize(self.command, self.path, self.headers, self.server.front.grants)
        except Refusal as refusal:
            self._drain()
            self._refuse(refusal)
            return
        upstream = http.client.HTTPConnection(*self.server.front.upstream, timeout=300)
        try:
            self._send_upstream(upstream)
            self._relay(upstream.getresponse())
        finally:
            upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815 - http.server's names

    def _send_upstream(self, upstream: http.client.HTTPConnection) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = read_body(self.headers, self.rfile) if chunked else None
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        dropped = _HOP_BY_HOP | {"transfer-encoding"} | ({"content-length"} if chunked else set())
        for name, value in self.headers.items():
            if name.lower() not in dropped:
                upstream.putheader(name, value)
        if body is not None:
            upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders()
        if body is not None:
            upstream.send(body)
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(_COPY_BUFFER, remaining))
            if not chunk:
                raise HttpError(400, "the connection closed before the body's Content-Length")
            upstream.send(chunk)
            remaining -= len(chunk)

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response(response.status, response.reason)
        length = response.getheader("Content-Length")
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"transfer-encoding", "date", "server"}:
                self.send_header(name, value)
        streamed = length is None and self.command != "HEAD"
        if streamed:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        while chunk := response.read(_COPY_BUFFER):
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if streamed else chunk)
        if streamed:
            self.wfile.write(b"0\r\n\r\n")

    def _drain(self) -> None:
        """Read a refused request's body, so the answer can follow it on the same connection."""
        try:
            read_body(self.headers, self.rfile)
        except HttpError:
            self.close_connection = True

    def _refuse(self, refusal: Refusal) -> None:
        request_id = uuid.uuid4().hex.upper()[:16]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{refusal.code}</Code><Message>{escape(refusal.message)}</Message>"
            + (f"<Token-0>{escape(refusal.token)}</Token-0>" if refusal.token else "")
            + f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        self.send_response(refusal.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
