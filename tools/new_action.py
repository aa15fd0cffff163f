"""`make action NAME=my_action`: a new action in src/actions/, and its test in tests/actions/.

src/actions/ is inside the functions' CodeUri (src/), so `sam build` ships it and the deployed work function
imports it as `actions.<name>`; the project's venv has src/ on its path, so `make run` and `consume` do too.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = ROOT / "src" / "actions"
TESTS = ROOT / "tests" / "actions"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

ACTION = '''"""{name}: a CodePipeline action. Run it locally: make run WORK_FUNCTION=actions.{name}:run"""

from codepipeline_worker.work import ConfigurationProperty, Failure, Job, Outcome, Success

# What a pipeline's action configuration holds for this action. With RegisterCustomActionType=true the stack
# registers these with the custom action type; `example` is what local runs (make run, make invoke) give their jobs.
CONFIGURATION_PROPERTIES = [
    ConfigurationProperty(name="Greeting", description="Whom to greet", required=True, example="world"),
]


def run(job: Job) -> Outcome:
    """Runs once for each claimed job. Return Success, Failure, or StillRunning to be called again later."""
    greeting = job.configuration.get("Greeting")
    if not greeting:
        return Failure(type="ConfigurationError", message="Greeting is required")
    # Output variables are for custom actions only: later actions read them as #{{namespace.Greeting}}.
    variables = {{"Greeting": greeting}} if job.type == "custom" else None
    return Success(summary=f"Hello, {{greeting}}!", output_variables=variables)
'''

TEST = '''"""{name}'s tests: make test runs them (or .venv/bin/pytest tests/actions)."""

from actions.{name} import run
from codepipeline_worker.work import Failure, Success
from codepipeline_worker.work.testing import local_job


def test_it_greets():
    outcome = run(local_job({{"Greeting": "world"}}))

    assert isinstance(outcome, Success)
    assert outcome.summary == "Hello, world!"


def test_without_a_greeting_it_fails_as_a_configuration_error():
    outcome = run(local_job({{}}))

    assert isinstance(outcome, Failure)
    assert outcome.type == "ConfigurationError"
'''


def main(argv: list[str]) -> int:
    name = argv[0] if argv else ""
    if not NAME.match(name) or keyword.iskeyword(name):
        print(
            f"NAME={name!r}: a Python module name (lower case, digits, _) names the action, e.g. NAME=my_action",
            file=sys.stderr,
        )
        return 2
    module, test = ACTIONS / f"{name}.py", TESTS / f"test_{name}.py"
    for path in (module, test):
        if path.exists():
            print(f"{path.relative_to(ROOT)} exists already: choose another NAME, or edit it", file=sys.stderr)
            return 1
    module.write_text(ACTION.format(name=name))
    test.write_text(TEST.format(name=name))
    print(f"wrote {module.relative_to(ROOT)} and {test.relative_to(ROOT)}")
    print(f"run it through the local life cycle:  make run WORK_FUNCTION=actions.{name}:run")
    print(f"test it:                              .venv/bin/pytest {test.relative_to(ROOT)}  (make test runs it too)")
    print(
        f"deploy it:                            make build && make deploy GUIDED=1  (WorkEntryPoint=actions.{name}:run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
