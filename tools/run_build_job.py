"""`make run`'s Build job: the Build-style example action (`codepipeline_worker.examples.source_check`) end to end,
with real artifacts.

Each action type is deployed as a stack of its own (its ACTION_TYPES, work queue, job table and WORK_FUNCTION),
so the Build action gets its own here, beside the example gate's: the same two Lambda entry points, built from their
own settings. The run makes the job's input artifact, a source revision, through the endpoint: zipped into the
local S3 (moto's), SSE-KMS with a new key of the local KMS, the job's `encryptionKey`. The work function reads it
and writes its report as the output artifact with the job's artifact credentials only, through the endpoint's
artifact front; afterwards the run shows both artifacts as a next stage would find them.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from local_resources import create_job_table, create_work_queues

if TYPE_CHECKING:
    from codepipeline_local import LocalCodePipeline
    from codepipeline_worker.acknowledger.service import JobService
    from codepipeline_worker.shared.adapter import WorkQueue
    from codepipeline_worker.work.runner import WorkRunner

ACTION_TYPE = "Custom/Build/SourceCheck/1"
WORK_FUNCTION = "codepipeline_worker.examples.source_check:check_sources"
NAME = "source check"
# The source revision: one file over MaxFileBytes, reported as a finding that does not fail the job.
SOURCE = {
    "README.md": "# web\n\nThe web front end.\n",
    "app.py": "def handler(event, context):\n    return {'statusCode': 200}\n",
    "requirements.txt": "boto3\n",
    "static/bundle.js": "// bundled\n" + "console.log('x');\n" * 300,
}
CONFIGURATION = {"MaxFileBytes": "4096", "FailOnFindings": "false"}
INPUT, OUTPUT = "SourceArtifact", "ReportArtifact"


@dataclass
class BuildStack:
    """The Build action's stack: its acknowledger's service, its work queue and its work function's runner."""

    service: JobService
    queue: WorkQueue
    runner: WorkRunner


def seed(endpoint: LocalCodePipeline) -> str:
    """The Build job, queued: its source revision uploaded, its report's location declared, a new KMS key."""
    return endpoint.store.create_job(
        ACTION_TYPE,
        configuration=CONFIGURATION,
        input_artifacts=[{"name": INPUT, "files": SOURCE}],
        output_artifacts=[{"name": OUTPUT}],
        encryption_key="new",
    )


def announce(endpoint: LocalCodePipeline) -> None:
    print(f"and a Build job ({ACTION_TYPE}) with a source zip, in a stack of its own: work function")
    print(f"   {WORK_FUNCTION}; artifacts through the endpoint's S3 front {endpoint.artifact_url}")


def stack(environ: dict[str, str]) -> BuildStack:
    """The stack's functions, configured from `environ` (the run's) with the stack's own settings; call once the
    run's environment points at the local services."""
    from codepipeline_worker.acknowledger.config import load_settings  # noqa: PLC0415 - after the environment
    from codepipeline_worker.acknowledger.service import JobService  # noqa: PLC0415
    from codepipeline_worker.shared.adapter import open_work_queue  # noqa: PLC0415
    from codepipeline_worker.shared.config import load_config  # noqa: PLC0415
    from codepipeline_worker.work.config import WorkerSettings  # noqa: PLC0415
    from codepipeline_worker.work.runner import WorkRunner  # noqa: PLC0415

    queue_url, _ = create_work_queues(boto3.client("sqs"), "source-check-jobs")
    table = create_job_table(boto3.client("dynamodb"), "source-check-jobs")
    own = {"ACTION_TYPES": ACTION_TYPE, "JOB_QUEUE_URL": queue_url, "JOB_TABLE_NAME": table}
    settings = load_config(WorkerSettings, {**environ, **own, "WORK_FUNCTION": WORK_FUNCTION})
    return BuildStack(
        JobService.from_settings(load_settings({**environ, **own})),
        open_work_queue(queue_url, settings),
        WorkRunner.from_settings(settings),
    )


def show_artifacts(endpoint: LocalCodePipeline, job_id: str) -> None:
    """The Build job's input and output artifacts, as the local S3 holds them: where, how big, how encrypted, and
    what the report says."""
    job = endpoint.store.job(job_id)
    key = (job["encryptionKey"] or {}).get("id")
    print("== the Build job's artifacts (in the local S3, as a next stage would read them)")
    for kind, entry in [("input", a) for a in job["inputArtifacts"]] + [("output", a) for a in job["outputArtifacts"]]:
        described, content = endpoint.store.artifact(job_id, entry["name"])
        s3 = entry["location"]["s3Location"]
        where = f"s3://{s3['bucketName']}/{s3['objectKey']}"
        if content is None:
            print(f"   {kind:6} {entry['name']:15} {where}  MISSING")
            continue
        if described.get("encryption") == "aws:kms":
            whose = "the job's key" if described.get("kmsKeyId") == key else "NOT the job's key"
            encryption = f"SSE-KMS with {described.get('kmsKeyId')} ({whose})"
        else:
            encryption = f"{described.get('encryption', 'no encryption')} (NOT the job's key)"
        members = zipfile.ZipFile(io.BytesIO(content)).namelist()
        print(f"   {kind:6} {entry['name']:15} {where}  {described['size']} bytes, zip of {members}")
        print(f"   {'':22} {encryption}")
        if kind == "output":
            _show_report(content)
    print()


def _show_report(content: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        report: dict[str, Any] = json.loads(archive.read("report.json"))
    print(f"   {'':22} report.json: {report['filesChecked']} files checked; findings {json.dumps(report['findings'])}")
