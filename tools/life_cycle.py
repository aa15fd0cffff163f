"""Each job's life cycle on the local endpoint and what the work function reported: `make run` and `make invoke`
print it the same way."""

from __future__ import annotations

import json
from typing import Any, TextIO


def states(job: dict[str, Any]) -> list[str]:
    """The statuses the job went through, in order, each once."""
    seen: list[str] = []
    for entry in job["history"]:
        if not seen or seen[-1] != entry["status"]:
            seen.append(entry["status"])
    return seen


def reported(job: dict[str, Any]) -> str | None:
    """What the work function reported for the job (None while it has reported nothing)."""
    last = job["history"][-1] if job["history"] else {}
    if last.get("event") == "failed":
        return f"failed ({last['failureType']}): {last['failureMessage']}"
    if last.get("event") != "succeeded":
        return None
    said = [last["summary"]] if last.get("summary") else []
    if "followUpJobId" in last:
        said.append(f"[{last.get('percentComplete', 0)} %, continues as {last['followUpJobId']}]")
    text = " ".join(said)
    if "outputVariables" in last:
        text += f"; output variables {json.dumps(last['outputVariables'])}"
    return f"succeeded: {text}" if text else "succeeded"


def follow_ups(jobs: list[dict[str, Any]]) -> dict[str, str]:
    """Each follow-up job (of a StillRunning result), mapped to the job it continues."""
    return {
        entry["followUpJobId"]: job["jobId"] for job in jobs for entry in job["history"] if "followUpJobId" in entry
    }


def show(jobs: list[dict[str, Any]], names: dict[str, str], out: TextIO) -> None:
    """Each job: its name, id and statuses, then what was reported for it."""
    continues = follow_ups(jobs)
    for job in jobs:
        name = names.get(job["jobId"])
        if name is None:
            first = continues.get(job["jobId"], "")
            while first in continues:
                first = continues[first]
            name = f"{names.get(first, '?')} (follow-up)" if first else "?"
        print(f"   {name:20} {job['jobId']}  {' -> '.join(states(job))}", file=out)
        said = reported(job)
        if said is not None:
            print(f"   {'':20} {said}", file=out)
