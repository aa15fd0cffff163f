"""A local CodePipeline endpoint for the job-worker and action-type operations, on 127.0.0.1, that any SDK
talks to.

Both wire protocols botocore's model lists (see `wire`): awsJson1_1 (`POST /` with `X-Amz-Target`) and Smithy RPC
v2 CBOR. Requests are checked against botocore's model of the service (see `model`), so what the service would
reject is rejected; the other operations of the service answer 501, not implemented here. Paths under
`/_control/` seed jobs and action types, show them, time jobs out and set faults, for tests and demos.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self

from botocore import xform_name

from .artifacts import ArtifactStore
from .jobs import DEFAULT_ACTION_TIMEOUT_S, DEFAULT_CREDENTIALS_TTL_S, JobStore
from .model import ServiceError, check_request, check_response, operation, service_model
from .s3front import ArtifactFront
from .wire import (
    AWS_JSON,
    HttpError,
    LoopbackServer,
    Protocol,
    QuietHandler,
    operation_name,
    protocol_for,
    read_body,
    renamed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

LOOPBACK = ("127.0.0.1", "localhost", "::1")
JOB_OPERATIONS = frozenset(
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
ACTION_TYPE_OPERATIONS = frozenset(
    {"CreateCustomActionType", "DeleteCustomActionType", "ListActionTypes", "GetActionType"}
)
OPERATIONS = JOB_OPERATIONS | ACTION_TYPE_OPERATIONS
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
        unknown = set(self.operations) - set(service_model().operation_names)
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
        values = renamed(body, names, "fault settings")
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


class _Server(LoopbackServer):
    def __init__(self, address: tuple[str, int], endpoint: LocalCodePipeline) -> None:
        super().__init__(address, _Handler)
        self.endpoint = endpoint


class _Handler(QuietHandler):
    default_request_version = "HTTP/1.1"  # a malformed request line is answered with a status line and headers
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server calls it by this name
        if self.path.startswith("/_control/"):
            self._control("GET", b"")
        else:
            self._method_not_allowed()

    def do_POST(self) -> None:  # noqa: N802 - http.server calls it by this name
        try:
            body = read_body(self.headers, self.rfile)
        except HttpError as error:
            self.close_connection = True  # where this request ends is unknown: no next one can be read
            self._reply(error.status, {"__type": "BadRequest", "message": error.message})
            return
        if self.path.startswith("/_control/"):
            self._control("POST", body)
        else:
            self._service(body)

    def _method_not_allowed(self) -> None:
        self.close_connection = True
        self._reply(
            405,
            {"__type": "MethodNotAllowed", "message": f"{self.command} is not allowed: CodePipeline's API is POST"},
            {"Allow": "POST"},
        )

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _method_not_allowed  # noqa: N815 - http.server's names

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a malformed request line, headers too long...): JSON, with a
        request id, like every other answer."""
        self.close_connection = True
        self._reply(code, {"__type": "BadRequest", "message": message or explain or "bad request"})

    def _service(self, body: bytes) -> None:
        endpoint = self.server.endpoint
        protocol = protocol_for(self.path)
        try:
            name = operation_name(protocol, self.path, self.headers)
            handler = endpoint.handler(name)
            endpoint.stats_count("calls", name)
            fault = endpoint.fault_for(name)
            if fault is not None:
                endpoint.note_fault(name, protocol, body, fault)
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
            params = protocol.decode(body)
            check_request(op, params)
            answer = check_response(op, handler(params))
            self._reply(200, answer if op.output_shape is not None else None, protocol=protocol)
        except ServiceError as error:
            endpoint.stats_count("errors", error.code)
            self._reply(error.status, protocol.error(error), protocol=protocol)
        except Exception as error:  # noqa: BLE001 - an endpoint bug answers 500, as a service fault would
            endpoint.stats_count("errors", "InternalFailure")
            failure = ServiceError("InternalFailure", f"{type(error).__name__}: {error}", status=500)
            self._reply(500, protocol.error(failure), protocol=protocol)

    def _control(self, method: str, body: bytes) -> None:
        try:
            request = json.loads(body) if body else {}
            if not isinstance(request, dict):
                raise TypeError("a control request is a JSON object")
            answer = self.server.endpoint.control(method, self.path, request)
        except (ValueError, KeyError, TypeError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            self._reply(400, {"__type": "ControlError", "message": str(message)})
            return
        if isinstance(answer, bytes):
            self._reply(200, answer, {"Content-Type": "application/zip"})
        else:
            self._reply(200, answer)

    def _reply(
        self,
        status: int,
        body: dict[str, Any] | bytes | None,
        headers: dict[str, str] | None = None,
        protocol: Protocol = AWS_JSON,
    ) -> None:
        data = body if isinstance(body, bytes) else protocol.encode(body)
        self.send_response(status)
        for name, value in {"Content-Type": protocol.content_type, **protocol.headers(), **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class LocalCodePipeline:
    """The endpoint, run in a background thread of this process.

    >>> with LocalCodePipeline() as endpoint:  # doctest: +SKIP
    ...     endpoint.store.create_job("Custom/Build/MyTool/1", configuration={"ProjectName": "demo"})
    ...     client = boto3.client("codepipeline", endpoint_url=endpoint.url)

    With `aws_url`, a local S3 and KMS (moto's server): jobs' input artifacts are uploaded there, `encryptionKey`
    can be a new KMS key, outputs are looked for on success, and `artifact_url` is the artifact front workers
    reach S3 through with the job's credentials.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        dispatch_timeout_s: float = 60.0,
        *,
        action_timeout_s: float = DEFAULT_ACTION_TIMEOUT_S,
        credentials_ttl_s: float = DEFAULT_CREDENTIALS_TTL_S,
        aws_url: str | None = None,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError("the local endpoint listens on the loopback interface only")
        artifacts = ArtifactStore(aws_url) if aws_url else None
        self.store = JobStore(dispatch_timeout_s, action_timeout_s, credentials_ttl_s, artifacts)
        self._front = ArtifactFront(aws_url, self.store.grant) if aws_url else None
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

    @property
    def artifact_url(self) -> str | None:
        """S3 for workers (AWS_ENDPOINT_URL_S3): the artifact front, when the endpoint has a local S3."""
        return self._front.url if self._front is not None else None

    def handler(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The store's method for an operation; ServiceError for one the endpoint does not serve."""
        if name in OPERATIONS:
            method: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self.store, xform_name(name))
            return method
        if name in service_model().operation_names:  # as LocalStack answers what it lacks
            raise ServiceError(
                "InternalFailure",
                f"API action '{name}' for service 'codepipeline' is not implemented by the local endpoint: it "
                "serves the job and action-type operations",
                status=501,
            )
        raise ServiceError("UnknownOperationException", f"Unknown operation {name}")

    def start(self) -> Self:
        if self._front is not None:
            self._front.start()
        # A short poll interval: stop() returns within it, which keeps test teardown quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="codepipeline-local", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        if self._front is not None:
            self._front.start()
        try:
            self._server.serve_forever()
        finally:
            if self._front is not None:
                self._front.stop()

    def stop(self) -> None:
        self._released.set()
        if self._thread is not None:  # shutdown() waits for serve_forever(): only once it was started
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._front is not None:
            self._front.stop()

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

    def note_fault(self, name: str, protocol: Any, body: bytes, fault: Fault) -> None:
        """Note an injected fault on the job the call names, for the job's trail (`JobStore.trail`)."""
        try:
            params = protocol.decode(body)
        except Exception:  # noqa: BLE001 - a body that does not decode names no job
            return
        if isinstance(params, dict):
            self.store.note_fault(name, params, fault)

    # -- control API ----------------------------------------------------------------------------------

    def control(self, method: str, path: str, request: dict[str, Any]) -> dict[str, Any]:
        """The `/_control/` HTTP API; `ControlClient` is its Python client."""
        route = path.removeprefix("/_control/").rstrip("/")
        parts = route.split("/")
        if parts[0] == "jobs" and len(parts) > 1:
            return self._job_route(method, parts[1], parts[2:])
        routes: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
            ("GET", "jobs"): lambda _: {"jobs": self.store.jobs()},
            ("POST", "jobs"): lambda r: {"jobIds": [self.store.create_job(**kw) for kw in _job_requests(r)]},
            ("POST", "action-types"): self._add_action_type,
            ("POST", "faults"): self._set_faults,
            ("GET", "faults"): lambda _: self._faults.to_json(),
            ("GET", "stats"): lambda _: self.stats(),
            ("GET", "settings"): lambda _: self._settings({}),
            ("POST", "settings"): self._settings,
            ("POST", "reset"): self._reset,
        }
        if (method, route) not in routes:
            raise KeyError(f"no control route {method} {path}")
        return routes[method, route](request)

    def _job_route(self, method: str, job_id: str, rest: list[str]) -> dict[str, Any]:
        """GET jobs/<id>, GET jobs/<id>/artifacts/<name>, POST jobs/<id>/{queue,time-out,expire-credentials}."""
        if method == "GET" and not rest:
            return self.store.job(job_id)
        if method == "GET" and len(rest) == 2 and rest[0] == "artifacts":
            described, content = self.store.artifact(job_id, rest[1])
            return {**described, "content": base64.b64encode(content).decode() if content is not None else None}
        actions = {
            "queue": self.store.queue,
            "time-out": self.store.time_out,
            "expire-credentials": self.store.expire_credentials,
        }
        if method == "POST" and len(rest) == 1 and rest[0] in actions:
            return actions[rest[0]](job_id)
        raise KeyError(f"no control route {method} /_control/jobs/{job_id}/{'/'.join(rest)}")

    def reset(self) -> None:
        """Forget every job, action type, fault and count."""
        self.store.reset()
        self.set_faults(Faults())
        with self._lock:
            self._stats = Stats()

    def _add_action_type(self, request: dict[str, Any]) -> dict[str, Any]:
        definition = {k: v for k, v in request.items() if k != "actionType"}
        self.store.add_action_type(request["actionType"], definition or None)
        return {}

    def _set_faults(self, request: dict[str, Any]) -> dict[str, Any]:
        self.set_faults(Faults.from_json(request))
        return self._faults.to_json()

    def _reset(self, _: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {}

    def _settings(self, request: dict[str, Any]) -> dict[str, Any]:
        """The store's timeouts: any of dispatchTimeoutSeconds, actionTimeoutSeconds (for jobs created from
        now on), credentialsTtlSeconds (for credentials issued from now on)."""
        names = {
            "dispatchTimeoutSeconds": "dispatch_timeout_s",
            "actionTimeoutSeconds": "action_timeout_s",
            "credentialsTtlSeconds": "credentials_ttl_s",
        }
        values = {name: float(value) for name, value in renamed(request, names, "settings").items()}
        if any(v < 0 for v in values.values()):
            raise ValueError("a timeout cannot be negative")
        for attribute, value in values.items():
            setattr(self.store, attribute, value)
        return {name: getattr(self.store, attribute) for name, attribute in names.items()}


_JOB_FIELDS = {
    "actionType": "action_type",
    "kind": "kind",
    "configuration": "configuration",
    "pipelineContext": "pipeline_context",
    "inputArtifacts": "input_artifacts",
    "outputArtifacts": "output_artifacts",
    "accountId": "account_id",
    "encryptionKey": "encryption_key",
    "artifactCredentials": "artifact_credentials",
    "clientId": "client_id",
    "clientToken": "client_token",
    "continuationToken": "continuation_token",
    "jobId": "job_id",
    "nonce": "nonce",
    "dispatchedNonce": "dispatched_nonce",
    "status": "status",
    "timeoutSeconds": "timeout_s",
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
