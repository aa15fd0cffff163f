"""The work function: runs each claimed job from the work queue and reports its result to CodePipeline.

What a work function of yours imports:

    from codepipeline_worker.work import Failure, Job, StillRunning, Success

    def run(job: Job) -> Success | Failure | StillRunning: ...
"""

from .job import (
    ArtifactCredentials,
    CurrentRevision,
    Failure,
    FailureType,
    Job,
    JobDetails,
    Outcome,
    StillRunning,
    Success,
    WorkFunction,
)

__all__ = [
    "ArtifactCredentials",
    "CurrentRevision",
    "Failure",
    "FailureType",
    "Job",
    "JobDetails",
    "Outcome",
    "StillRunning",
    "Success",
    "WorkFunction",
]
