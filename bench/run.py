"""`make bench`: the worker against the acknowledger a user would write (bench/reference), side by side in one
run against one local CodePipeline endpoint. Writes bench/results.json and bench/results.png.

Every figure is a ratio measured in this run: the machines are shared and noisy, so absolute times vary.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from codepipeline_local import ControlClient

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = BENCH / "build"
PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "15"))
WARM_EVENTS = int(os.environ.get("BENCH_WARM_EVENTS", "2000"))
HANDOFF_EVENTS = int(os.environ.get("BENCH_HANDOFF_EVENTS", "500"))
BATCH_RUNS = int(os.environ.get("BENCH_BATCH_RUNS", "3"))
ACTION = "Custom/Build/MyTool/1"
TARGETS = {
    "cold_start": 1.10,
    "warm_per_event": 1.25,
    "handoff_per_event": 1.25,
    "work_per_job": 1.25,
    "batch_100_vs_floor": 1.3,
    "batch_100_speedup": 8.0,
    "peak_mb": 90,
}


def job_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def packages() -> dict[str, Path]:
    """The project as `sam build` makes it, and the reference with the same pinned boto3, both as Lambda
    would unpack them: nothing compiled at run time."""
    sys.path.insert(0, str(ROOT / "tools"))
    import invoke_local

    project = BUILD / "project"
    shutil.rmtree(BUILD, ignore_errors=True)
    shutil.copytree(invoke_local.build({}), project)
    reference = BUILD / "reference"
    pin = next(
        line for line in (ROOT / "src" / "requirements.txt").read_text().splitlines() if line.startswith("boto3==")
    )
    subprocess.run(  # noqa: S603 - pip of the runtime's interpreter
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(reference), pin],
        check=True,
    )
    shutil.copy(BENCH / "reference" / "handler.py", reference / "handler.py")
    return {"project": project, "reference": reference}


def environment(endpoint: str, package: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(package),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "AWS_ENDPOINT_URL_CODEPIPELINE": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ACTION_TYPES": ACTION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        **extra,
    }


def child(env: dict[str, str], *args: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - the runtime's interpreter and the bench's own child
        [PYTHON, str(BENCH / "child.py"), *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    lines = [line for line in done.stderr.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {args[0]} failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("RESULT ")), wall


def main() -> int:
    built = packages()
    with subprocess.Popen(
        [sys.executable, "-m", "codepipeline_local", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip().rsplit(" ", 1)[-1]
            results = measure(url, built)
        finally:
            server.terminate()
    results["machine"] = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    results["command"] = "make bench"
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results)
    print(json.dumps(results["ratios"], indent=2))
    return 0


def measure(url: str, built: dict[str, Path]) -> dict[str, Any]:
    control = ControlClient(url)
    modules = {"project": "codepipeline_worker.acknowledger.handler", "reference": "handler"}
    results: dict[str, Any] = {}

    # 1. Cold start: a fresh process imports the handler and handles one custom-job event; interleaved.
    cold: dict[str, list[float]] = {"project": [], "reference": []}
    counter = 0
    for _ in range(COLD_RUNS):
        for name in ("project", "reference"):
            counter += 1
            control.create_jobs(ACTION, jobId=job_id(counter), dispatchedNonce="1")
            event = json.dumps({"jobId": job_id(counter), "nonce": "1"})
            _, wall = child(environment(url, built[name]), "cold", modules[name], event)
            cold[name].append(wall)
    results["cold_start_s"] = {k: statistics.median(v) for k, v in cold.items()}

    # 2. Warm: single custom-job events through the handler, against the raw SDK call, in one process.
    first = 1_000_000
    for n in range(first, first + 2 * WARM_EVENTS):
        control.create_jobs(ACTION, jobId=job_id(n), dispatchedNonce="1")
    warm, _ = child(environment(url, built["project"]), "warm", modules["project"], str(WARM_EVENTS), str(first))
    results["warm"] = warm

    # 2b. The life cycle's two other per-job paths, each against the same calls made by hand: claim and hand
    # off to SQS (moto, in this process), and run one job through the work function (details, then result).
    results["handoff"], results["work"] = per_job_paths(url, built["project"], control)

    # 3. Batch: jobs queued, 25 ms added to every call; the scheduled poll end to end.
    results["batch"] = {}
    tuned = {"MAX_BATCH_SIZE": "100", "ACK_CONCURRENCY": "100"}
    for jobs, kinds, runs in ((100, ("project", "reference", "floor"), BATCH_RUNS), (1000, ("project", "floor"), 1)):
        figures: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for _ in range(runs):
            for kind in kinds:
                control.reset()
                control.create_jobs(ACTION, jobs)
                control.set_faults(latencySeconds=0.025)
                package = built["reference" if kind == "reference" else "project"]
                result, _ = child(environment(url, package, **tuned), "batch", kind, str(jobs))
                assert result["acknowledged"] == jobs, (kind, result)
                figures[kind].append(result)
        results["batch"][str(jobs)] = {
            kind: {
                "seconds": statistics.median(r["seconds"] for r in rs),
                "cpu_ms_per_ack": 1000 * statistics.median(r["cpu_seconds"] for r in rs) / jobs,
                "max_rss_mb": max(r["max_rss_mb"] for r in rs),
            }
            for kind, rs in figures.items()
        }
    control.reset()

    # 4. The deployment package.
    results["package"] = package_size(built["project"])
    batch = results["batch"]["100"]
    results["ratios"] = {
        "cold_start": results["cold_start_s"]["project"] / results["cold_start_s"]["reference"],
        "warm_per_event": warm["handler_per_event"] / warm["raw_per_call"],
        "handoff_per_event": results["handoff"]["handler_per_event"] / results["handoff"]["raw_per_call"],
        "work_per_job": results["work"]["handler_per_event"] / results["work"]["raw_per_call"],
        "batch_100_vs_floor": batch["project"]["seconds"] / batch["floor"]["seconds"],
        "batch_100_speedup": batch["reference"]["seconds"] / batch["project"]["seconds"],
        "peak_mb": batch["project"]["max_rss_mb"],
    }
    results["targets"] = TARGETS
    return results


def per_job_paths(url: str, package: Path, control: ControlClient) -> tuple[dict[str, Any], dict[str, Any]]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sqs_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    sqs_server.start()
    try:
        sqs_url = "http://{}:{}".format(*sqs_server.get_host_and_port())
        sqs = boto3.client(
            "sqs",
            endpoint_url=sqs_url,
            region_name="us-east-1",
            aws_access_key_id="b",
            aws_secret_access_key="b",  # noqa: S106 - moto's
        )
        queue = sqs.create_queue(QueueName="bench-jobs")["QueueUrl"]
        env = environment(url, package, AWS_ENDPOINT_URL_SQS=sqs_url, JOB_QUEUE_URL=queue)
        first = 3_000_000
        for n in range(first, first + 2 * HANDOFF_EVENTS):
            control.create_jobs(ACTION, jobId=job_id(n), dispatchedNonce="1")
        handoff, _ = child(env, "handoff", str(HANDOFF_EVENTS), str(first))
        first = 4_000_000
        for n in range(first, first + 2 * HANDOFF_EVENTS):
            control.create_jobs(ACTION, jobId=job_id(n), dispatchedNonce="1")
        env = environment(url, package, WORK_FUNCTION="work_noop:succeed")
        env["PYTHONPATH"] += os.pathsep + str(BENCH)
        work, _ = child(env, "work", str(HANDOFF_EVENTS), str(first))
    finally:
        sqs_server.stop()
    return handoff, work


def package_size(directory: Path) -> dict[str, float]:
    archive = BUILD / "package.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(directory))
    unzipped = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    return {"unzipped_mb": unzipped / 2**20, "zipped_mb": archive.stat().st_size / 2**20}


def chart(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios, targets = results["ratios"], results["targets"]
    names = ["cold_start", "warm_per_event", "handoff_per_event", "work_per_job", "batch_100_vs_floor"]
    labels = [
        "cold start\n(vs reference)",
        "claim\n(vs raw call)",
        "claim + hand-off\n(vs raw calls)",
        "work side, 1 job\n(vs raw calls)",
        "100 jobs at 25 ms\n(vs floor)",
    ]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.4))
    bars = left.bar(labels, [ratios[n] for n in names], color="#4C78A8")
    left.scatter(labels, [targets[n] for n in names], marker="_", s=2000, color="#E45756", label="target (at most)")
    left.axhline(1.0, color="grey", linewidth=0.8)
    left.bar_label(bars, fmt="%.2f×")  # noqa: RUF001 - the multiplication sign is meant
    left.set_ylabel("ratio (lower is better)")
    left.set_ylim(0, 1.6)
    left.legend(loc="upper left")
    batch = results["batch"]["100"]
    kinds = ["floor", "project", "reference"]
    seconds = [batch[k]["seconds"] for k in kinds]
    right.barh(
        ["floor (raw, all in flight)", "this worker", "reference (serial)"],
        seconds,
        color=["grey", "#4C78A8", "#F58518"],
    )
    for y, value in enumerate(seconds):
        right.text(value, y, f" {value * 1000:.0f} ms", va="center")
    right.set_xlim(0, max(seconds) * 1.25)
    right.set_xlabel("seconds, 100 jobs with 25 ms added to every call")
    machine = results["machine"]
    figure.suptitle(
        f"codepipeline-job-worker, `make bench` — Python {machine['python']}, "
        f"{machine['machine']}, {machine['cpus']} CPUs"
    )
    figure.tight_layout()
    figure.savefig(BENCH / "results.png", dpi=110)


if __name__ == "__main__":
    if sys.argv[1:] == ["--chart"]:  # redraw from the last results.json
        chart(json.loads((BENCH / "results.json").read_text()))
        sys.exit(0)
    sys.exit(main())
