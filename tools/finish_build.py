"""The step after `sam build`, in `make build` and in the local builds (`make invoke`, the template tests, the bench):
`python tools/finish_build.py [BUILD_DIR]` (default .aws-sam/build).

1. The acknowledger's botocore data is limited to the calls its role allows. botocore checks a service name
   against a listing of every folder in its data directory (about 440) and decodes the 1.25 MB `endpoints.json`
   when the first client is made: together about 45 ms of every cold start. The limited artifact keeps the folders
   of the services the acknowledger calls and an `endpoints.json` holding only their entries, every partition's own
   data unchanged; a client for any other service fails the cold start with UnknownServiceError. Each of those
   services' models keeps only the operations the acknowledger calls (ACKNOWLEDGER_OPERATIONS and the client-token
   secret's read: the operations its role is granted) with the shapes they use, and no documentation strings,
   which only docstrings and generated docs read: CodePipeline's model is 11 KB of JSON instead of 258 KB, and a
   client is made in a fraction of the time. The services botocore's credential providers call are kept whole.
   The work function is left whole: the user's work may call any service.
2. Compiled bytecode is shipped in both functions: Lambda's code directory is read-only, so without it every cold
   start compiles every module it imports. Unchecked-hash .pyc files are used whatever the files' times after
   zipping; the bytecode is the same on arm64 and x86_64, and matches the python3.13 runtime.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codepipeline_worker.shared.adapter import ACKNOWLEDGER_OPERATIONS, CREDENTIAL_SERVICES, TOKEN_SECRET_OPERATIONS

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
# The built functions whose SDK data is limited (the template's logical ids): the operations they call
# ("service:Operation"), and the services they keep whole.
LIMITED = {"JobWorkerFunction": (ACKNOWLEDGER_OPERATIONS | TOKEN_SECRET_OPERATIONS, CREDENTIAL_SERVICES)}


def finish(build_dir: Path = BUILD_DIR) -> None:
    """Limit the SDK data of the functions in LIMITED, then compile bytecode into every built function."""
    for function in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        if function.name in LIMITED:
            limit_sdk_data(function, *LIMITED[function.name])
        compile_bytecode(function)


def limit_sdk_data(artifact: Path, operations: Iterable[str], whole: Iterable[str] = ()) -> None:
    """Keep botocore's data for the services of `operations` and for the `whole` services only; the former's
    models hold only those operations, and none holds documentation. Fails, changing nothing, when a service or
    an operation is not in the data."""
    data = artifact / "botocore" / "data"
    called: dict[str, set[str]] = {}
    for operation in operations:
        service, name = operation.split(":")
        called.setdefault(service, set()).add(name)
    keep = set(called) | set(whole)
    missing = sorted(s for s in keep if not (data / s).is_dir())
    if missing:
        raise SystemExit(f"botocore in {artifact} has no data for {', '.join(missing)}")
    models = {path: _read(path) for s in sorted(keep) for path in sorted(data.glob(f"{s}/*/service-2.json*"))}
    for path, model in models.items():
        unknown = sorted(called.get(path.parts[-3], set()) - set(model.get("operations", {})))
        if unknown:
            raise SystemExit(f"botocore's {path.parts[-3]} model in {artifact} has no {', '.join(unknown)}")
    endpoints_file = data / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {name: entry for name, entry in partition["services"].items() if name in keep}
    for path in data.iterdir():
        if path.is_dir() and path.name not in keep and path.name != "__pycache__":
            shutil.rmtree(path)
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")))
    for path, model in models.items():
        service = path.parts[-3]
        limited = limit_operations(model, called[service]) if service in called else model
        if service in called:
            _limit_operation_data(path.parent, set(limited["operations"]))
        _write(path, strip_documentation(limited))


def _read(path: Path) -> Any:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def _write(path: Path, data: Any) -> None:
    text = json.dumps(data, separators=(",", ":")).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)


def limit_operations(model: dict[str, Any], operations: set[str]) -> dict[str, Any]:
    """A service model (service-2.json) with only `operations`, and the shapes they use (their input, output and
    errors, and every shape those reach). An operation botocore itself calls is kept too: the endpoint discovery
    operation (DynamoDB's DescribeEndpoints), for a client configured to discover its endpoints."""
    kept = {name: op for name, op in model["operations"].items() if name in operations or op.get("endpointoperation")}
    shapes = model["shapes"]
    used: set[str] = set()
    to_visit = [ref["shape"] for op in kept.values() for ref in (op.get("input"), op.get("output")) if ref]
    to_visit += [error["shape"] for op in kept.values() for error in op.get("errors", [])]
    while to_visit:
        name = to_visit.pop()
        if name in used:
            continue
        used.add(name)
        shape = shapes[name]
        to_visit += [ref["shape"] for ref in shape.get("members", {}).values()]
        to_visit += [shape[ref]["shape"] for ref in ("member", "key", "value") if ref in shape]
    return {**model, "operations": kept, "shapes": {name: shape for name, shape in shapes.items() if name in used}}


def _limit_operation_data(version_dir: Path, operations: set[str]) -> None:
    """The paginators and waiters of the operations kept, and not of the others; the examples (documentation) go."""
    paginators = version_dir / "paginators-1.json"
    if paginators.exists():
        data = _read(paginators)
        data["pagination"] = {name: p for name, p in data.get("pagination", {}).items() if name in operations}
        _write(paginators, data)
    waiters = version_dir / "waiters-2.json"
    if waiters.exists():
        data = _read(waiters)
        data["waiters"] = {name: w for name, w in data.get("waiters", {}).items() if w.get("operation") in operations}
        _write(waiters, data)
    (version_dir / "examples-1.json").unlink(missing_ok=True)


# Where a service model holds documentation: the service's, each operation's (with a link), each shape's, and each
# reference to a shape (an operation's input, output and errors; a structure's members, a list's member, a map's
# key and value). Nothing else is touched: a member named "documentation" is a member, and other parts of the
# model carry documentation that botocore reads as data (clientContextParams, the endpoint rules).
_DOCS = ("documentation", "documentationUrl")


def strip_documentation(model: dict[str, Any]) -> dict[str, Any]:
    """A service model (service-2.json) without its documentation strings, everything else unchanged."""

    def bare(part: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in part.items() if key not in _DOCS}

    def operation(op: dict[str, Any]) -> dict[str, Any]:
        op = bare(op)
        for ref in ("input", "output"):
            if ref in op:
                op[ref] = bare(op[ref])
        if "errors" in op:
            op["errors"] = [bare(error) for error in op["errors"]]
        return op

    def shape(definition: dict[str, Any]) -> dict[str, Any]:
        definition = bare(definition)
        if "members" in definition:
            definition["members"] = {name: bare(ref) for name, ref in definition["members"].items()}
        for ref in ("member", "key", "value"):
            if ref in definition:
                definition[ref] = bare(definition[ref])
        return definition

    stripped = bare(model)
    if "operations" in model:
        stripped["operations"] = {name: operation(op) for name, op in model["operations"].items()}
    if "shapes" in model:
        stripped["shapes"] = {name: shape(definition) for name, definition in model["shapes"].items()}
    return stripped


def compile_bytecode(artifact: Path) -> None:
    """Compile every module of a built function, unchecked-hash (see the module's docstring)."""
    subprocess.run(  # noqa: S603 - the runtime's interpreter
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(artifact)],
        check=True,
        stdout=sys.stderr,
    )


if __name__ == "__main__":
    finish(Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD_DIR)
