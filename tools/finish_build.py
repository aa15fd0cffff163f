"""The step after `sam build`, in `make build` and in the local builds (`make invoke`, the template tests, the bench):
`python tools/finish_build.py [BUILD_DIR]` (default .aws-sam/build).

1. The acknowledger's botocore data is limited to the services its session may call. botocore checks a service
   name against a listing of every folder in its data directory (about 440) and decodes the 1.25 MB
   `endpoints.json` when the first client is made: together about 45 ms of every cold start. The limited artifact
   keeps those services' folders and an `endpoints.json` holding only their entries, every partition's own data
   unchanged; a client for any other service fails the cold start with UnknownServiceError. The work function is
   left whole: the user's work may call any service.
2. Compiled bytecode is shipped in both functions: Lambda's code directory is read-only, so without it every cold
   start compiles every module it imports. Unchecked-hash .pyc files are used whatever the files' times after
   zipping; the bytecode is the same on arm64 and x86_64, and matches the python3.13 runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codepipeline_worker.shared.adapter import ACKNOWLEDGER_SERVICES

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
# The built functions whose SDK data is limited, and to which services (the template's logical ids).
LIMITED_SERVICES = {"JobWorkerFunction": ACKNOWLEDGER_SERVICES}


def finish(build_dir: Path = BUILD_DIR) -> None:
    """Limit the SDK data of the functions in LIMITED_SERVICES, then compile bytecode into every built function."""
    for function in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        if function.name in LIMITED_SERVICES:
            limit_sdk_data(function, LIMITED_SERVICES[function.name])
        compile_bytecode(function)


def limit_sdk_data(artifact: Path, services: Iterable[str]) -> None:
    """Keep botocore's data for `services` only. Fails, changing nothing, when one of them is not in the data."""
    data = artifact / "botocore" / "data"
    keep = set(services)
    missing = sorted(s for s in keep if not (data / s).is_dir())
    if missing:
        raise SystemExit(f"botocore in {artifact} has no data for {', '.join(missing)}")
    endpoints_file = data / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {name: entry for name, entry in partition["services"].items() if name in keep}
    for path in data.iterdir():
        if path.is_dir() and path.name not in keep and path.name != "__pycache__":
            shutil.rmtree(path)
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")))


def compile_bytecode(artifact: Path) -> None:
    """Compile every module of a built function, unchecked-hash (see the module's docstring)."""
    subprocess.run(  # noqa: S603 - the runtime's interpreter
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(artifact)],
        check=True,
        stdout=sys.stderr,
    )


if __name__ == "__main__":
    finish(Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD_DIR)
