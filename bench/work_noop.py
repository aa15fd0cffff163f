"""The bench's work function: reads the job's configuration (one GetJobDetails, as most work does) and succeeds,
so that what is measured is the work side's own cost around the two calls."""

from codepipeline_worker.work import Job, Success


def succeed(job: Job) -> Success:
    return Success(summary=f"job {job.id} done, {len(job.configuration)} settings")
