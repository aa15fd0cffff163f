"""The work function: runs each claimed job from the work queue and reports its result to CodePipeline.

What a work function of yours imports:

    from codepipeline_worker.work import ConfigurationProperty, Failure, Job, StillRunning, Success

    CONFIGURATION_PROPERTIES = [ConfigurationProperty(name="Target", required=True, example="staging")]

    def run(job: Job) -> Success | Failure | StillRunning:
        source = job.input().extract("/tmp/source")           # the input artifact, unzipped
        ...
        job.output().write_directory("/tmp/out")              # zipped, encrypted, uploaded
        return Success(summary="built")
"""

from .artifacts import ArtifactError, InputArtifact, OutputArtifact, UnsafeArtifact
from .job import (
    ArtifactCredentials,
    CurrentRevision,
    EncryptionKey,
    Failure,
    FailureType,
    Job,
    JobDetails,
    Outcome,
    StillRunning,
    Success,
    WorkFunction,
)
from .properties import ConfigurationProperty

__all__ = [
    "ArtifactCredentials",
    "ArtifactError",
    "ConfigurationProperty",
    "CurrentRevision",
    "EncryptionKey",
    "Failure",
    "FailureType",
    "InputArtifact",
    "Job",
    "JobDetails",
    "Outcome",
    "OutputArtifact",
    "StillRunning",
    "Success",
    "UnsafeArtifact",
    "WorkFunction",
]
