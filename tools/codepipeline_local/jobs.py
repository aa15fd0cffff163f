"""The job life cycle of CodePipeline's custom and partner actions, in memory, safe from many threads.

Queued --poll--> Dispatched (fresh nonce) --acknowledge with that nonce--> InProgress --put result--> Succeeded |
Failed. A Dispatched job not acknowledged within `dispatch_timeout_s` goes back to Queued and is dispatched
again with a new nonce, so the old nonce is stale. Every transition and every refused call is kept in the job's
history.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import ServiceError

JobKind = Literal["custom", "thirdParty"]
ActionTypeKey = tuple[str, str, str, str]  # owner, category, provider, version
DEFAULT_ACCOUNT = "123456789012"
# CodePipeline's quota on the output variables of one action, in bytes.
MAX_OUTPUT_VARIABLES_BYTES = 122_880


def action_type_key(value: str | dict[str, str]) -> ActionTypeKey:
    """Owner/Category/Provider/Version, or CodePipeline's ActionTypeId dict."""
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) != 4:
            raise ValueError(f"action type {value!r} is not Owner/Category/Provider/Version")
        return (parts[0], parts[1], parts[2], parts[3])
    return (value["owner"], value["category"], value["provider"], value["version"])


def action_type_name(key: ActionTypeKey) -> str:
    return "/".join(key)


def _action_type_id(key: ActionTypeKey) -> dict[str, str]:
    return {"owner": key[0], "category": key[1], "provider": key[2], "version": key[3]}


def _random(alphabet: str, size: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(size))


@dataclass
class Job:
    id: str
    kind: JobKind
    action_type: ActionTypeKey
    configuration: dict[str, str] = field(default_factory=dict)
    pipeline_context: dict[str, Any] = field(default_factory=dict)
    input_artifacts: list[dict[str, Any]] = field(default_factory=list)
    output_artifacts: list[dict[str, Any]] = field(default_factory=list)
    account_id: str = DEFAULT_ACCOUNT
    client_id: str | None = None
    client_token: str | None = None
    continuation_token: str | None = None
    status: str = "Queued"
    nonce: str | None = None
    dispatched_at: float = 0.0
    dispatches: int = 0
    acknowledgements: int = 0
    credentials: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self, event: str, **detail: Any) -> None:
        self.history.append({"at": round(time.time(), 3), "event": event, "status": self.status, **detail})

    def summary(self) -> dict[str, Any]:
        """The job as the control API shows it: state and history, never the nonce or the token."""
        return {
            "jobId": self.id,
            "kind": self.kind,
            "actionType": action_type_name(self.action_type),
            "status": self.status,
            "dispatches": self.dispatches,
            "acknowledgements": self.acknowledgements,
            "configuration": self.configuration,
            "clientId": self.client_id,
            "continuationToken": self.continuation_token,
            "history": list(self.history),
        }

    def data(self) -> dict[str, Any]:
        """JobData / ThirdPartyJobData, with fresh temporary artifact credentials as the service gives."""
        data: dict[str, Any] = {
            "actionTypeId": _action_type_id(self.action_type),
            "actionConfiguration": {"configuration": dict(self.configuration)},
            "pipelineContext": self.pipeline_context,
            "inputArtifacts": self.input_artifacts,
            "outputArtifacts": self.output_artifacts,
        }
        if self.credentials:  # issued at dispatch
            data["artifactCredentials"] = self.credentials
        if self.continuation_token is not None:
            data["continuationToken"] = self.continuation_token
        return data


