"""`make run` (tools/run_local.py) as a newcomer runs it: a fresh process, on loopback only. Its Build job reads a
source zip the run created and leaves its report as an output artifact encrypted with the job's KMS key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KMS_KEY = r"arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36}"


def test_make_run_runs_the_build_job_with_its_artifacts_encrypted_with_the_jobs_key() -> None:
    # Given the environment of a shell with nothing pointed at AWS
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JOB_", "WORK_", "ACTION_"))}

    # When make run runs
    done = subprocess.run(
        [sys.executable, "tools/run_local.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # Then it ends well, and the Build job succeeded
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    life = re.search(r"^   source check +\S+  (.+)\n +(.+)$", out, re.M)
    assert life is not None, out
    assert life.group(1).endswith("-> InProgress -> Succeeded")
    assert life.group(2).startswith("succeeded: 4 files checked, 1 finding(s)")
    # and its input and output artifacts are shown as the local S3 holds them: each SSE-KMS with the job's key
    shown = out.split("== the Build job's artifacts", 1)[1].split("\n\n", 1)[0]
    artifact = r"^   (input|output) +(\w+) +s3://\S+  \d+ bytes, zip of (\[.*\])\n"
    artifacts = re.findall(
        rf"{artifact} +SSE-KMS with ({KMS_KEY}) \(the job's key\)$",
        shown,
        re.M,
    )
    assert [a[:3] for a in artifacts] == [
        ("input", "SourceArtifact", "['README.md', 'app.py', 'requirements.txt', 'static/bundle.js']"),
        ("output", "ReportArtifact", "['report.json']"),
    ], shown
    assert artifacts[0][3] == artifacts[1][3]
    assert "report.json: 4 files checked" in shown
    # and no artifact credential (an access key id of the shape the endpoint issues) is in its output or log
    logged = (ROOT / "build" / "run.log").read_text()
    assert re.findall(r"ASIA[A-Z2-7]{16}", out + done.stderr + logged) == []
