"""An S3 front on 127.0.0.1 that lets through only requests signed with live credentials, as CodePipeline's
artifact bucket does: everything else gets S3's own `ExpiredToken` answer, which quotes the session token it
refused (S3's `Token-0`), so that the tests can check that no such answer carries it any further. What passes is
forwarded to moto's S3 unchanged; every access key id seen is recorded.

Which credentials are live: those `allow`ed, or those `is_live` accepts (the local endpoint's, for instance).
With `refuse_first_use`, the first request signed with each access key id is refused all the same, as S3 refuses
credentials that have just expired: the job has to fetch its credentials again and retry."""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

_CREDENTIAL = re.compile(r"Credential=([^/]+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class S3Front:
    def __init__(
        self, upstream: str, is_live: Callable[[str, str], bool] | None = None, *, refuse_first_use: bool = False
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.live: dict[str, str] = {}  # access key id -> session token
        self.is_live = is_live or (lambda key_id, token: self.live.get(key_id) == token)
        self.refuse_first_use = refuse_first_use
        self.seen: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                front._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any  # noqa: N815 - BaseHTTPRequestHandler's names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> S3Front:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def allow(self, access_key_id: str, session_token: str) -> None:
        with self._lock:
            self.live[access_key_id] = session_token

    def revoke(self, access_key_id: str) -> None:
        with self._lock:
            self.live.pop(access_key_id, None)

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        key_id = match.group(1) if match else ""
        token = request.headers.get("X-Amz-Security-Token", "")
        with self._lock:
            first_use = key_id not in self.seen
            self.seen.append(key_id)
            allowed = bool(key_id) and self.is_live(key_id, token) and not (self.refuse_first_use and first_use)
            self.refused += not allowed
        if not allowed:
            self._expired(request, token)
            return
        upstream = http.client.HTTPConnection(self.upstream.hostname or "", self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            request.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    request.send_header(name, value)
            request.end_headers()
            while chunk := response.read(1024 * 1024):
                request.wfile.write(chunk)
        finally:
            upstream.close()

    @staticmethod
    def _expired(request: BaseHTTPRequestHandler, token: str) -> None:
        payload = (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
            f"<Message>The provided token has expired.</Message><Token-0>{token}</Token-0>"
            "<RequestId>0</RequestId></Error>"
        ).encode()
        request.send_response(400)
        request.send_header("Content-Type", "application/xml")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)
