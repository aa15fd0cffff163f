"""The job life cycle of CodePipeline's custom and partner actions, in memory, safe from many threads.

    Created --queue--> Queued --poll--> Dispatched (fresh nonce) --acknowledge with that nonce--> InProgress
    --put result--> Succeeded | Failed

A Dispatched job not acknowledged within `dispatch_timeout_s` goes back to Queued and is dispatched again with a
new nonce, so the old nonce is stale. A job not finished within its action's timeout (from its creation) is
TimedOut, whatever state it was in. Every transition and every refused call is kept in the job's history.

Each call costs the same however many jobs the endpoint holds: queued jobs are indexed by action type, kind and
the value of the type's queryable property, and the two timeouts are heaps that a call pops only when due.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from . import seeding
from .action_types import ActionType, ActionTypeKey, ActionTypes, action_type_key, action_type_name, definition_from
from .artifacts import Location, zip_of
from .job import (
    ACTIVE,
    DEFAULT_ACCOUNT,
    DEFAULT_ACTION_TIMEOUT_S,
    DEFAULT_CREDENTIALS_TTL_S,
    FINISHED,
    Grant,
    IssuedCredentials,
    Job,
    JobKind,
    JobStatus,
)
from .model import ServiceError, check_response, operation, shape_problems
from .seeding import default_context

if TYPE_CHECKING:
    from collections.abc import Callable

    from .artifacts import ArtifactStore

# CodePipeline's quota on the output variables of one action, in bytes.
MAX_OUTPUT_VARIABLES_BYTES = 122_880

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_ACTION_TIMEOUT_S",
    "DEFAULT_CREDENTIALS_TTL_S",
    "Job",
    "JobStore",
    "action_type_key",
    "action_type_name",
    "default_context",
]


class JobStore:
    """All jobs and action types of one local endpoint. Every public method holds the one lock."""

    def __init__(
        self,
        dispatch_timeout_s: float = 60.0,
        action_timeout_s: float = DEFAULT_ACTION_TIMEOUT_S,
        credentials_ttl_s: float = DEFAULT_CREDENTIALS_TTL_S,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.dispatch_timeout_s = dispatch_timeout_s
        self.action_timeout_s = action_timeout_s
        self.credentials_ttl_s = credentials_ttl_s
        self.artifacts = artifacts
        self.action_types = ActionTypes()
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        # Queued jobs, oldest first, by (action type, kind, value of the type's queryable property).
        self._queues: dict[tuple[ActionTypeKey, JobKind, str | None], dict[str, Job]] = {}
        # The timeouts: heaps popped only when due. An entry whose job has moved on is skipped, told by the two
        # indexes below without touching the job.
        self._dispatched: list[tuple[float, int, str, int]] = []  # (dispatched at, seq, job id, dispatch number)
        self._deadlines: list[tuple[float, int, str]] = []  # (times out at, seq, job id)
        self._unacknowledged: dict[str, int] = {}  # Dispatched jobs: job id -> dispatch number
        self._unfinished: set[str] = set()
        self._seq = itertools.count()
        self._credentials: dict[str, IssuedCredentials] = {}

    # -- control --------------------------------------------------------------------------------------

    def add_action_type(self, action_type: str | dict[str, str], definition: dict[str, Any] | None = None) -> None:
        """Make an action type known; with a definition (CreateCustomActionType's members, and timeoutSeconds),
        declare it, replacing an earlier one: any owner, for partner types too."""
        key = action_type_key(action_type)
        with self._lock:
            if definition is None:
                self.action_types.implied(key)
                return
            self.action_types.define(definition_from(definition, key))
            self._reindex(key)

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
        encryption_key: dict[str, str] | Literal["new"] | None = None,
        artifact_credentials: dict[str, str] | None = None,
        client_id: str | None = None,
        client_token: str | None = None,
        continuation_token: str | None = None,
        job_id: str | None = None,
        nonce: str | None = None,
        dispatched_nonce: str | None = None,
        status: Literal["Created", "Queued"] = "Queued",
        timeout_s: float | None = None,
    ) -> str:
        """Seed a job, checked as CodePipeline's model and the action type's definition require before it exists.

        Unset fields get a real job's: a pipeline context with its ARN and execution id, and one input and one
        output artifact in the artifact store's bucket (uploaded to the local S3 when one is attached). Input
        artifact entries may carry `files` (name -> text) or `path` for their content; `encryption_key="new"`
        makes a KMS key. `nonce` is the one the first poll hands out; `dispatched_nonce` creates the job already
        dispatched with that nonce; `status="Created"` holds it until `queue()`. Raises ValueError for a job
        CodePipeline could not have."""
        key = action_type_key(action_type)
        kind = kind or ("thirdParty" if key[0] == "ThirdParty" else "custom")
        with self._lock:
            declared = self.action_types.usable(key)
        context = pipeline_context or default_context(key, account_id)
        if encryption_key == "new":
            encryption_key = {
                "id": seeding.require_artifacts(self.artifacts, "encryptionKey new").create_key(),
                "type": "KMS",
            }
        job = Job(
            id=job_id or str(uuid.uuid4()),
            kind=kind,
            action_type=key,
            configuration=dict(configuration or {}),
            pipeline_context=context,
            account_id=account_id,
            encryption_key=encryption_key,
            client_id=client_id,
            client_token=client_token,
            continuation_token=continuation_token,
            timeout_s=float(timeout_s or declared.timeout_s or self.action_timeout_s),
            status=status,
            preset_nonce=nonce,
        )
        uploads: seeding.Uploads = []
        job.input_artifacts = seeding.artifacts(
            job, declared, self.artifacts, kind="input", given=input_artifacts, uploads=uploads
        )
        job.output_artifacts = seeding.artifacts(
            job, declared, self.artifacts, kind="output", given=output_artifacts, uploads=[]
        )
        if artifact_credentials is not None:
            seeding.refuse(shape_problems("AWSSessionCredentials", artifact_credentials, "artifactCredentials"))
            job.fixed_credentials = IssuedCredentials.fixed(job.id, artifact_credentials)
        seeding.refuse(seeding.problems(job, declared, dispatched_nonce))
        for location, source in uploads:  # only once the job is known to be one CodePipeline could have
            seeding.require_artifacts(self.artifacts, "input artifact content").put(
                location, zip_of(source), job.encryption_key["id"] if job.encryption_key else None
            )
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"job {job.id} exists")
            self._insert(job)
            if dispatched_nonce is not None:  # as if a poll handed it out (its answer's credentials unseen)
                self._dispatch(job, dispatched_nonce, None)
        return job.id

    def queue(self, job_id: str) -> dict[str, Any]:
        """Created -> Queued: the action's job is now there to poll."""
        with self._lock:
            self._advance()
            job = self._control_job(job_id)
            if job.status != "Created":
                raise ValueError(f"job {job_id} is {job.status}, not Created")
            self._enqueue(job)
            job.record("queued")
            return job.summary()

    def time_out(self, job_id: str) -> dict[str, Any]:
        """Time the job out now, as its action's timeout would."""
        with self._lock:
            self._advance()
            job = self._control_job(job_id)
            if job.status in FINISHED:
                raise ValueError(f"job {job_id} is {job.status}: it can no longer time out")
            self._time_out(job)
            return job.summary()

    def expire_credentials(self, job_id: str) -> dict[str, Any]:
        """End every artifact credential issued to the job now: the next request with one is refused."""
        with self._lock:
            job = self._control_job(job_id)
            now = time.time()
            for issued in job.credentials:
                issued.expires_at = min(issued.expires_at, now)
            return job.summary()

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            return [job.summary() for job in self._jobs.values()]

    def job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self._control_job(job_id).summary()

    def artifact(self, job_id: str, name: str) -> tuple[dict[str, Any], bytes | None]:
        """A job's artifact by name: its entry, described as the local S3 has it, and its content if it exists."""
        with self._lock:
            job = self._control_job(job_id)
            entry = next((a for a in job.input_artifacts + job.output_artifacts if a["name"] == name), None)
        if entry is None:
            raise KeyError(f"job {job_id} has no artifact {name}")
        store = seeding.require_artifacts(self.artifacts, "reading artifacts")
        location = Location.of(entry)
        described = {"name": name, **store.describe(location)}
        return described, store.read(location) if described["exists"] else None

    def grant(self, access_key_id: str) -> Grant | None:
        """What a request signed with these artifact credentials may reach, if the endpoint issued them."""
        with self._lock:
            issued = self._credentials.get(access_key_id)
            return None if issued is None else self._jobs[issued.job_id].grant(issued)

    def trail(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history and every call that named it (`Job.note`), in time order: what a fault run prints for a
        job whose fate it cannot explain. No nonce, token or credential: nonces are shown by their ordinal."""
        with self._lock:
            job = self._control_job(job_id)
            return sorted([*job.history, *job.calls], key=lambda entry: entry["at"])

    def nonce_ordinal(self, job_id: str, nonce: str) -> int:
        """Which of the job's dispatches issued `nonce` (0: none did, or no such job)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return 0 if job is None else job.nonce_ordinal(nonce)

    def note_fault(self, operation_name: str, params: dict[str, Any], fault: str) -> None:
        """A call the endpoint answered with an injected fault, on the job it names (if any)."""
        with self._lock:
            job = self._jobs.get(str(params.get("jobId")))
            if job is not None:
                nonce = params.get("nonce")
                job.note(operation_name, f"fault: {fault}", nonce if isinstance(nonce, str) else None)

    def issued_secrets(self) -> list[str]:
        """Every nonce, client token and artifact credential the endpoint has handed out or holds."""
        with self._lock:
            values: list[str] = [c.secret_access_key for c in self._credentials.values()]
            values += [c.session_token for c in self._credentials.values()]
            values += [c.access_key_id for c in self._credentials.values()]
            for job in self._jobs.values():
                values += [v for v in (job.nonce, job.preset_nonce, job.client_token, *job.past_nonces) if v]
            return values

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._queues.clear()
            self._dispatched.clear()
            self._deadlines.clear()
            self._unacknowledged.clear()
            self._unfinished.clear()
            self._credentials.clear()
            self.action_types.clear()

    # -- CodePipeline operations (parameters already checked against the model) ----------------------------

    def poll_for_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._poll(
                params,
                "custom",
                "PollForJobs",
                lambda job, nonce, issued: {
                    "id": job.id,
                    "data": job.data(issued),
                    "nonce": nonce,
                    "accountId": job.account_id,
                },
            )

    def poll_for_third_party_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._poll(
                params,
                "thirdParty",
                "PollForThirdPartyJobs",
                lambda job, *_: {"clientId": job.client_id, "jobId": job.id},
            )

    def acknowledge_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            job = self._get(params["jobId"], "custom")
            return {"status": self._acknowledge(job, params["nonce"], "AcknowledgeJob")}

    def acknowledge_third_party_job(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            job = self._partner_job(params)
            return {"status": self._acknowledge(job, params["nonce"], "AcknowledgeThirdPartyJob")}

    def get_job_details(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            job = self._get(params["jobId"], "custom")
            issued = self._new_credentials(job) if job.status in ACTIVE else None
            answer = {"jobDetails": {"id": job.id, "data": job.data(issued), "accountId": job.account_id}}
            self._commit_answer("GetJobDetails", answer, job, issued)
            return answer

    def get_third_party_job_details(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            job = self._partner_job(params)
            if job.status not in ACTIVE:
                raise ServiceError("InvalidJobException", f"The job {job.id} is {job.status}")
            issued = self._new_credentials(job)
            details: dict[str, Any] = {"id": job.id, "data": job.data(issued)}
            if job.status == "Dispatched":  # once claimed, the nonce is no one else's to have
                details["nonce"] = job.nonce
            answer = {"jobDetails": details}
            self._commit_answer("GetThirdPartyJobDetails", answer, job, issued)
            job.note("GetThirdPartyJobDetails", "a nonce" if "nonce" in details else "no nonce", details.get("nonce"))
            return answer

    def put_job_success_result(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._succeed(params, "custom")

    def put_third_party_job_success_result(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._succeed(params, "thirdParty")

    def put_job_failure_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            self._fail(self._get(params["jobId"], "custom"), params)
            return {}

    def put_third_party_job_failure_result(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            self._fail(self._partner_job(params), params)
            return {}

    def create_custom_action_type(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            definition, answer = self.action_types.create_custom_action_type(params)
            self._reindex(definition.key)
            return answer

    def delete_custom_action_type(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.action_types.delete_custom_action_type(params)

    def list_action_types(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.action_types.list_action_types(params)

    def get_action_type(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.action_types.get_action_type(params, DEFAULT_ACCOUNT, self.action_timeout_s)

    # -- life cycle --------------------------------------------------------------------------------------

    def _poll(
        self,
        params: dict[str, Any],
        kind: JobKind,
        operation_name: str,
        entry: Callable[[Job, str, IssuedCredentials | None], dict[str, Any]],
    ) -> dict[str, Any]:
        """Dispatch up to maxBatchSize queued jobs, once the answer that hands them out is known to be valid."""
        self._advance()
        key = action_type_key(params["actionTypeId"])
        declared = self.action_types.get(key)
        if declared is None or key[0] != ("Custom" if kind == "custom" else "ThirdParty"):
            raise ServiceError("ActionTypeNotFoundException", f"Action type {action_type_name(key)} not found")
        value = _query_value(declared, params.get("queryParam") or {})
        queued = self._queues.get((key, kind, value), {})
        chosen = list(itertools.islice(queued.values(), params.get("maxBatchSize", 1)))
        # Partner jobs get their credentials from GetThirdPartyJobDetails, not from the poll.
        plans = [
            (job, self._new_nonce(job), self._new_credentials(job) if kind == "custom" else None) for job in chosen
        ]
        answer = {"jobs": [entry(job, nonce, issued) for job, nonce, issued in plans]}
        check_response(operation(operation_name), answer)  # a job the model cannot carry stays queued
        for job, nonce, issued in plans:
            self._dispatch(job, nonce, issued)
        return answer

    def _commit_answer(
        self, operation_name: str, answer: dict[str, Any], job: Job, issued: IssuedCredentials | None
    ) -> None:
        check_response(operation(operation_name), answer)
        if issued is not None:
            self._issue(job, issued)

    def _insert(self, job: Job) -> None:
        self.action_types.implied(job.action_type)
        self._jobs[job.id] = job
        self._unfinished.add(job.id)
        heapq.heappush(self._deadlines, (time.monotonic() + job.timeout_s, next(self._seq), job.id))
        job.record("created")
        if job.status == "Queued":
            self._enqueue(job)

    def _enqueue(self, job: Job) -> None:
        self._unacknowledged.pop(job.id, None)
        declared = self.action_types.get(job.action_type)
        queryable = declared.queryable if declared is not None else None
        job.query_value = job.configuration.get(queryable) if queryable else None
        if job.nonce is not None:
            job.past_nonces.append(job.nonce)
        job.status = "Queued"
        job.nonce = None
        self._queues.setdefault((job.action_type, job.kind, job.query_value), {})[job.id] = job

    def _dequeue(self, job: Job) -> None:
        queue = self._queues.get((job.action_type, job.kind, job.query_value))
        if queue is not None:
            queue.pop(job.id, None)

    def _reindex(self, key: ActionTypeKey) -> None:
        """The type's queryable property may have changed: index its queued jobs by the new one's values."""
        for queue_key in [k for k in self._queues if k[0] == key]:
            for job in list(self._queues.pop(queue_key).values()):
                self._enqueue(job)

    def _new_nonce(self, job: Job) -> str:
        nonce, job.preset_nonce = job.preset_nonce, None
        while nonce is None or nonce == job.nonce:
            nonce = str(secrets.randbelow(10**12))
        return nonce

    def _new_credentials(self, job: Job) -> IssuedCredentials | None:
        """Credentials for one answer: the seed's fixed ones, or fresh ones when the job has artifacts."""
        if job.fixed_credentials is not None:
            return job.fixed_credentials
        return IssuedCredentials.new(job.id, self.credentials_ttl_s) if job.has_artifacts else None

    def _issue(self, job: Job, issued: IssuedCredentials | None) -> None:
        if issued is not None and issued.access_key_id not in self._credentials:
            self._credentials[issued.access_key_id] = issued
            job.credentials.append(issued)

    def _dispatch(self, job: Job, nonce: str, issued: IssuedCredentials | None) -> None:
        self._dequeue(job)
        job.nonce = nonce
        job.status = "Dispatched"
        job.dispatched_at = time.monotonic()
        job.dispatches += 1
        self._unacknowledged[job.id] = job.dispatches
        self._issue(job, issued)
        heapq.heappush(self._dispatched, (job.dispatched_at, next(self._seq), job.id, job.dispatches))
        job.record("dispatched", dispatch=job.dispatches)

    def _advance(self) -> None:
        """Apply the timeouts that are due: each costs one heap pop, whatever the number of jobs."""
        now = time.monotonic()
        while self._dispatched and now - self._dispatched[0][0] > self.dispatch_timeout_s:
            _, _, job_id, number = heapq.heappop(self._dispatched)
            if self._unacknowledged.get(job_id) == number:
                job = self._jobs[job_id]
                self._enqueue(job)
                job.record("dispatch timed out")
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, job_id = heapq.heappop(self._deadlines)
            if job_id in self._unfinished:
                self._time_out(self._jobs[job_id])

    def _finish(self, job: Job, status: JobStatus) -> None:
        self._unacknowledged.pop(job.id, None)
        self._unfinished.discard(job.id)
        job.status = status

    def _time_out(self, job: Job) -> None:
        self._dequeue(job)
        self._finish(job, "TimedOut")  # the nonce stays: acknowledging with it answers TimedOut
        job.record("timed out", timeoutSeconds=job.timeout_s)

    def _acknowledge(self, job: Job, nonce: str, operation_name: str) -> str:
        if job.nonce is None or not secrets.compare_digest(nonce.encode(), job.nonce.encode()):
            job.record("acknowledge refused", error="InvalidNonceException")
            job.note(operation_name, "InvalidNonceException", nonce)
            raise ServiceError("InvalidNonceException", f"The nonce for job {job.id} is not valid")
        if job.status == "Dispatched":
            self._unacknowledged.pop(job.id, None)
            job.status = "InProgress"
            job.acknowledgements += 1
            job.record("acknowledged")
        # Acknowledging again with the nonce that claimed the job answers its status: a retry is harmless.
        job.note(operation_name, job.status, nonce)
        return job.status

    def _succeed(self, params: dict[str, Any], kind: JobKind) -> dict[str, Any]:
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
        with self._lock:
            self._advance()
            job = self._get(params["jobId"], kind) if kind == "custom" else self._partner_job(params)
            self._require_in_progress(job)
            outputs = list(job.output_artifacts)
        # A real pipeline's next stage reads the outputs: look for them (outside the lock: it is S3 I/O).
        found = self._find_outputs(outputs, job.encryption_key) if token is None else []
        with self._lock:
            self._advance()
            self._require_in_progress(job)
            self._finish(job, "Succeeded")
            details = params.get("executionDetails") or {}
            reported = {k: details[k] for k in ("summary", "percentComplete", "externalExecutionId") if k in details}
            if variables:
                reported["outputVariables"] = dict(variables)
            if "currentRevision" in params:
                reported["currentRevision"] = params["currentRevision"]
            if found:
                job.outputs = found
                reported["outputArtifacts"] = found
                missing = [o["name"] for o in found if not o["exists"]]
                if missing:
                    reported["missingOutputArtifacts"] = missing
            if token is not None:
                reported["followUpJobId"] = self._follow_up(job, token)
            job.record("succeeded", **reported)
            return {}

    def _follow_up(self, job: Job, token: str) -> str:
        """The job that continues this one: the same action execution and artifacts, a new id and timeout."""
        follow_up = Job(
            id=str(uuid.uuid4()),
            kind=job.kind,
            action_type=job.action_type,
            configuration=job.configuration,
            pipeline_context=job.pipeline_context,
            input_artifacts=job.input_artifacts,
            output_artifacts=job.output_artifacts,
            account_id=job.account_id,
            encryption_key=job.encryption_key,
            client_id=job.client_id,
            client_token=job.client_token,
            continuation_token=token,
            timeout_s=job.timeout_s,
            fixed_credentials=job.fixed_credentials,
        )
        self._insert(follow_up)
        return follow_up.id

    def _find_outputs(self, outputs: list[dict[str, Any]], key: dict[str, str] | None) -> list[dict[str, Any]]:
        if self.artifacts is None or not outputs:
            return []
        found = []
        for artifact in outputs:
            described = self.artifacts.describe(Location.of(artifact))
            entry = {"name": artifact["name"], **artifact["location"]["s3Location"], **described}
            if key is not None and described["exists"]:
                entry["encryptedWithJobKey"] = described.get("kmsKeyId") == key["id"]
            found.append(entry)
        return found

    def _fail(self, job: Job, params: dict[str, Any]) -> None:
        self._require_in_progress(job)
        self._finish(job, "Failed")
        details = params["failureDetails"]
        job.record("failed", failureType=details["type"], failureMessage=details["message"])

    def _require_in_progress(self, job: Job) -> None:
        if job.status != "InProgress":
            job.record("result refused", error="InvalidJobStateException")
            raise ServiceError("InvalidJobStateException", f"The job {job.id} is {job.status}, not InProgress")

    def _get(self, job_id: str, kind: JobKind | None) -> Job:
        job = self._jobs.get(job_id)
        if job is None or (kind is not None and job.kind != kind):
            raise ServiceError("JobNotFoundException", f"The job {job_id} was not found")
        return job

    def _control_job(self, job_id: str) -> Job:
        try:
            return self._get(job_id, None)
        except ServiceError:
            raise KeyError(f"no job {job_id}") from None

    def _partner_job(self, params: dict[str, Any]) -> Job:
        """The partner job a call names, once its clientToken is checked."""
        job = self._get(params["jobId"], "thirdParty")
        if not secrets.compare_digest(params["clientToken"].encode(), (job.client_token or "").encode()):
            job.record("client token refused", error="InvalidClientTokenException")
            raise ServiceError("InvalidClientTokenException", f"The client token for job {job.id} is not valid")
        return job


def _query_value(declared: ActionType, query: dict[str, str]) -> str | None:
    """The queryable property's value a poll asks for, as the API reference requires queryParam to name it."""
    queryable = declared.queryable
    if queryable is None:
        if query:
            raise ServiceError(
                "ValidationException",
                f"Action type {declared.name} has no queryable configuration property: queryParam must be empty",
            )
        return None
    if list(query) != [queryable]:
        raise ServiceError(
            "ValidationException",
            f"queryParam must name the queryable configuration property {queryable!r} of action type {declared.name}",
        )
    return query[queryable]
