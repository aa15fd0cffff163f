"""Pages on 127.0.0.1 that answer scripted HTTP statuses: what the example action (a URL health check) checks
in `make run`, `make invoke` and the tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class StatusPages:
    """Each scripted path answers its statuses in order, the last one from then on; any other path, 404.
    `answered` records every (path, status), query strings left out."""

    def __init__(self, script: dict[str, list[int]]) -> None:
        self.answered: list[tuple[str, int]] = []
        pages = self
        remaining = {path: list(statuses) for path, statuses in script.items()}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with lock:
                    statuses = remaining.get(path, [404])
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                    pages.answered.append((path, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def __enter__(self) -> StatusPages:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
