"""What a fault run knows of each job it found violated, gathered at the verdict, while the endpoint, the job table
and the queues still hold it: written to `violations.json` in the work directory, and printed in short.

Per job: the endpoint's trail (its history, and every call that named the job with its answer: each dispatch, each
acknowledgement attempt with the ordinal of the dispatch whose nonce it carried, each injected fault, each
result); the job table's items naming it (hand-off records, their nonce shown by its ordinal too); the messages
left on the work and dead-letter queues for it; every invocation that was given it, with its result for the job;
its work runs; and each log line that names it. No secret: nonces by their ordinal, events never copied, and any
value the endpoint issued replaced with `<secret>` before anything is written.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .cluster import Cluster
    from .verdict import Facts

TRAIL_FILE = "violations.json"
_PRINTED_JOBS = 3


def violated_jobs(facts: Facts, violations: list[str]) -> list[str]:
    """The jobs the violations name (each starts `<jobId>: ...`), in order, once each."""
    named = (v.split(":", 1)[0] for v in violations)
    return list(dict.fromkeys(job_id for job_id in named if job_id in facts.jobs))


def write_trails(facts: Facts, cluster: Cluster, job_ids: list[str], folder: Path) -> str:
    """Write each violated job's trail to the work directory; return the short form to print ("" for none)."""
    if not job_ids:
        return ""
    items = cluster.client("dynamodb").scan(TableName=cluster.table)["Items"]
    logs = {p.name: p.read_text(errors="replace").splitlines() for p in sorted(folder.glob("*.log"))}
    trails = {job_id: _trail(facts, cluster, job_id, items, logs) for job_id in job_ids}
    text = _redacted(json.dumps(trails, indent=1, default=str), facts.secrets)
    (folder / TRAIL_FILE).write_text(text)
    shown = json.loads(text)
    lines = [f"what the run knows of the violated jobs: {folder / TRAIL_FILE}"]
    for job_id in job_ids[:_PRINTED_JOBS]:
        lines.append(f"  {job_id}, at the endpoint:")
        lines += [f"    {_line(entry)}" for entry in shown[job_id]["endpoint"]]
        lines.append(f"    job table: {shown[job_id]['table'] or 'nothing'}")
    return "\n".join(lines)


def _trail(
    facts: Facts, cluster: Cluster, job_id: str, items: list[dict[str, Any]], logs: dict[str, list[str]]
) -> dict[str, Any]:
    store = cluster.endpoint.store
    return {
        "endpoint": store.trail(job_id),
        "table": [_item(store.nonce_ordinal, job_id, item) for item in items if _names(item, job_id)],
        "dead letters": [body for body in facts.dead_letters if job_id in body],
        "messages left on the work queue (all jobs)": facts.left_on_queue,
        "invocations": [
            {
                "id": i.id,
                "function": i.function,
                "kind": i.kind,
                "attempt": i.attempt,
                "started": round(i.started_at, 3),
                "ended": round(i.ended_at, 3),
                "killed": bool(i.reply and i.reply.killed),
                "error": i.reply.error_type if i.reply else None,
                "result": _result_for(i.reply.result if i.reply else None, job_id),
            }
            for i in facts.record.invocations
            if job_id in i.jobs
        ],
        "runs": facts.runs.get(job_id, []),
        "log lines": {name: [line for line in lines if job_id in line] for name, lines in logs.items()},
    }


def _names(item: dict[str, Any], job_id: str) -> bool:
    return any(job_id in str(value) for key, value in item.items() if key in ("id", "jobId", "message", "data"))


def _item(ordinal: Any, job_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """A table item as plain values, its nonce replaced by the ordinal of the dispatch that issued it."""
    plain = {key: next(iter(value.values())) for key, value in item.items()}
    if "nonce" in plain:
        plain["nonce"] = f"of dispatch {ordinal(job_id, str(plain['nonce']))}"
    return plain


def _result_for(result: Any, job_id: str) -> Any:
    """The part of an invocation's answer about this job (a poll's or a batch's results hold many)."""
    if not isinstance(result, dict):
        return result
    entries = result.get("results")
    if isinstance(entries, list):
        return [entry for entry in entries if isinstance(entry, dict) and entry.get("jobId") == job_id] or None
    return result


def _line(entry: dict[str, Any]) -> str:
    what = entry.get("event") or f"{entry.get('call')} -> {entry.get('answer')}"
    detail = {k: v for k, v in entry.items() if k not in ("at", "event", "call", "answer")}
    return f"{entry['at']:.3f} {what} {json.dumps(detail)}"


def _redacted(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return text
