"""`make bench`: this worker against the acknowledger a user would write (bench/reference), like for like, in one
run. Prints each figure with its target and pass/fail, and writes build/bench/results.json; `make bench
UPDATE_DOCS=1` (`--update-docs`) also writes the acknowledger's and the work function's rows into the README's Speed
section and the other rows into docs/benchmarks.md, where the method is explained: each figure is stated once.

Like for like: both sides run the same interpreter with the same bytecode policy (both compiled, as `make build`
ships the worker; and both not, reported too), the same environment (template.yaml's, queue on: the reference
then puts each job it claims on the same work queue), a Lambda context with the template's timeout, and the same
local endpoints: the CodePipeline endpoint, emptied between rounds so that no call's cost grows with the jobs it
holds, and an SQS stand-in (bench/sqs_standin.py). The worker is
its built artifact (`sam build` for this machine, then tools/finish_build.py); the reference is boto3 at the
worker's pins, installed by pip. Every figure is a ratio measured in this run: the machine is shared and noisy.

`--compare BEFORE AFTER` measures two builds of the worker against each other (cold start and warm), for a
change's before/after figure.

More rows: a module of its own (bench/<topic>.py) with a `rows(bench: Bench) -> list[Row]` function, listed in
SECTIONS below (bench/artifacts.py is one); `Bench` gives it the packages, the template's settings, the endpoints
and the child runner; bench/row.py the `Row`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import artifacts
from codepipeline_local import ControlClient
from row import TIMES, Row

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = ROOT / "build" / "bench"
DOCS = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "tools"))
import finish_build  # noqa: E402 - tools/ is not a package
import invoke_local  # noqa: E402

PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "21"))
WARM_EVENTS = int(os.environ.get("BENCH_WARM_EVENTS", "1000"))
ROUND = int(os.environ.get("BENCH_ROUND", "50"))  # events between two emptyings of the endpoint
BATCH_RUNS = int(os.environ.get("BENCH_BATCH_RUNS", "5"))
COMPARE_ROUNDS = int(os.environ.get("BENCH_COMPARE_ROUNDS", "6"))
LATENCY_S = 0.025
POLICIES = ("compiled", "not compiled")
SIDES = ("project", "reference")
PROJECT_MODULE = "codepipeline_worker.acknowledger.handler"
DOCS_START, DOCS_END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class Bench:
    """What each section measures with: the packages per bytecode policy, each function's settings as template.yaml
    resolves them, the local endpoints, and the raw figures (written to results.json)."""

    packages: dict[str, dict[str, Path]]
    functions: dict[str, dict[str, Any]]
    codepipeline_url: str
    sqs_url: str
    queue_url: str
    control: ControlClient = field(init=False)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.control = ControlClient(self.codepipeline_url)

    @property
    def action_type(self) -> str:
        return str(self.functions[invoke_local.ACKNOWLEDGER]["environment"]["ACTION_TYPES"]).split(",")[0]

    def environment(
        self, package: Path, *, function: str = invoke_local.ACKNOWLEDGER, queue: bool = True, **extra: str
    ) -> dict[str, str]:
        """The function's environment from template.yaml (empty values are unset there too), pointed at the local
        endpoints, with what Lambda itself sets; `extra` overrides."""
        described = self.functions[function]
        environment = {k: str(v) for k, v in described["environment"].items() if v != ""}
        environment.pop("JOB_QUEUE_URL", None)
        if queue:
            environment["JOB_QUEUE_URL"] = self.queue_url
        return {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(package),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": described["name"],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(described["memory"]),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(described["timeout"]),
            **environment,
            "AWS_ENDPOINT_URL_CODEPIPELINE": self.codepipeline_url,
            "AWS_ENDPOINT_URL_SQS": self.sqs_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.sqs_url,  # the job table's calls, answered by the same stand-in
            "BENCH_CONTROL_MODULE": str(ROOT / "tools" / "codepipeline_local" / "control.py"),
            "BENCH_ACTION_TYPE": self.action_type,
            **extra,
        }

    def child(self, env: dict[str, str], *args: str) -> dict[str, Any]:
        done = subprocess.run(  # noqa: S603 - the runtime's interpreter and the bench's own child
            [PYTHON, str(BENCH / "child.py"), *args], env=env, capture_output=True, text=True, check=False
        )
        lines = [line for line in done.stderr.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"child {args[0]} failed: {done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        return result

    def empty(self, jobs: int = 0, latency_s: float = 0.0) -> None:
        """Empty the endpoint (its jobs, history and faults); queue `jobs` new jobs; add `latency_s` to every
        call of both services."""
        self.control.reset()
        if jobs:
            self.control.create_jobs(self.action_type, jobs)
        if latency_s:
            self.control.set_faults(latencySeconds=latency_s)
        request = urllib.request.Request(  # noqa: S310 - the stand-in, http on loopback
            f"{self.sqs_url}/_latency", data=json.dumps({"seconds": latency_s}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - as above
            pass


Section = Callable[[Bench], list[Row]]


# -- sections --------------------------------------------------------------------------------------------------


def cold_medians(bench: Bench, policy: str, modules: dict[str, str]) -> dict[str, dict[str, float]]:
    """Seconds from a fresh process's start to the end of its first event (one direct job), and its CPU seconds
    (the interpreter's start included), for each side of `modules` (side -> handler module), in rounds: each
    round one cold start of each side, back to back, each first in turn. Per side, the medians; per round, the
    first side's time over the second's, and `ratio` / `cpu_ratio` the medians of those: a burst of load moves
    a round, not the ratio. CPU time varies less than wall time on a shared machine."""
    times: dict[str, list[float]] = {side: [] for side in modules}
    cpu: dict[str, list[float]] = {side: [] for side in modules}
    order = list(modules)
    for run in range(COLD_RUNS):
        for side in order if run % 2 == 0 else order[::-1]:
            bench.empty()
            [job] = bench.control.create_jobs(bench.action_type, dispatchedNonce="1")
            event = json.dumps({"jobId": job, "nonce": "1"})
            result = bench.child(bench.environment(bench.packages[policy][side]), "cold", modules[side], event)
            times[side].append(result["seconds"])
            cpu[side].append(result["cpu_seconds"])
    first, second = order
    return {
        **{
            side: {"seconds": statistics.median(times[side]), "cpu_seconds": statistics.median(cpu[side])}
            for side in modules
        },
        "rounds": {
            "ratio": paired(times[first], times[second]),
            "cpu_ratio": paired(cpu[first], cpu[second]),
        },
    }


def paired(mine: list[float], theirs: list[float]) -> float:
    """The median of the rounds' ratios, each round's two sides measured back to back."""
    return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))


def cold_start(bench: Bench) -> list[Row]:
    """Init and first event, in a fresh process: the handler imported, its clients made, one direct job claimed
    (and handed off, as the template's queue is on)."""
    rows = []
    for policy in POLICIES:
        medians = cold_medians(bench, policy, {"project": PROJECT_MODULE, "reference": "handler"})
        bench.figures[f"cold start, {policy}"] = medians
        mine, theirs, rounds = medians["project"], medians["reference"], medians["rounds"]
        rows.append(
            Row(
                f"cold start, both {policy} ({COLD_RUNS} rounds)",
                f"{mine['seconds'] * 1000:.2f} ms vs {theirs['seconds'] * 1000:.2f} ms: "
                f"{rounds['ratio']:.2f}{TIMES} the reference (CPU {rounds['cpu_ratio']:.2f}{TIMES})",
                rounds["ratio"],
                1.10 if policy == "compiled" else None,
            )
        )
    return rows


def warm(bench: Bench) -> list[Row]:
    """Single-job events in one warm process, each followed by the same calls made by hand."""
    package = bench.packages["compiled"]["project"]
    rows = []
    for queue, figure, raw in (
        (False, "warm, one direct job, no work queue", "the raw acknowledge_job"),
        (True, "warm, one direct job with hand-off", "the raw acknowledge_job + send_message"),
    ):
        result = bench.child(bench.environment(package, queue=queue), "warm", str(WARM_EVENTS), str(ROUND))
        bench.figures[figure] = result
        rows.append(
            Row(
                f"{figure} ({WARM_EVENTS} events, {result['rounds']} rounds)",
                warm_text(raw, result),
                result["ratio"],
                1.15,
            )
        )
    return rows


def warm_text(raw: str, result: dict[str, Any]) -> str:
    return (
        f"{result['handler_per_event'] * 1000:.2f} ms vs {result['raw_per_call'] * 1000:.2f} ms: "
        f"{result['ratio']:.2f}{TIMES} {raw} (CPU {result['cpu_ratio']:.2f}{TIMES})"
    )


def work_side(bench: Bench) -> list[Row]:
    """One job through the work function (its once-only record written, details read, result reported, record
    completed), against the same four calls by hand, on the same endpoints (the record's on the stand-in). The
    work function's own artifact: the acknowledger's SDK data holds only the acknowledger's calls. Twice: with the
    template's JOB_ISOLATION=process (each job in a forked child that its time limit can kill, which the raw calls
    have no counterpart of), and like for like with JOB_ISOLATION=none (the job in the function's process)."""
    count = max(WARM_EVENTS // 2, 1)
    rows = []
    for isolation in ("process", "none"):
        env = bench.environment(
            bench.packages["compiled"]["work"],
            function=invoke_local.WORKER,
            WORK_FUNCTION="work_noop:succeed",
            JOB_ISOLATION=isolation,
        )
        result = bench.child(env, "work", str(count), str(ROUND))
        bench.figures[f"work, one job, JOB_ISOLATION={isolation}"] = result
        rows.append(
            Row(
                f"work function, one job, JOB_ISOLATION={isolation} ({count} events, {result['rounds']} rounds)",
                warm_text(
                    "the raw get_job_details + put_job_success_result + the record's put_item + update_item", result
                ),
                result["ratio"],
                1.25,
            )
        )
    return rows


def batch(bench: Bench) -> list[Row]:
    """100 jobs queued, 25 ms added to every call (CodePipeline's and SQS's), one scheduled poll: the worker with
    the template's settings, the reference's serial loop, and the floor: the raw SDK scheduled as the worker is
    (the same polls, as many calls in flight), doing nothing else. Each in a warm process: an untimed poll of one
    job first (bench/child.py `batch`). In rounds: each round runs the three back to back (the worker and the floor
    first, each first in turn); the ratios are the medians of the rounds'."""
    figures: dict[str, list[dict[str, Any]]] = {"project": [], "reference": [], "floor": []}
    jobs = 100
    for run in range(BATCH_RUNS):
        for kind in ("project", "floor", "reference") if run % 2 == 0 else ("floor", "project", "reference"):
            bench.empty(0, LATENCY_S)  # the child queues its jobs (bench/child.py batch)
            package = bench.packages["compiled"]["reference" if kind == "reference" else "project"]
            result = bench.child(bench.environment(package), "batch", kind, str(jobs))
            assert result["acknowledged"] == jobs, (kind, result)
            figures[kind].append(result)
    bench.empty()
    seconds = {kind: statistics.median(r["seconds"] for r in runs) for kind, runs in figures.items()}
    cpu = {kind: 1000 * statistics.median(r["cpu_seconds"] for r in runs) / jobs for kind, runs in figures.items()}
    walls = {kind: [r["seconds"] for r in runs] for kind, runs in figures.items()}
    over_floor = paired(walls["project"], walls["floor"])
    faster = paired(walls["reference"], walls["project"])
    bench.figures["batch 100"] = {
        **{
            kind: {
                "seconds": seconds[kind],
                "cpu_ms_per_job": cpu[kind],
                "max_rss_mb": max(r["max_rss_mb"] for r in runs),
            }
            for kind, runs in figures.items()
        },
        "rounds": {"over_floor": over_floor, "faster_than_reference": faster},
    }
    settings = bench.functions[invoke_local.ACKNOWLEDGER]["environment"]
    name = (
        f"{jobs} jobs at 25 ms (MAX_BATCH_SIZE {settings['MAX_BATCH_SIZE']}, "
        f"ACK_CONCURRENCY {settings['ACK_CONCURRENCY']}; {BATCH_RUNS} rounds)"
    )
    return [
        Row(
            f"{name}, against the floor",
            f"{seconds['project'] * 1000:.2f} ms vs {seconds['floor'] * 1000:.2f} ms: {over_floor:.2f}{TIMES} the "
            f"floor (CPU per job {cpu['project']:.2f} ms vs {cpu['floor']:.2f} ms)",
            over_floor,
            1.1,
        ),
        Row(
            f"{name}, times faster than the serial reference",
            f"{faster:.1f}{TIMES} faster than the serial reference ({seconds['reference'] * 1000:.0f} ms)",
            faster,
            10.0,
            at_least=True,
        ),
    ]


def memory(bench: Bench) -> list[Row]:
    """1,000 jobs in one scheduled invocation of the worker: its process's peak resident memory."""
    jobs = 1000
    bench.empty(0, LATENCY_S)  # the child queues its jobs
    result = bench.child(bench.environment(bench.packages["compiled"]["project"]), "batch", "project", str(jobs))
    bench.empty()
    assert result["acknowledged"] == jobs, result
    bench.figures["batch 1000"] = result
    return [
        Row(
            f"peak memory, {jobs} jobs in one scheduled poll",
            f"{result['max_rss_mb']:.0f} MB ({result['seconds']:.1f} s)",
            result["max_rss_mb"],
            90,
            unit=" MB",
        )
    ]


def package_size(bench: Bench) -> list[Row]:
    """The acknowledger's built artifact, as `sam deploy` would zip it."""
    directory = bench.packages["compiled"]["project"]
    archive = OUT / "package.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(directory))
    unzipped = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20
    zipped_mb = archive.stat().st_size / 2**20
    archive.unlink()
    bench.figures["package_mb"] = {"unzipped": unzipped, "zipped": zipped_mb}
    return [
        Row("the acknowledger's artifact, with bytecode", f"{unzipped:.1f} MB, {zipped_mb:.1f} MB zipped", zipped_mb)
    ]


# The table, in order. A new bench module adds its `rows` function here.
SECTIONS: list[Section] = [cold_start, warm, work_side, batch, memory, package_size, artifacts.rows]
# The sections whose rows the README's Speed section shows (the functions' own speed and memory); the others'
# rows go to docs/benchmarks.md.
README_SECTIONS: list[Section] = [cold_start, warm, work_side, batch, memory]


# -- packages, endpoints, output --------------------------------------------------------------------------------


def existing_packages() -> dict[str, dict[str, Path]]:
    found = {policy: {side: OUT / "packages" / policy / side for side in SIDES} for policy in POLICIES}
    # The work function's own artifact, compiled as `make build` ships it (its botocore whole): the work row's.
    found["compiled"]["work"] = OUT / "packages" / "compiled" / "work"
    return found


def packages() -> dict[str, dict[str, Path]]:
    """The worker as `make build` makes it (for this machine) and the reference at the same pins, each with and
    without bytecode; without is what a plain `sam build` or `pip install --target` gives."""
    shutil.rmtree(OUT / "packages", ignore_errors=True)
    built = invoke_local.build({})
    found = existing_packages()
    compiled, plain = found["compiled"], found["not compiled"]
    shutil.copytree(built, compiled["project"])
    shutil.copytree(built, plain["project"], ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(invoke_local.artifact(invoke_local.WORKER), compiled["work"])
    pins = [
        line
        for line in (ROOT / "src" / "requirements.txt").read_text().splitlines()
        if line.startswith(("boto3==", "botocore=="))
    ]
    subprocess.run(  # noqa: S603 - pip of the runtime's interpreter
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(plain["reference"]), *pins],
        check=True,
    )
    shutil.copy(BENCH / "reference" / "handler.py", plain["reference"] / "handler.py")
    shutil.copytree(plain["reference"], compiled["reference"])
    finish_build.compile_bytecode(compiled["reference"])
    return found


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """The local CodePipeline endpoint and the SQS stand-in (bench/sqs_standin.py), each in a process of its own,
    on 127.0.0.1."""
    with (
        subprocess.Popen(
            [sys.executable, "-m", "codepipeline_local", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
        ) as endpoint,
        subprocess.Popen(  # noqa: S603 - the bench's own SQS stand-in
            [sys.executable, str(BENCH / "sqs_standin.py")], stdout=subprocess.PIPE, text=True
        ) as sqs,
    ):
        try:
            assert endpoint.stdout is not None
            assert sqs.stdout is not None
            yield (
                endpoint.stdout.readline().strip().rsplit(" ", 1)[-1],
                sqs.stdout.readline().strip().rsplit(" ", 1)[-1],
            )
        finally:
            endpoint.terminate()
            sqs.terminate()


@contextlib.contextmanager
def bench_for(package_dirs: dict[str, dict[str, Path]]) -> Iterator[Bench]:
    import boto3

    functions = {
        name: invoke_local.describe_function({}, name) for name in (invoke_local.ACKNOWLEDGER, invoke_local.WORKER)
    }
    with servers() as (codepipeline_url, sqs_url):
        sqs = boto3.client(
            "sqs",
            endpoint_url=sqs_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - the stand-in's
        )
        queue_url = sqs.create_queue(QueueName="bench-work")["QueueUrl"]
        yield Bench(package_dirs, functions, codepipeline_url, sqs_url, queue_url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update-docs", action="store_true", help="write the table into docs/benchmarks.md")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="two builds of the worker")
    parser.add_argument("--no-build", action="store_true", help="measure the packages the last run built")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.compare:
        return compare(*args.compare)
    rows: list[Row] = []
    readme_rows: list[Row] = []
    docs_rows: list[Row] = []
    with bench_for(existing_packages() if args.no_build else packages()) as bench:
        for section in SECTIONS:
            new = section(bench)
            print_rows(new)
            rows.extend(new)
            (readme_rows if section in README_SECTIONS else docs_rows).extend(new)
    results = {
        "rows": [{**asdict(row), "passed": row.passed} for row in rows],
        "figures": bench.figures,
        "machine": machine(),
        "command": "make bench",
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{table(rows)}\n\nWritten: {OUT.relative_to(ROOT)}/results.json")
    if args.update_docs:
        update_docs(readme_rows, docs_rows)
        print(f"Written: {README.relative_to(ROOT)}, {DOCS.relative_to(ROOT)}")
    return 0


def compare(before: Path, after: Path) -> int:
    """Two builds of the worker against each other, under the same treatment: cold starts in rounds (one of each,
    back to back), and warm in COMPARE_ROUNDS rounds of one process of each, back to back, each against the raw
    calls in its own process; each figure the median of the rounds' after/before."""
    with bench_for({"compiled": {"reference": before.resolve(), "project": after.resolve()}}) as bench:
        module = "codepipeline_worker.acknowledger.handler"
        medians = cold_medians(bench, "compiled", {"project": module, "reference": module})
        print(
            f"cold start: after/before {medians['rounds']['ratio']:.3f} wall, {medians['rounds']['cpu_ratio']:.3f} "
            f"CPU ({COLD_RUNS} rounds; medians {medians['reference']['seconds'] * 1000:.1f} ms before, "
            f"{medians['project']['seconds'] * 1000:.1f} ms after)"
        )
        events = max(WARM_EVENTS // COMPARE_ROUNDS, ROUND)
        for queue in (False, True):
            ratios: dict[str, dict[str, list[float]]] = {
                side: {"ratio": [], "cpu_ratio": []} for side in ("reference", "project")
            }
            for run in range(COMPARE_ROUNDS):
                for side in ("reference", "project") if run % 2 == 0 else ("project", "reference"):
                    env = bench.environment(bench.packages["compiled"][side], queue=queue)
                    result = bench.child(env, "warm", str(events), str(ROUND))
                    for key, values in ratios[side].items():
                        values.append(result[key])
            old, new = ratios["reference"], ratios["project"]
            print(
                f"warm{' with hand-off' if queue else ''}: the raw calls' {statistics.median(old['ratio']):.3f}"
                f"{TIMES} before, {statistics.median(new['ratio']):.3f}{TIMES} after; after/before "
                f"{paired(new['ratio'], old['ratio']):.3f} wall, {paired(new['cpu_ratio'], old['cpu_ratio']):.3f} CPU "
                f"({COMPARE_ROUNDS} rounds of {events} events)"
            )
    return 0


def machine() -> str:
    return f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs (shared)"


def table(rows: list[Row], *, short: bool = False) -> str:
    """The rows as a Markdown table; `short`: each figure alone (the README's), not what it was measured from."""
    lines = ["| figure | measured | target | result |", "|---|---|---|---|"]
    lines += [
        f"| {r.figure} | {r.value_text() if short else r.measured} | {r.target_text()} | {r.result_text()} |"
        for r in rows
    ]
    return "\n".join(lines)


def print_rows(rows: list[Row]) -> None:
    for row in rows:
        print(f"{row.result_text() or '-':4}  {row.figure}: {row.measured} (target {row.target_text()})", flush=True)


def _replacement(block: str, _match: re.Match[str]) -> str:
    return block


def update_docs(readme_rows: list[Row], other_rows: list[Row]) -> None:
    """Replace the tables between the markers: the README's (the functions' speed and memory, each figure alone;
    what it was measured from is in build/bench/results.json) and docs/benchmarks.md's (the rest). Each figure is
    stated in one of them."""
    for path, rows in ((README, readme_rows), (DOCS, other_rows)):
        text = path.read_text()
        figures = table(rows, short=path == README)
        block = f"{DOCS_START}\n{figures}\n\nMachine: {machine()}. Command: `make bench`.\n{DOCS_END}"
        pattern = re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END)
        updated, count = re.subn(pattern, functools.partial(_replacement, block), text, flags=re.S)
        if count != 1:
            raise SystemExit(f"{path} has no {DOCS_START} ... {DOCS_END} block")
        path.write_text(updated)


if __name__ == "__main__":
    sys.exit(main())
