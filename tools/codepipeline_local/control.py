"""A Python client for the local endpoint's `/_control/` API, for an endpoint running in another process."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any


class ControlError(RuntimeError):
    """The endpoint refused a control request."""


class ControlClient:
    """Create jobs, read their state and history, and set faults on a running local endpoint."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def create_jobs(self, action_type: str, count: int = 1, **fields: Any) -> list[str]:
        """Seed jobs. Fields are the control API's: configuration, pipelineContext, inputArtifacts (entries may
        carry `files` or `path`), outputArtifacts, accountId, encryptionKey ("new" or {"id", "type"}),
        artifactCredentials, clientId, clientToken, continuationToken, jobId, nonce, dispatchedNonce,
        status ("Created" or "Queued"), timeoutSeconds, kind."""
        answer = self._call("POST", "jobs", {"actionType": action_type, "count": count, **fields})
        return list(answer["jobIds"])

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "jobs")["jobs"])

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"jobs/{job_id}")

    def add_action_type(self, action_type: str, **definition: Any) -> None:
        """Make an action type known; a definition (configurationProperties, settings, inputArtifactDetails,
        outputArtifactDetails, timeoutSeconds) declares it, for partner types too."""
        self._call("POST", "action-types", {"actionType": action_type, **definition})

    def queue(self, job_id: str) -> dict[str, Any]:
        """A job seeded Created becomes Queued."""
        return self._call("POST", f"jobs/{job_id}/queue", {})

    def time_out(self, job_id: str) -> dict[str, Any]:
        """The job times out now, as its action's timeout would."""
        return self._call("POST", f"jobs/{job_id}/time-out", {})

    def expire_credentials(self, job_id: str) -> dict[str, Any]:
        """Every artifact credential issued to the job expires now."""
        return self._call("POST", f"jobs/{job_id}/expire-credentials", {})

    def artifact(self, job_id: str, name: str) -> tuple[dict[str, Any], bytes | None]:
        """A job's artifact as the local S3 has it (exists, size, encryption, kmsKeyId), and its content."""
        answer = self._call("GET", f"jobs/{job_id}/artifacts/{name}")
        content = answer.pop("content")
        return answer, base64.b64decode(content) if content is not None else None

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """latencySeconds, jitterSeconds, throttle, http500, drop (shares 0..1), hangAfter, operations, seed."""
        return self._call("POST", "faults", faults)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def set_dispatch_timeout(self, seconds: float) -> dict[str, Any]:
        return self.settings(dispatchTimeoutSeconds=seconds)

    def settings(self, **values: float) -> dict[str, Any]:
        """Set any of dispatchTimeoutSeconds, actionTimeoutSeconds, credentialsTtlSeconds; answers all three."""
        return self._call("POST", "settings", values) if values else self._call("GET", "settings")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "reset", {})

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the local endpoint's, http on loopback
            f"{self.url}/_control/{route}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - as above
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as error:
            message = json.loads(error.read() or b"{}").get("message", str(error))
            raise ControlError(message) from None
