"""`make bench-artifacts`: a 200 MB artifact read and written through the Job's artifact API, side by side with
what a user would write with boto3 alone: s3transfer's `download_file` / `upload_file` (what `aws s3 cp` uses)
plus `zipfile`. Also Powertools' streaming utility (`S3Object` with its zip transform), the ecosystem's piece.

`reference_one_stream` is the reference with s3transfer held to one GET, as the Job's API makes: moto's server
reads the whole object again for every ranged GET, which slows s3transfer's parallel ranges here as it would not
on S3. Like for like: the same object on the same local S3 (moto's server, its own process on 127.0.0.1), the same
SSE-KMS parameters, each measurement in a fresh child process of the same interpreter with the same modules
imported before the clock starts, the cases interleaved, the median of BENCH_ARTIFACT_RUNS runs. Peak memory is
the child's own high-water mark (VmHWM). Writes bench/artifacts.json.

`make bench` runs it as one of its sections (`rows`): its figures, with their targets, in the bench's table.

    python bench/artifacts.py            # the whole run (make bench-artifacts)
    python bench/artifacts.py --child download ours KEY DEST   # one measurement (what the run starts)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from row import Row
    from run import Bench

BENCH = Path(__file__).resolve().parent
RUNS = int(os.environ.get("BENCH_ARTIFACT_RUNS", "3"))
BUCKET = "codepipeline-bench-artifacts"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
# The tree: 800 incompressible files of 240 KiB and 200 text files of 200 KiB (about 227 MiB), whose zip is
# about 190 MiB (200 MB).
RANDOM_FILES = (800, 240 * 1024)
TEXT_FILES = (200, 200 * 1024)
SSE_KMS = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY}
TARGETS = {"ratio": 1.3, "peak_mb": 128}
CASES = {
    "download_extract": ("reference", "ours", "reference_one_stream", "powertools"),
    "zip_upload": ("reference", "ours"),
}


# -- the run ----------------------------------------------------------------------------------------------------


def main() -> int:
    results = measure()
    _print(results)
    return 0 if results["within_targets"] else 1


def rows(bench: Bench) -> list[Row]:
    """`make bench`'s rows: each case's time against the reference's and its peak memory, with their targets; the
    other sides and a job's S3 client reported."""
    from row import TIMES, Row

    results = measure()
    bench.figures["artifacts"] = {name: value for name, value in results.items() if name != "raw"}
    cases = results["cases"]
    download, upload = cases["download_extract"]["medians"], cases["zip_upload"]["medians"]
    size, runs = f"{results['artifact']['zip_mb']:.0f} MiB artifact", f"median of {results['runs']}"

    def time_row(figure: str, case: dict[str, Any], side: str, reference: str, against: str, *, target: bool) -> Row:
        mine, theirs = case[side]["seconds"], case[reference]["seconds"]
        measured = f"{mine:.2f} s vs {theirs:.2f} s: {mine / theirs:.2f}{TIMES} {against}"
        return Row(f"{size}, {figure}", measured, mine / theirs, TARGETS["ratio"] if target else None)

    def peak_row(figure: str, case: dict[str, Any]) -> Row:
        ours, reference = case["ours"], case["reference"]
        measured = (
            f"{ours['peak_mb']:.0f} MB (the reference {reference['peak_mb']:.0f} MB; after imports "
            f"{ours['baseline_mb']:.0f} MB)"
        )
        return Row(f"{size}, {figure}, peak memory", measured, ours["peak_mb"], TARGETS["peak_mb"], unit=" MB")

    clients = cases["client_creation_ms"]
    return [
        time_row(
            f"download + extract ({runs})",
            download,
            "ours",
            "reference",
            "boto3 download_file + zipfile extractall",
            target=True,
        ),
        time_row(
            "download + extract, against the reference held to one GET",
            download,
            "ours",
            "reference_one_stream",
            "that",
            target=False,
        ),
        time_row(
            "Powertools S3Object + ZipTransform, extractall",
            download,
            "powertools",
            "reference",
            "the reference",
            target=False,
        ),
        peak_row("download + extract", download),
        time_row(f"zip + upload ({runs})", upload, "ours", "reference", "zipfile + boto3 upload_file", target=True),
        peak_row("zip + upload", upload),
        Row(
            f"a job's S3 client (the mean of 50 in a process, {runs} processes)",
            f"{clients['ours']:.1f} ms vs {clients['boto3_client']:.1f} ms: "
            f"{clients['ours'] / clients['boto3_client']:.2f}{TIMES} boto3.client",
            clients["ours"] / clients["boto3_client"],
        ),
    ]


