"""A local CodePipeline endpoint for the job-worker operations, on 127.0.0.1, that the real SDK talks to.

Wire protocol as the service speaks it: `POST /` with `X-Amz-Target: CodePipeline_20150709.<Operation>` and an
`application/x-amz-json-1.1` body; errors are HTTP 400 with `{"__type": "<Code>", "message": "..."}`. Requests
are checked against botocore's model of the service (see `model`), so what the service would reject is
rejected. Paths under `/_control/` create jobs, show them and set faults, for tests and demos.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, Self

from botocore import xform_name

from .jobs import JobStore
from .model import TARGET_PREFIX, ServiceError, check_request, check_response, operation

if TYPE_CHECKING:
    from collections.abc import Callable

JSON_1_1 = "application/x-amz-json-1.1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPERATIONS = frozenset(
    {
        "PollForJobs",
        "AcknowledgeJob",
        "GetJobDetails",
        "PutJobSuccessResult",
        "PutJobFailureResult",
        "PollForThirdPartyJobs",
        "GetThirdPartyJobDetails",
        "AcknowledgeThirdPartyJob",
        "PutThirdPartyJobSuccessResult",
        "PutThirdPartyJobFailureResult",
    }
)
Fault = Literal["throttle", "http500", "drop", "hang"]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often: shares are probabilities per call, from 0 to 1."""

    latency_s: float = 0.0  # added to every call
    jitter_s: float = 0.0  # plus a uniform random 0..jitter_s
    throttle: float = 0.0  # answered 400 ThrottlingException
    http500: float = 0.0  # answered 500 InternalFailure
    drop: float = 0.0  # connection closed with no answer (the call had no effect)
    hang_after: int | None = None  # after this many calls, stop answering: calls wait, then close unanswered
    operations: tuple[str, ...] = ()  # the operations these apply to; empty: all
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("throttle", "http500", "drop"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a share of calls, from 0 to 1")
        if self.throttle + self.http500 + self.drop > 1:
            raise ValueError("throttle + http500 + drop cannot exceed 1")
        if self.latency_s < 0 or self.jitter_s < 0:
            raise ValueError("latency cannot be negative")
        if self.hang_after is not None and self.hang_after < 0:
            raise ValueError("hang_after cannot be negative")
        unknown = set(self.operations) - OPERATIONS
        if unknown:
            raise ValueError(f"unknown operations: {', '.join(sorted(unknown))}")

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Faults:
        names = {
            "latencySeconds": "latency_s",
            "jitterSeconds": "jitter_s",
            "throttle": "throttle",
            "http500": "http500",
            "drop": "drop",
            "hangAfter": "hang_after",
            "operations": "operations",
            "seed": "seed",
        }
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values = {names[k]: v for k, v in body.items()}
        if "operations" in values:
            values["operations"] = tuple(values["operations"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {
            "latencySeconds": values["latency_s"],
            "jitterSeconds": values["jitter_s"],
            "throttle": values["throttle"],
            "http500": values["http500"],
            "drop": values["drop"],
            "hangAfter": values["hang_after"],
            "operations": list(values["operations"]),
            "seed": values["seed"],
        }


@dataclass
class Stats:
    """What the endpoint saw: calls per operation, faults injected, error answers per code."""

    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "faults": dict(self.faults), "errors": dict(self.errors)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], endpoint: LocalCodePipeline) -> None:
        super().__init__(address, _Handler)
        self.endpoint = endpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the endpoint's record is its jobs' history and its stats."""

    def do_GET(self) -> None:
        self._control("GET", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_control/"):
            self._control("POST", body)
        else:
            self._service(body)

    def _service(self, body: bytes) -> None:
        endpoint = self.server.endpoint
        target = self.headers.get("X-Amz-Target", "")
        name = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        try:
            if self.path != "/" or name not in OPERATIONS:
                raise ServiceError("UnknownOperationException", f"Unknown operation {target or '(no X-Amz-Target)'}")
            endpoint.stats_count("calls", name)
            fault = endpoint.fault_for(name)
            if fault == "hang":
                endpoint.wait_while_hanging()
            if fault in ("drop", "hang"):
                self.close_connection = True  # no answer at all; the call had no effect
                return
            if fault == "throttle":
                raise ServiceError("ThrottlingException", "Rate exceeded")
            if fault == "http500":
                raise ServiceError("InternalFailure", "The request processing has failed", status=500)
            op = operation(name)
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = None
            check_request(op, params)
            answer = getattr(endpoint.store, xform_name(name))(params)
            self._reply(200, check_response(op, answer))
        except ServiceError as error:
            endpoint.stats_count("errors", error.code)
            self._reply(error.status, {"__type": error.code, "message": error.message})
        except Exception as error:  # noqa: BLE001 - an endpoint bug answers 500, as a service fault would
            endpoint.stats_count("errors", "InternalFailure")
            self._reply(500, {"__type": "InternalFailure", "message": f"{type(error).__name__}: {error}"})

    def _control(self, method: str, body: bytes | None) -> None:
        try:
            request = json.loads(body) if body else {}
            self._reply(200, self.server.endpoint.control(method, self.path, request))
        except (ValueError, KeyError, TypeError) as error:
            self._reply(400, {"__type": "ControlError", "message": str(error)})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", JSON_1_1)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)


class LocalCodePipeline:
    """The endpoint, run in a background thread of this process.

    >>> with LocalCodePipeline() as endpoint:  # doctest: +SKIP
    ...     endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "demo"})
    ...     client = boto3.client("codepipeline", endpoint_url=endpoint.url)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, dispatch_timeout_s: float = 60.0) -> None:
        if host not in LOOPBACK:
            raise ValueError("the local endpoint listens on the loopback interface only")
        self.store = JobStore(dispatch_timeout_s)
        self._faults = Faults()
        self._random = random.Random()  # noqa: S311 - fault injection, not cryptography
        self._calls_since_faults = 0
        self._released = threading.Event()  # set: hanging calls give up (faults changed, or the endpoint stops)
        self._stats = Stats()
        self._lock = threading.Lock()
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        # A short poll interval: stop() returns within it, which keeps test teardown quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="codepipeline-local", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults and stats -----------------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)  # noqa: S311 - fault injection, not cryptography
            self._calls_since_faults = 0
            self._released.set()  # calls hanging under the old faults close unanswered
            self._released = threading.Event()

    def wait_while_hanging(self) -> None:
        """Block a call until the faults change or the endpoint stops."""
        with self._lock:
            released = self._released
        released.wait()

    def faults(self) -> Faults:
        return self._faults

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.to_json()

    def stats_count(self, kind: Literal["calls", "faults", "errors"], key: str) -> None:
        with self._lock:
            getattr(self._stats, kind)[key] += 1

    def fault_for(self, name: str) -> Fault | None:
        """Sleep the configured latency, then draw this call's fault, if any."""
        with self._lock:
            faults = self._faults
            if faults.operations and name not in faults.operations:
                return None
            delay = faults.latency_s + self._random.uniform(0, faults.jitter_s)
            draw = self._random.random()
            self._calls_since_faults += 1
            hanging = faults.hang_after is not None and self._calls_since_faults > faults.hang_after
        if delay:
            time.sleep(delay)
        fault: Fault | None = None
        if hanging:
            fault = "hang"
        elif draw < faults.throttle:
            fault = "throttle"
        elif draw < faults.throttle + faults.http500:
            fault = "http500"
        elif draw < faults.throttle + faults.http500 + faults.drop:
            fault = "drop"
        if fault is not None:
            self.stats_count("faults", fault)
        return fault

    # -- control API ----------------------------------------------------------------------------------

    def control(self, method: str, path: str, request: dict[str, Any]) -> dict[str, Any]:
        """The `/_control/` HTTP API; `ControlClient` is its Python client."""
        route = path.removeprefix("/_control/").rstrip("/")
        if method == "GET" and route.startswith("jobs/"):
            return self.store.job(route.removeprefix("jobs/"))
        routes: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
            ("GET", "jobs"): lambda _: {"jobs": self.store.jobs()},
            ("POST", "jobs"): lambda r: {"jobIds": [self.store.create_job(**kw) for kw in _job_requests(r)]},
            ("POST", "action-types"): self._add_action_type,
            ("POST", "faults"): self._set_faults,
            ("GET", "faults"): lambda _: self._faults.to_json(),
            ("GET", "stats"): lambda _: self.stats(),
            ("POST", "settings"): self._settings,
            ("POST", "reset"): self._reset,
        }
        if (method, route) not in routes:
            raise KeyError(f"no control route {method} {path}")
        return routes[method, route](request)

    def reset(self) -> None:
        """Forget every job, action type, fault and count."""
        self.store.reset()
        self.set_faults(Faults())
        with self._lock:
            self._stats = Stats()

    def _add_action_type(self, request: dict[str, Any]) -> dict[str, Any]:
        self.store.add_action_type(request["actionType"])
        return {}

    def _set_faults(self, request: dict[str, Any]) -> dict[str, Any]:
        self.set_faults(Faults.from_json(request))
        return self._faults.to_json()

    def _reset(self, _: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {}

    def _settings(self, request: dict[str, Any]) -> dict[str, Any]:
        self.store.dispatch_timeout_s = float(request["dispatchTimeoutSeconds"])
        return {"dispatchTimeoutSeconds": self.store.dispatch_timeout_s}


_JOB_FIELDS = {
    "actionType": "action_type",
    "kind": "kind",
    "configuration": "configuration",
    "pipelineContext": "pipeline_context",
    "inputArtifacts": "input_artifacts",
    "outputArtifacts": "output_artifacts",
    "accountId": "account_id",
    "clientId": "client_id",
    "clientToken": "client_token",
    "continuationToken": "continuation_token",
    "jobId": "job_id",
    "dispatchedNonce": "dispatched_nonce",
}


def _job_requests(request: dict[str, Any]) -> list[dict[str, Any]]:
    count = int(request.get("count", 1))
    unknown = set(request) - set(_JOB_FIELDS) - {"count"}
    if unknown:
        raise ValueError(f"unknown job fields: {', '.join(sorted(unknown))}")
    if count < 1 or (count > 1 and "jobId" in request):
        raise ValueError("count must be at least 1, and 1 when jobId is given")
    kwargs = {_JOB_FIELDS[k]: v for k, v in request.items() if k != "count"}
    return [kwargs] * count
