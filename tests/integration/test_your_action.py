"""Your own action, as a newcomer writes it: `make action NAME=...` scaffolds it in src/actions/ with its test,
the code passes the gates `make test` holds it to, and `make run WORK_FUNCTION=actions.<name>:run` runs it through
the whole local life cycle in one step and shows what it reported; `consume` finds it too. Each command runs in a
child process from another directory, with no PYTHONPATH: the venv itself has src/ on its path, as Lambda does."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import closed_port

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"


def make_run(work_function: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`make run [WORK_FUNCTION=...]`: what the Makefile runs."""
    env = {"WORK_FUNCTION": work_function} if work_function else {}
    return command(sys.executable, str(ROOT / "tools" / "run_local.py"), cwd=cwd, **env)


def command(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "WORK_FUNCTION", "JOB_QUEUE_URL", "JOB_TABLE_NAME")
    }
    return subprocess.run(  # noqa: S603 - the project's own tools, in its own venv
        list(args), cwd=cwd, env={**environment, **env}, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def action(tmp_path: Path) -> Iterator[str]:
    """A new action, scaffolded by `make action`'s script in the real src/actions/ and tests/actions/, removed
    afterwards."""
    name = f"greeter_{uuid.uuid4().hex[:8]}"
    written = [ROOT / "src" / "actions" / f"{name}.py", ROOT / "tests" / "actions" / f"test_{name}.py"]
    try:
        done = command(sys.executable, str(ROOT / "tools" / "new_action.py"), name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"make run WORK_FUNCTION=actions.{name}:run" in done.stdout
        yield name
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def test_the_scaffolded_action_passes_the_gates_make_test_holds_it_to(action: str) -> None:
    files = [f"src/actions/{action}.py", f"tests/actions/test_{action}.py"]

    linted = command(str(BIN / "ruff"), "check", *files, cwd=ROOT)
    typed = command(str(BIN / "mypy"), *files, cwd=ROOT)
    tested = command(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", files[1], cwd=ROOT)

    assert linted.returncode == 0, linted.stdout
    assert typed.returncode == 0, typed.stdout
    assert tested.returncode == 0, tested.stdout
    assert "2 passed" in tested.stdout


def test_make_run_runs_your_action_through_the_life_cycle_and_shows_what_it_reported(
    action: str, tmp_path: Path
) -> None:
    done = make_run(f"actions.{action}:run", tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"work function actions.{action}:run" in done.stdout
    assert 'seeded: 1 custom job (Custom/Build/MyTool/1), configuration {"Greeting": "world"}' in done.stdout
    assert "Queued -> Dispatched -> InProgress -> Succeeded" in done.stdout
    assert 'succeeded: Hello, world!; output variables {"Greeting": "world"}' in done.stdout


def test_make_run_follows_your_action_round_by_round_and_shows_where_it_raised(tmp_path: Path) -> None:
    name = f"rounds_{uuid.uuid4().hex[:8]}"
    source = ROOT / "src" / "actions" / f"{name}.py"
    source.write_text(
        "from codepipeline_worker.work import StillRunning\n"
        "\n"
        "\n"
        "def run(job):\n"
        "    if job.continuation_token is None:\n"
        "        return StillRunning(continuation_token='1', percent_complete=50, summary='halfway')\n"
        "    raise ValueError('the second round breaks')\n"
    )
    try:
        done = make_run(f"actions.{name}:run", tmp_path)
    finally:
        source.unlink()

    assert done.returncode == 0, done.stderr
    assert "== work function: round 2 (the work queue)" in done.stdout
    assert "succeeded: halfway [50 %, continues as" in done.stdout
    assert "job 1 (follow-up)" in done.stdout
    assert "failed (JobFailed): The work function raised ValueError; the worker's log has where." in done.stdout
    # What the log says, shown: the exception's type and where, in your file
    [logged] = [line for line in done.stdout.splitlines() if "the work function raised" in line]
    assert '"error_type": "ValueError"' in logged
    assert f"src/actions/{name}.py:7 in run" in logged


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("actions.not_written_yet:run", "module actions.not_written_yet cannot be imported"),
        ("codepipeline_worker.examples.url_gate:nothing", "url_gate has no function nothing"),
        ("my-action", "WORK_FUNCTION=my-action: must be package.module:function"),
    ],
)
def test_make_run_refuses_a_work_function_it_cannot_run_in_one_line(reference: str, says: str, tmp_path: Path) -> None:
    done = make_run(reference, tmp_path)

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert says in line


def test_make_run_without_a_work_function_runs_the_example_and_names_it(tmp_path: Path) -> None:
    done = make_run(None, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "work function codepipeline_worker.examples.url_gate:check_url" in done.stdout
    assert "failed (JobFailed): http://127.0.0.1:" in done.stdout  # the broken page
    assert "answered 200 at check 2" in done.stdout  # the page warming up, in the second round


def test_consume_imports_your_action_without_pythonpath(action: str, tmp_path: Path) -> None:
    # A queue nobody answers: consume gets past its cold start (settings, your module) to the first receive
    queue = f"http://127.0.0.1:{closed_port()}/123456789012/jobs"
    done = command(
        sys.executable,
        "-m",
        "codepipeline_worker.work.consume",
        "--once",
        cwd=tmp_path,
        WORK_FUNCTION=f"actions.{action}:run",
        JOB_QUEUE_URL=queue,
        JOB_TABLE_NAME="codepipeline-jobs",  # the once-only records; the receive fails first
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
    )

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith("ReceiveMessage failed: EndpointConnectionError")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"JOB_QUEUE_URL": QUEUE}, "error: no AWS region: set AWS_REGION"),
        (
            {
                "JOB_QUEUE_URL": QUEUE,
                "AWS_DEFAULT_REGION": "us-east-1",
                "WORK_FUNCTION": "actions.not_written_yet:run",
            },
            "invalid configuration: WORK_FUNCTION: module actions.not_written_yet cannot be imported",
        ),
        ({}, "error: --queue-url or JOB_QUEUE_URL is required"),
    ],
)
def test_consume_says_what_is_missing_in_one_line(env: dict[str, str], says: str, tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    done = subprocess.run(
        [sys.executable, "-m", "codepipeline_worker.work.consume", "--once"],
        cwd=tmp_path,
        env={**{k: v for k, v in environment.items() if k not in ("JOB_QUEUE_URL", "WORK_FUNCTION")}, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 2
    assert says in done.stderr.splitlines()[-1]
