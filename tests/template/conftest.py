"""Template-test helpers: the SAM CLI's view of template.yaml (run in .venv-sam), and an evaluator for the
intrinsic functions the template uses, so that tests assert concrete values."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import sam_local

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = ROOT / ".venv-sam" / "bin"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "worker",
}
NO_VALUE = object()


DOCKER_MISSING = pytest.StashKey[str]()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"true", "1"}


@pytest.hookimpl(trylast=True)  # after -k and -m have chosen
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Where Docker is missing, the tests marked `docker` do not run, and one line at the end says why. In CI
    (CI=true) they run, and fail: CI has Docker (.ci/run starts it)."""
    needing_docker = [item for item in items if item.get_closest_marker("docker")]
    if not needing_docker or in_ci():
        return
    problem = sam_local.docker_problem()
    if problem is None:
        return
    config.hook.pytest_deselected(items=needing_docker)
    items[:] = [item for item in items if not item.get_closest_marker("docker")]
    config.stash[DOCKER_MISSING] = f"{len(needing_docker)} tests of `sam local invoke` in Docker not run: {problem}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if DOCKER_MISSING in config.stash:
        terminalreporter.write_line(f"SKIPPED {config.stash[DOCKER_MISSING]}", yellow=True)


@pytest.fixture(scope="session")
def sam_local_invoke() -> Iterator[sam_local.SamLocal]:
    """`sam local invoke` in Docker, its base image there (AWS's, or the stand-in, built once)."""
    try:
        with sam_local.SamLocal() as runner:
            yield runner
    except sam_local.DockerUnavailable as missing:
        if in_ci():
            pytest.fail(f"CI runs sam local invoke in Docker, and {missing}")
        pytest.skip(f"sam local invoke needs Docker: {missing}")


def tool_env() -> dict[str, str]:
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@functools.cache
def sam_inspect(*args: str) -> Any:
    """tools/sam_inspect.py's answer, in the SAM CLI's own environment."""
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [str(SAM_VENV / "python"), str(ROOT / "tools" / "sam_inspect.py"), *args],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


class Stack:
    """A transformed template and its parameter values: resources, and intrinsic functions evaluated."""

    def __init__(self, **overrides: str) -> None:
        answer = sam_inspect("transform", "template.yaml", *(f"{k}={v}" for k, v in sorted(overrides.items())))
        self._load(answer["source"], answer["transformed"], overrides)

    @classmethod
    def plain(cls, path: str, **overrides: str) -> Stack:
        """A CloudFormation template without the SAM transform (the sample pipeline), as parsed."""
        stack = cls.__new__(cls)
        source = sam_inspect("parse", path)
        stack._load(source, source, overrides)
        return stack

    def _load(self, source: dict[str, Any], template: dict[str, Any], overrides: dict[str, str]) -> None:
        self.source: dict[str, Any] = source
        self.template: dict[str, Any] = template
        defaults = {name: str(p.get("Default", "")) for name, p in self.template["Parameters"].items()}
        self.values = {**defaults, **overrides, **PSEUDO}
        self.conditions = {name: self.value(c) for name, c in self.template.get("Conditions", {}).items()}

    def resource(self, name: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][name]
        return resource

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.template["Resources"].items() if r["Type"] == kind}

    def value(self, node: Any) -> Any:
        """Evaluate Ref, Fn::Sub, Join, Split, Select, If, Equals, Not, FindInMap; GetAtt becomes 'GetAtt:Name.Attr'."""
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref")):
            return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}
        [(name, arg)] = node.items()
        function: Callable[[Any], Any] = getattr(self, "_" + name.removeprefix("Fn::").lower())
        return function(arg)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        return self.values.get(name, f"Ref:{name}")

    def _getatt(self, arg: str | list[str]) -> str:
        return f"GetAtt:{'.'.join(arg) if isinstance(arg, list) else arg}"

    def _sub(self, arg: str | list[Any]) -> str:
        """${Name} is a variable's or a parameter's value, or Ref:Name; ${Name.Attribute} is GetAtt:Name.Attribute."""
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
        values = {**self.values, **variables}

        def resolve(name: str) -> str:
            return str(values.get(name, f"GetAtt:{name}" if "." in name else f"Ref:{name}"))

        return re.sub(r"\$\{([^}]+)\}", lambda m: resolve(m.group(1)), text)

    def _if(self, arg: list[Any]) -> Any:
        condition, yes, no = arg
        return self.value(yes if self.conditions[condition] else no)

    def _join(self, arg: list[Any]) -> str:
        separator, items = self.value(arg)
        return str(separator).join(str(item) for item in items)

    def _split(self, arg: list[Any]) -> list[str]:
        separator, text = self.value(arg)
        return list(text.split(separator))

    def _select(self, arg: list[Any]) -> Any:
        index, items = self.value(arg)
        return items[int(index)]

    def _equals(self, arg: list[Any]) -> bool:
        left, right = self.value(arg)
        return str(left) == str(right)

    def _not(self, arg: list[Any]) -> bool:
        [value] = self.value(arg)
        return not value

    def _findinmap(self, arg: list[Any]) -> Any:
        mapping, key, name = self.value(arg)
        return self.template["Mappings"][mapping][str(key)][name]