def measure() -> dict[str, Any]:
    """The whole run, on a moto server of its own: the results, also written to bench/artifacts.json."""
    work = Path(tempfile.mkdtemp(prefix="bench-artifacts-"))
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - moto's own server, on loopback
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url)
        results = _measure(url, work)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    (BENCH / "artifacts.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _measure(url: str, work: Path) -> dict[str, Any]:
    import boto3

    local = "local"  # moto's server accepts any credentials
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=local, aws_secret_access_key=local
    )
    s3.create_bucket(Bucket=BUCKET)
    source = work / "tree"
    files, tree_bytes = _make_tree(source)
    archive = work / "artifact.zip"
    _zip(source, archive)
    s3.upload_file(str(archive), BUCKET, "source.zip", ExtraArgs=SSE_KMS)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ENDPOINT_URL_S3": url,
        "AWS_ACCESS_KEY_ID": "role-key",
        "AWS_SECRET_ACCESS_KEY": "role-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    }
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        case: {side: [] for side in sides} for case, sides in CASES.items()
    }
    clients: list[dict[str, float]] = []
    for run in range(RUNS):
        clients.append(_child(env, "clients", "-", "-", "-"))
        for case, sides in CASES.items():
            order = list(sides) if run % 2 == 0 else list(reversed(sides))
            for side in order:
                if case == "download_extract":
                    destination = work / f"out-{side}"
                    figures = _child(env, "download", side, "source.zip", str(destination))
                    assert _tree_bytes(destination) == tree_bytes, f"{side} extracted a different tree"
                    shutil.rmtree(destination)
                else:
                    key = f"upload-{side}.zip"
                    figures = _child(env, "upload", side, str(source), key)
                    head = s3.head_object(Bucket=BUCKET, Key=key)
                    assert head["SSEKMSKeyId"] == KMS_KEY
                    figures["zip_mb"] = head["ContentLength"] / 2**20
                    s3.delete_object(Bucket=BUCKET, Key=key)
                runs[case][side].append(figures)
    summary: dict[str, Any] = {"client_creation_ms": _medians(clients)}
    within = True
    for case, measured in runs.items():
        medians = {side: _medians(values) for side, values in measured.items()}
        ratio = medians["ours"]["seconds"] / medians["reference"]["seconds"]
        ours_peak = medians["ours"]["peak_mb"]
        within = within and ratio <= TARGETS["ratio"] and ours_peak < TARGETS["peak_mb"]
        summary[case] = {"medians": medians, "ratio_vs_reference": round(ratio, 3)}
        if "reference_one_stream" in medians:
            one_stream = medians["ours"]["seconds"] / medians["reference_one_stream"]["seconds"]
            summary[case]["ratio_vs_reference_one_stream"] = round(one_stream, 3)
    return {
        "artifact": {
            "files": files,
            "tree_mb": round(tree_bytes / 2**20, 1),
            "zip_mb": round(archive.stat().st_size / 2**20, 1),
        },
        "runs": RUNS,
        "cases": summary,
        "raw": runs,
        "targets": TARGETS,
        "within_targets": within,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def _child(env: dict[str, str], *args: str) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - this file, in a fresh interpreter
        [sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed: {done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(lines[-1].removeprefix("RESULT "))
    return figures


def _medians(values: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(statistics.median(v[name] for v in values), 3) for name in values[0]}


def _make_tree(root: Path) -> tuple[int, int]:
    rng = random.Random(17)  # noqa: S311 - test data, not a secret
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    total = 0
    count = 0
    for kind, (number, size) in (("bin", RANDOM_FILES), ("src", TEXT_FILES)):
        for n in range(number):
            path = root / kind / f"d{n % 20:02d}" / f"f{n:04d}.{kind}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "bin":
                data = rng.randbytes(size)
            else:
                text = b" ".join(rng.choice(words) for _ in range(size // 4))
                data = (text + b"\n" * size)[:size]
            path.write_bytes(data)
            total += size
            count += 1
    return count, total


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _zip(source: Path, target: Path) -> None:
    """The reference's zip: zipfile, deflated at its default level, the tree walked in order."""
    import zipfile

    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()  # noqa: S310 - loopback
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError("moto's server did not start")


def _print(results: dict[str, Any]) -> None:
    artifact = results["artifact"]
    print(f"artifact: {artifact['files']} files, {artifact['tree_mb']} MiB, zipped {artifact['zip_mb']} MiB")
    clients = results["cases"]["client_creation_ms"]
    print(f"  a job's S3 client: {clients['ours']} ms (boto3.client: {clients['boto3_client']} ms)")
    for case, figures in results["cases"].items():
        if case == "client_creation_ms":
            continue
        for side, medians in figures["medians"].items():
            print(
                f"  {case:17} {side:11} {medians['seconds']:7.2f} s  peak {medians['peak_mb']:6.1f} MB"
                f"  (after imports {medians['baseline_mb']:5.1f} MB)"
            )
        print(f"  {case:17} ratio ours/reference {figures['ratio_vs_reference']:.2f} (target <= {TARGETS['ratio']})")
        if "ratio_vs_reference_one_stream" in figures:
            print(f"  {case:17} ratio ours/reference_one_stream {figures['ratio_vs_reference_one_stream']:.2f}")
    print("within targets" if results["within_targets"] else "OUTSIDE TARGETS")


# -- one measurement, in a fresh process -------------------------------------------------------------------


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc: VmHWM (its own peak) or VmRSS (now)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(operation: str, side: str, source: str, target: str) -> None:
    # Both sides import the same modules before the clock starts: the figures compare the operations.
    import zipfile

    import boto3
    from aws_lambda_powertools.utilities.streaming import S3Object
    from aws_lambda_powertools.utilities.streaming.transformations import ZipTransform

    from codepipeline_worker.shared.messages import JobMessage
    from codepipeline_worker.work import Job, JobDetails

    credentials = {"accessKeyId": "ASIAJOBKEY0000000001", "secretAccessKey": "job-secret", "sessionToken": "job-token"}
    details = JobDetails.from_job_data(
        {
            "inputArtifacts": [_artifact("Source", source)],
            "outputArtifacts": [_artifact("Output", target)],
            "artifactCredentials": credentials,
            "encryptionKey": {"id": KMS_KEY, "type": "KMS"},
        }
    )
    job = Job(JobMessage(job_id="00000000-0000-4000-8000-000000000001", job_type="custom"), lambda _: details)
    job.details()
    baseline = _status_mb("VmRSS")
    if operation == "clients":
        _clients(credentials)
        return

    started = time.perf_counter()
    if side == "ours":
        if operation == "download":
            job.input().extract(target)
        else:
            job.output().write_directory(source)
    else:
        s3 = boto3.client(
            "s3",
            aws_access_key_id=credentials["accessKeyId"],
            aws_secret_access_key=credentials["secretAccessKey"],
            aws_session_token=credentials["sessionToken"],
        )
        if side == "powertools":
            with S3Object(bucket=BUCKET, key=source, boto3_client=s3) as stream:
                stream.transform(ZipTransform()).extractall(target)  # type: ignore[no-untyped-call]
        elif operation == "download":
            from boto3.s3.transfer import TransferConfig

            # one_stream: a single GET, as ours makes (moto re-reads the whole object for each ranged GET)
            config = TransferConfig(multipart_threshold=2**40) if side == "reference_one_stream" else TransferConfig()
            with tempfile.TemporaryDirectory() as spool:
                downloaded = os.path.join(spool, "artifact.zip")
                s3.download_file(BUCKET, source, downloaded, Config=config)
                with zipfile.ZipFile(downloaded) as zf:
                    zf.extractall(target)
        else:
            with tempfile.TemporaryDirectory() as spool:
                archive = Path(spool) / "artifact.zip"
                _zip(Path(source), archive)
                s3.upload_file(str(archive), BUCKET, target, ExtraArgs=SSE_KMS)
    seconds = time.perf_counter() - started
    figures = {"seconds": seconds, "peak_mb": _status_mb("VmHWM"), "baseline_mb": baseline}
    sys.stderr.write("RESULT " + json.dumps(figures) + "\n")


def _clients(credentials: dict[str, str]) -> None:
    """Milliseconds to build one job's S3 client, the mean of 50 (after the process's first, which reads S3's
    model): ours, on the process's botocore session, and boto3.client with the same keys."""
    import boto3
    from pydantic import SecretStr

    from codepipeline_worker.shared.s3 import create_s3_client

    class Job:
        access_key_id = SecretStr(credentials["accessKeyId"])
        secret_access_key = SecretStr(credentials["secretAccessKey"])
        session_token = SecretStr(credentials["sessionToken"])

    def per_client(build: Any) -> float:
        build()
        started = time.perf_counter()
        for _ in range(50):
            build()
        return round((time.perf_counter() - started) * 1000 / 50, 2)

    figures = {
        "ours": per_client(lambda: create_s3_client(Job())),
        "boto3_client": per_client(
            lambda: boto3.client(
                "s3",
                aws_access_key_id=credentials["accessKeyId"],
                aws_secret_access_key=credentials["secretAccessKey"],
                aws_session_token=credentials["sessionToken"],
            )
        ),
    }
    sys.stderr.write("RESULT " + json.dumps(figures) + "\n")


def _artifact(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}}}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:6])
        sys.exit(0)
    sys.exit(main())
