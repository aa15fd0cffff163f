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

from typing import TYPE_CHECKING, Any

from ..shared.startup import collector_paused

# Most of the work function's init is here (its handler imports this package first): the cyclic garbage collector
# paused for it, as for the handler's own (shared/startup.py).
with collector_paused():
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

if TYPE_CHECKING:
    from .properties import ConfigurationProperty


def __getattr__(name: str) -> Any:
    """ConfigurationProperty, imported on first use: a work function that declares no properties does not pay
    for it at cold start."""
    if name == "ConfigurationProperty":
        from .properties import ConfigurationProperty  # noqa: PLC0415 - see above

        return ConfigurationProperty
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
