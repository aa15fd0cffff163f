"""The Build-style example action: check the source revision's files, hand a report to the next stage.

It reads the input artifact (the source zip a Source action produced), checks every file for what must never be
committed (private keys, AWS access key ids) and for files larger than a limit, and writes `report.json` as
the output artifact (zipped, and encrypted with the pipeline's key). The report names each finding by file,
line and rule, never by the text that matched.

Action configuration:
- `MaxFileBytes` (default 1000000): a larger file is a finding.
- `FailOnFindings` (default true): `false` reports the findings and lets the pipeline go on.

It succeeds with output variables `FilesChecked` and `Findings` (custom actions only), or fails naming how many
findings there are and where the first is.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from ..work import Failure, Job, Outcome, Success

RULES = {
    "private-key": re.compile(rb"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "aws-access-key-id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
}
REPORT = "report.json"


def check_sources(job: Job) -> Outcome:
    config = job.configuration
    try:
        max_file_bytes = int(config.get("MaxFileBytes", "1000000"))
    except ValueError:
        return Failure(type="ConfigurationError", message="MaxFileBytes must be a whole number")
    fail_on_findings = config.get("FailOnFindings", "true").strip().lower() != "false"

    with tempfile.TemporaryDirectory(prefix="source-check-") as work:
        source = job.input().extract(Path(work) / "source")
        files, findings = _check(source, max_file_bytes)
        report_dir = Path(work) / "report"
        report_dir.mkdir()
        report = {"revision": job.input().revision, "filesChecked": files, "findings": findings}
        (report_dir / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        job.output().write_directory(report_dir)

    if findings and fail_on_findings:
        first = findings[0]
        where = f"{first['file']}:{first['line']}" if first["line"] else first["file"]
        return Failure(message=f"{len(findings)} finding(s) in {files} files; the first: {first['rule']} in {where}")
    return Success(
        summary=f"{files} files checked, {len(findings)} finding(s); the report is in the output artifact",
        output_variables={"FilesChecked": str(files), "Findings": str(len(findings))} if job.type == "custom" else None,
    )


def _check(root: Path, max_file_bytes: int) -> tuple[int, list[dict[str, object]]]:
    findings: list[dict[str, object]] = []
    files = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        files += 1
        name = path.relative_to(root).as_posix()
        size = path.stat().st_size
        if size > max_file_bytes:
            findings.append({"file": name, "line": 0, "rule": "large-file", "bytes": size})
            continue
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                findings.extend(
                    {"file": name, "line": number, "rule": rule}
                    for rule, pattern in RULES.items()
                    if pattern.search(line)
                )
    return files, findings