class JobStore:
    """All jobs and action types of one local endpoint. Every public method holds the one lock."""

    def __init__(self, dispatch_timeout_s: float = 60.0) -> None:
        self.dispatch_timeout_s = dispatch_timeout_s
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._action_types: set[ActionTypeKey] = set()

    # -- control --------------------------------------------------------------------------------------

    def add_action_type(self, action_type: str | dict[str, str]) -> None:
        with self._lock:
            self._action_types.add(action_type_key(action_type))

    def create_job(
        self,
        action_type: str | dict[str, str],
        *,
        kind: JobKind | None = None,
        configuration: dict[str, str] | None = None,
        pipeline_context: dict[str, Any] | None = None,
        input_artifacts: list[dict[str, Any]] | None = None,
        output_artifacts: list[dict[str, Any]] | None = None,
        account_id: str = DEFAULT_ACCOUNT,
        client_id: str | None = None,
        client_token: str | None = None,
        continuation_token: str | None = None,
        job_id: str | None = None,
        dispatched_nonce: str | None = None,
    ) -> str:
        """Queue a job; with `dispatched_nonce`, as if a poll had already handed it out with that nonce."""
        key = action_type_key(action_type)
        kind = kind or ("thirdParty" if key[0] == "ThirdParty" else "custom")
        if kind == "thirdParty" and not (client_id and client_token):
            raise ValueError("a partner job needs a clientId and clientToken pair")
        job = Job(
            id=job_id or str(uuid.uuid4()),
            kind=kind,
            action_type=key,
            configuration=dict(configuration or {}),
            pipeline_context=pipeline_context or _default_context(key),
            input_artifacts=list(input_artifacts or []),
            output_artifacts=list(output_artifacts or []),
            account_id=account_id,
            client_id=client_id,
            client_token=client_token,
            continuation_token=continuation_token,
        )
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"job {job.id} exists")
            self._action_types.add(key)
            self._jobs[job.id] = job
            job.record("created")
            if dispatched_nonce is not None:
                self._dispatch(job, dispatched_nonce)
        return job.id

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            self._expire()
            return [job.summary() for job in self._jobs.values()]

    def job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            self._expire()
            return self._get(job_id, None).summary()

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._action_types.clear()

    # -- CodePipeline operations (parameters already checked against the model) ----------------------------

    def poll_for_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = self._poll(params, "custom")
            return {"jobs": [{"id": j.id, "data": j.data(), "nonce": j.nonce, "accountId": j.account_id} for j in jobs]}

    def poll_for_third_party_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            jobs = self._poll(params, "thirdParty")
            return {"jobs": [{"clientId": j.client_id, "jobId": j.id} for j in jobs]}

    def acknowledge_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._get(params["jobId"], "custom")
            return {"status": self._acknowledge(job, params["nonce"])}

    def acknowledge_third_party_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._partner_job(params)
            return {"status": self._acknowledge(job, params["nonce"])}

    def get_job_details(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._get(params["jobId"], "custom")
            return {"jobDetails": {"id": job.id, "data": job.data(), "accountId": job.account_id}}

    def get_third_party_job_details(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._partner_job(params)
            if job.status not in {"Dispatched", "InProgress"}:
                raise ServiceError("InvalidJobException", f"The job {job.id} is {job.status}")
            details: dict[str, Any] = {"id": job.id, "data": job.data()}
            if job.status == "Dispatched":  # once claimed, the nonce is no one else's to have
                details["nonce"] = job.nonce
            return {"jobDetails": details}

    def put_job_success_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._succeed(self._get(params["jobId"], "custom"), params)
            return {}

    def put_job_failure_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._fail(self._get(params["jobId"], "custom"), params)
            return {}

    def put_third_party_job_success_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._partner_job(params)
            self._succeed(job, params)
            return {}

    def put_third_party_job_failure_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._partner_job(params)
            self._fail(job, params)
            return {}

    # -- life cycle --------------------------------------------------------------------------------------

    def _poll(self, params: dict[str, Any], kind: JobKind) -> list[Job]:
        self._expire()
        key = action_type_key(params["actionTypeId"])
        wanted_owner = "Custom" if kind == "custom" else "ThirdParty"
        if key not in self._action_types or key[0] != wanted_owner:
            raise ServiceError("ActionTypeNotFoundException", f"Action type {action_type_name(key)} not found")
        query = params.get("queryParam") or {}
        limit = params.get("maxBatchSize", 1)
        found = [
            job
            for job in self._jobs.values()
            if job.action_type == key
            and job.kind == kind
            and job.status == "Queued"
            and all(job.configuration.get(k) == v for k, v in query.items())
        ][:limit]
        for job in found:
            self._dispatch(job, None)
        return found

    def _dispatch(self, job: Job, nonce: str | None) -> None:
        previous = job.nonce
        while nonce is None or nonce == previous:
            nonce = str(secrets.randbelow(10**12))
        job.nonce = nonce
        job.status = "Dispatched"
        job.dispatched_at = time.monotonic()
        job.dispatches += 1
        job.credentials = {
            "accessKeyId": "ASIA" + _random(string.ascii_uppercase + string.digits, 16),
            "secretAccessKey": _random(string.ascii_letters + string.digits + "/+", 40),
            "sessionToken": _random(string.ascii_letters + string.digits, 96),
        }
        job.record("dispatched", dispatch=job.dispatches)

    def _expire(self) -> None:
        now = time.monotonic()
        for job in self._jobs.values():
            if job.status == "Dispatched" and now - job.dispatched_at > self.dispatch_timeout_s:
                job.status = "Queued"
                job.nonce = None
                job.record("dispatch timed out")

    def _acknowledge(self, job: Job, nonce: str) -> str:
        self._expire()
        if nonce != job.nonce:
            job.record("acknowledge refused", error="InvalidNonceException")
            raise ServiceError("InvalidNonceException", f"The nonce for job {job.id} is not valid")
        if job.status == "Dispatched":
            job.status = "InProgress"
            job.acknowledgements += 1
            job.record("acknowledged")
        # Acknowledging again with the nonce that claimed the job answers its status: a retry is harmless.
        return job.status

    def _succeed(self, job: Job, params: dict[str, Any]) -> None:
        token = params.get("continuationToken")
        variables = params.get("outputVariables")
        if token is not None and variables:
            raise ServiceError(
                "ValidationException", "outputVariables can be included only when there is no continuation token"
            )
        if (
            variables
            and sum(len(k.encode()) + len(v.encode()) for k, v in variables.items()) > MAX_OUTPUT_VARIABLES_BYTES
        ):
            raise ServiceError(
                "OutputVariablesSizeExceededException", "Exceeded the total size limit for all variables"
            )
        self._require_in_progress(job)
        job.status = "Succeeded"
        details = params.get("executionDetails") or {}
        reported = {k: details[k] for k in ("summary", "percentComplete", "externalExecutionId") if k in details}
        if variables:
            reported["outputVariables"] = dict(variables)
        if "currentRevision" in params:
            reported["currentRevision"] = params["currentRevision"]
        if token is None:
            job.record("succeeded", **reported)
            return
        follow_up = self.create_job(
            _action_type_id(job.action_type),
            kind=job.kind,
            configuration=job.configuration,
            pipeline_context=job.pipeline_context,
            input_artifacts=job.input_artifacts,
            output_artifacts=job.output_artifacts,
            account_id=job.account_id,
            client_id=job.client_id,
            client_token=job.client_token,
            continuation_token=token,
        )
        job.record("succeeded", followUpJobId=follow_up, **reported)

    def _fail(self, job: Job, params: dict[str, Any]) -> None:
        self._require_in_progress(job)
        job.status = "Failed"
        details = params["failureDetails"]
        job.record("failed", failureType=details["type"], failureMessage=details["message"])

    def _require_in_progress(self, job: Job) -> None:
        self._expire()
        if job.status != "InProgress":
            raise ServiceError("InvalidJobStateException", f"The job {job.id} is {job.status}, not InProgress")

    def _get(self, job_id: str, kind: JobKind | None) -> Job:
        job = self._jobs.get(job_id)
        if job is None or (kind is not None and job.kind != kind):
            raise ServiceError("JobNotFoundException", f"The job {job_id} was not found")
        return job

    def _partner_job(self, params: dict[str, Any]) -> Job:
        """The partner job a call names, once its clientToken is checked."""
        job = self._get(params["jobId"], "thirdParty")
        self._check_token(job, params["clientToken"])
        return job

    @staticmethod
    def _check_token(job: Job, token: str) -> None:
        if not secrets.compare_digest(token.encode(), (job.client_token or "").encode()):
            job.record("client token refused", error="InvalidClientTokenException")
            raise ServiceError("InvalidClientTokenException", f"The client token for job {job.id} is not valid")


def _default_context(key: ActionTypeKey) -> dict[str, Any]:
    return {
        "pipelineName": "local-pipeline",
        "stage": {"name": key[1]},
        "action": {"name": f"{key[2]}Action", "actionExecutionId": str(uuid.uuid4())},
    }
