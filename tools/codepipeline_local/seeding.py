"""Seeding a job: its artifacts (locations in the artifact store's bucket, content for the local S3), and every
reason CodePipeline could not have handed it out, in its model's words, found before the job exists."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

from .action_types import ActionType, ActionTypeKey, action_type_name
from .artifacts import ArtifactStore, Location, artifact_bucket, artifact_key
from .job import DEFAULT_ACCOUNT, DEFAULT_REGION, IssuedCredentials, Job
from .model import shape_problems

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_PIPELINE = "local-pipeline"
DEFAULT_ARTIFACT_NAMES = {"input": "SourceArtifact", "output": "BuildArtifact"}
# What the control API takes beyond the model's Artifact members: the input artifact's content.
CONTENT_FIELDS = ("files", "path")
type Uploads = list[tuple[Location, dict[str, Any]]]


def require_artifacts(store: ArtifactStore | None, what: str) -> ArtifactStore:
    if store is None:
        raise ValueError(f"{what} needs a local S3: start the endpoint with one (aws_url, or serve --aws-url)")
    return store


def artifacts(
    job: Job,
    declared: ActionType,
    store: ArtifactStore | None,
    *,
    kind: Literal["input", "output"],
    given: list[dict[str, Any]] | None,
    uploads: Uploads,
) -> list[dict[str, Any]]:
    """The job's artifacts of one kind: the seed's (each without a location gets one in the artifact bucket), or
    the type's default count. Input content goes to `uploads` when there is a local S3."""
    if given is None:
        count = declared.default_artifact_count(kind)
        base = DEFAULT_ARTIFACT_NAMES[kind]
        given = [{"name": base if n == 0 else f"{base}{n + 1}"} for n in range(count)]
    if not isinstance(given, list) or not all(isinstance(a, dict) for a in given):
        raise ValueError(f"{kind}Artifacts is a list of artifacts")
    listed = []
    pipeline = str(job.pipeline_context.get("pipelineName") or DEFAULT_PIPELINE)
    region = store.region if store else DEFAULT_REGION
    for entry in given:
        artifact = {k: v for k, v in entry.items() if k not in CONTENT_FIELDS}
        has_content = any(f in entry for f in CONTENT_FIELDS)
        if kind == "output" and has_content:
            raise ValueError("an output artifact has no content to seed: the worker writes it")
        if "location" not in artifact:
            location = Location(
                artifact_bucket(region, job.account_id), artifact_key(pipeline, str(artifact.get("name")))
            )
            artifact["location"] = {
                "type": "S3",
                "s3Location": {"bucketName": location.bucket, "objectKey": location.key},
            }
            if kind == "input" and (store is not None or has_content):
                uploads.append((location, entry))
        elif has_content:
            uploads.append((Location.of(artifact), entry))
        listed.append(artifact)
    return listed


def problems(job: Job, declared: ActionType, dispatched_nonce: str | None) -> list[str]:
    """Everything that keeps this job from being one CodePipeline could hand out, in the model's words."""
    owner_kind = {"Custom": "custom", "ThirdParty": "thirdParty"}.get(job.action_type[0])
    if job.kind != owner_kind:
        return [
            f"action type {action_type_name(job.action_type)} has no {job.kind} jobs: Custom types have custom "
            "jobs, ThirdParty types thirdParty (partner) jobs, and AWS types none a worker could take"
        ]
    placeholder = IssuedCredentials.new(job.id, 0) if job.has_artifacts else None
    data = job.data(job.fixed_credentials or placeholder)
    found = []
    if job.kind == "custom":
        if job.client_id or job.client_token:
            found.append("a custom job has no clientId or clientToken")
        found += shape_problems("Job", {"id": job.id, "data": data, "nonce": "1", "accountId": job.account_id})
    else:
        if not (job.client_id and job.client_token):
            found.append("a partner job needs a clientId and clientToken pair")
        found += shape_problems("ThirdPartyJobDetails", {"id": job.id, "data": data, "nonce": "1"})
        found += shape_problems("ThirdPartyJob", {"clientId": job.client_id, "jobId": job.id})
        if job.client_token:
            found += shape_problems("ClientToken", job.client_token, "clientToken")
    for name, value in (("nonce", job.preset_nonce), ("dispatchedNonce", dispatched_nonce)):
        if value is not None:
            found += shape_problems("Nonce", value, name)
    if job.status not in {"Created", "Queued"} or (dispatched_nonce is not None and job.status != "Queued"):
        found.append("a job is seeded Created, Queued, or dispatched with dispatchedNonce")
    if job.timeout_s <= 0:
        found.append("timeoutSeconds must be positive")
    found += declared.configuration_problems(job.configuration)
    found += declared.artifact_problems(len(job.input_artifacts), len(job.output_artifacts))
    return found


def refuse(problems: Iterable[str]) -> None:
    listed = list(problems)
    if listed:
        raise ValueError("; ".join(listed))


def default_context(
    key: ActionTypeKey,
    account_id: str = DEFAULT_ACCOUNT,
    *,
    pipeline_name: str | None = None,
    stage: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    """A real job's pipeline context: names, the pipeline's ARN, a fresh execution id and action execution id."""
    pipeline = pipeline_name or DEFAULT_PIPELINE
    return {
        "pipelineName": pipeline,
        "stage": {"name": stage or key[1]},
        "action": {"name": action or f"{key[2]}Action", "actionExecutionId": str(uuid.uuid4())},
        "pipelineArn": f"arn:aws:codepipeline:{DEFAULT_REGION}:{account_id}:{pipeline}",
        "pipelineExecutionId": str(uuid.uuid4()),
    }
