"""One job as the endpoint keeps it: its data as JobData carries it, the artifact credentials issued to it, and
its history."""

from __future__ import annotations

import base64
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from .action_types import ActionTypeKey, action_type_id, action_type_name
from .artifacts import Location

JobKind = Literal["custom", "thirdParty"]
JobStatus = Literal["Created", "Queued", "Dispatched", "InProgress", "TimedOut", "Succeeded", "Failed"]
ACTIVE = frozenset({"Dispatched", "InProgress"})
FINISHED = frozenset({"Succeeded", "Failed", "TimedOut"})
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
# The user guide's default timeout for actions other than the AWS ones that set their own: one hour.
DEFAULT_ACTION_TIMEOUT_S = 3600.0
# How long artifact credentials stay valid once issued (STS's default session length).
DEFAULT_CREDENTIALS_TTL_S = 3600.0


@dataclass
class IssuedCredentials:
    """Temporary artifact credentials the endpoint issued to one job; the artifact front checks requests
    against them."""

    job_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    issued_at: float
    expires_at: float

    @classmethod
    def new(cls, job_id: str, ttl_s: float) -> IssuedCredentials:
        now = time.time()
        return cls(
            job_id=job_id,
            # The shapes of STS's: ASIA and 16 upper-case letters or digits, 40 base64 characters, a base64 token.
            access_key_id="ASIA" + base64.b32encode(secrets.token_bytes(10)).decode(),
            secret_access_key=base64.b64encode(secrets.token_bytes(30)).decode(),
            session_token=base64.b64encode(secrets.token_bytes(72)).decode(),
            issued_at=now,
            expires_at=now + ttl_s,
        )

    @classmethod
    def fixed(cls, job_id: str, shape: dict[str, str]) -> IssuedCredentials:
        """Credentials a seed named: handed out as they are, and never expiring."""
        return cls(job_id, shape["accessKeyId"], shape["secretAccessKey"], shape["sessionToken"], time.time(), math.inf)

    def shape(self) -> dict[str, str]:
        return {
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key,
            "sessionToken": self.session_token,
        }

    def summary(self) -> dict[str, Any]:
        """What the control API shows of them: times, never a value."""
        return {
            "issuedAt": _iso(self.issued_at),
            "expiresAt": None if math.isinf(self.expires_at) else _iso(self.expires_at),
            "expired": self.expired(),
        }

    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass(frozen=True)
class Grant:
    """What one set of artifact credentials may do in the local S3: read the job's artifacts, write its outputs."""

    credentials: IssuedCredentials
    readable: frozenset[Location]
    writable: frozenset[Location]


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
    encryption_key: dict[str, str] | None = None
    client_id: str | None = None
    client_token: str | None = None
    continuation_token: str | None = None
    timeout_s: float = DEFAULT_ACTION_TIMEOUT_S
    status: JobStatus = "Queued"
    nonce: str | None = None
    preset_nonce: str | None = None  # the nonce the next dispatch hands out, when a seed named one
    past_nonces: list[str] = field(default_factory=list)  # kept for issued_secrets(); never shown
    fixed_credentials: IssuedCredentials | None = None
    created_at: float = field(default_factory=time.time)
    dispatched_at: float = 0.0
    dispatches: int = 0
    acknowledgements: int = 0
    query_value: str | None = None  # the value of its type's queryable property, which polls match
    credentials: list[IssuedCredentials] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # the output artifacts as found at success
    history: list[dict[str, Any]] = field(default_factory=list)
    # Every call that named the job and what it was answered, nonces by their ordinal only (`trail`)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def record(self, event: str, **detail: Any) -> None:
        self.history.append({"at": round(time.time(), 3), "event": event, "status": self.status, **detail})

    def note(self, operation: str, answer: str, nonce: str | None = None, **detail: Any) -> None:
        """One call that named the job, and its answer; a nonce it carried, as the number of the dispatch that
        issued it (`nonceOf`: 0 when the endpoint never issued it). Never the nonce itself."""
        entry: dict[str, Any] = {"at": round(time.time(), 3), "call": operation, "answer": answer}
        entry["status"] = self.status
        if nonce is not None:
            entry["nonceOf"] = self.nonce_ordinal(nonce)
        self.calls.append({**entry, **detail})

    def nonce_ordinal(self, nonce: str) -> int:
        """Which dispatch issued `nonce` (1 for the first), or 0 if none did; constant time per nonce compared."""
        issued = [*self.past_nonces, *([self.nonce] if self.nonce is not None else [])]
        matches = [n for n, known in enumerate(issued, 1) if secrets.compare_digest(nonce.encode(), known.encode())]
        return matches[-1] if matches else 0

    @property
    def has_artifacts(self) -> bool:
        return bool(self.input_artifacts or self.output_artifacts)

    def summary(self) -> dict[str, Any]:
        """The job as the control API shows it: state, data and history, never a nonce, token or credential."""
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
            "accountId": self.account_id,
            "pipelineContext": self.pipeline_context,
            "inputArtifacts": self.input_artifacts,
            "outputArtifacts": self.output_artifacts,
            "encryptionKey": self.encryption_key,
            "timeoutSeconds": self.timeout_s,
            "createdAt": _iso(self.created_at),
            "credentials": [c.summary() for c in self.credentials],
            "outputs": self.outputs,
            "history": list(self.history),
        }

    def data(self, credentials: IssuedCredentials | None) -> dict[str, Any]:
        """JobData / ThirdPartyJobData, with these artifact credentials."""
        data: dict[str, Any] = {
            "actionTypeId": action_type_id(self.action_type),
            "actionConfiguration": {"configuration": dict(self.configuration)},
            "pipelineContext": self.pipeline_context,
            "inputArtifacts": self.input_artifacts,
            "outputArtifacts": self.output_artifacts,
        }
        if credentials is not None:
            data["artifactCredentials"] = credentials.shape()
        if self.continuation_token is not None:
            data["continuationToken"] = self.continuation_token
        if self.encryption_key is not None:
            data["encryptionKey"] = self.encryption_key
        return data

    def grant(self, credentials: IssuedCredentials) -> Grant:
        outputs = frozenset(Location.of(a) for a in self.output_artifacts)
        return Grant(credentials, frozenset(Location.of(a) for a in self.input_artifacts) | outputs, outputs)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
