"""WORK_FUNCTION: a module that cannot be imported, whatever it raises, or a name that is not a function of one
argument fails the work function's cold start with a clear error; the dead-letter handler's check names the
same problem, from a child process that a module hanging or exiting at import cannot take down."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from codepipeline_worker.shared import entry_point
from codepipeline_worker.shared.entry_point import load_work_function, work_function_problem
from codepipeline_worker.shared.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MESSAGE_MARKER = "import-time-text-MARKER-5e1"
MODULES = {
    "raises_at_import": f"raise RuntimeError('{MESSAGE_MARKER}')",
    "exits_at_import": "import sys\nsys.exit(4)",
    "hangs_at_import": "import time\ntime.sleep(600)",
    "shapes": textwrap.dedent(
        """
        LIMIT = 3

        def two(job, other):
            return None

        def keyword_only(*, job):
            return None

        def run(job):
            return None

        class Callable:
            def __call__(self, job):
                return None

        instance = Callable()
        """
    ),
}


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.mark.usefixtures("modules")
@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("raises_at_import:run", "module raises_at_import cannot be imported (RuntimeError)"),
        ("exits_at_import:run", "module exits_at_import cannot be imported (SystemExit)"),
        ("shapes:LIMIT", "shapes.LIMIT is not a function"),
        ("shapes:two", "shapes.two must take one argument, the job"),
        ("shapes:keyword_only", "shapes.keyword_only must take one argument, the job"),
    ],
)
def test_a_work_function_that_cannot_run_jobs_is_a_configuration_error(reference: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_work_function(reference)

    assert str(caught.value) == f"invalid configuration: WORK_FUNCTION: {problem}"
    assert MESSAGE_MARKER not in str(caught.value)
    assert caught.value.__context__ is None


@pytest.mark.usefixtures("modules")
@pytest.mark.parametrize("reference", ["shapes:run", "shapes:instance"])
def test_a_callable_of_one_argument_is_a_work_function(reference: str) -> None:
    assert callable(load_work_function(reference))


@pytest.mark.parametrize(
    ("reference", "stderr"),
    [
        (
            "raises_at_import:run",
            "ConfigurationError: invalid configuration: WORK_FUNCTION: module raises_at_import cannot be imported "
            "(RuntimeError)",
        ),
        (
            "missing_module_x7:run",
            "ConfigurationError: invalid configuration: WORK_FUNCTION: module missing_module_x7 cannot be imported "
            "(ModuleNotFoundError)",
        ),
    ],
)
def test_a_broken_work_function_fails_the_cold_start_clearly(modules: Path, reference: str, stderr: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import codepipeline_worker.work.handler"],
        env={
            **os.environ,
            "WORK_FUNCTION": reference,
            "PYTHONPATH": f"{modules}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode != 0
    assert stderr in done.stderr
    assert MESSAGE_MARKER not in done.stderr


@pytest.mark.usefixtures("modules")
def test_the_check_names_the_problem_from_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry_point, "CHECK_TIME_LIMIT_S", 2.0)

    assert work_function_problem("codepipeline_worker.examples.url_gate:check_url") is None
    assert work_function_problem("raises_at_import:run") == (
        "WORK_FUNCTION: module raises_at_import cannot be imported (RuntimeError)"
    )
    assert (
        work_function_problem("hangs_at_import:run")
        == "WORK_FUNCTION: importing hangs_at_import:run took more than 2 s"
    )
    # Imported in the child only: this process has not run the module's code
    assert "raises_at_import" not in sys.modules
