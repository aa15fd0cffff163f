"""The configuration properties an action declares: CodePipeline's rules checked where they are written, the
request CreateCustomActionType takes, and the example configuration local runs seed their jobs with."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.work import ConfigurationProperty, Success
from codepipeline_worker.work.properties import declared_properties, example_configuration, validate_properties
from codepipeline_worker.work.testing import local_job

if TYPE_CHECKING:
    from pathlib import Path


def test_a_property_is_the_request_codepipeline_takes_without_its_local_example() -> None:
    prop = ConfigurationProperty(name="Target", description="Where to deploy", required=True, example="staging")

    assert prop.as_request() == {
        "name": "Target",
        "description": "Where to deploy",
        "required": True,
        "key": False,
        "secret": False,
        "type": "String",
    }
    queryable = ConfigurationProperty(name="Project", required=True, queryable=True, type="String")
    assert queryable.as_request()["queryable"] is True


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ([{"name": ""}], "1.name: String should have at least 1 character"),
        ([{"name": "N" * 51}], "1.name: String should have at most 50 characters"),
        ([{"name": "A", "description": "d" * 161}], "1.description: String should have at most 160 characters"),
        ([{"name": "A", "type": "Integer"}], "1.type: Input should be 'String', 'Number' or 'Boolean'"),
        ([{"name": "A", "queryable": True}], "1: a queryable property must be required and not secret"),
        (
            [{"name": "A", "queryable": True, "required": True, "secret": True}],
            "1: a queryable property must be required and not secret",
        ),
        ([{"name": "A", "hidden": True}], "1.hidden: Unexpected keyword argument"),
        # A property built in code is checked as well: building one checks nothing, at no cold-start cost
        (
            [ConfigurationProperty(name="ok"), ConfigurationProperty(name="")],
            "2.name: String should have at least 1 character",
        ),
        ([{"name": "A"}, {"name": "A"}], "names listed more than once: A"),
        ([{"name": f"P{n}"} for n in range(11)], "11 properties; CodePipeline allows 10 per action type"),
        (
            [{"name": n, "required": True, "queryable": True} for n in "AB"],
            "more than one queryable property; CodePipeline allows one per action type",
        ),
        ({"name": "A"}, "value: Input should be a valid tuple"),
    ],
)
def test_codepipelines_rules_are_checked_naming_the_property(declared: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^.") as caught:
        validate_properties(declared)

    assert str(caught.value) == problem


def test_the_example_declares_its_properties_and_local_runs_use_their_examples() -> None:
    declared = declared_properties("codepipeline_worker.examples.url_gate:check_url")

    assert [p.name for p in declared] == ["Url", "ExpectedStatus", "MaxChecks"]
    assert example_configuration(declared) == {"Url": "https://example.com/health"}


def test_a_module_that_declares_nothing_has_no_properties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module(tmp_path, monkeypatch, "bare_action_r2", "def run(job): ...\n")

    assert declared_properties("bare_action_r2:run") == ()


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            "CONFIGURATION_PROPERTIES = [{'name': 'A', 'type': 'Text'}]\n",
            "bad_declaration_r3.CONFIGURATION_PROPERTIES: 1.type: Input should be 'String', 'Number' or 'Boolean'",
        ),
        ("import no_such_dependency_r3\n", "module bad_declaration_r3 cannot be imported (ModuleNotFoundError: "),
    ],
)
def test_a_bad_declaration_or_import_is_a_configuration_error_naming_the_module(
    source: str, problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module(tmp_path, monkeypatch, "bad_declaration_r3", source)

    with pytest.raises(ConfigurationError) as caught:
        declared_properties("bad_declaration_r3:run")

    assert str(caught.value).startswith(f"invalid configuration: WORK_FUNCTION: {problem}"), str(caught.value)


def test_a_local_job_gives_the_work_function_its_configuration_round_and_budget() -> None:
    def run(job: Any) -> Success:
        assert job.type == "thirdParty"
        assert job.client_id is not None
        remaining = job.remaining_time_s()
        assert remaining is not None
        assert 0 < remaining <= 30
        return Success(summary=f"{job.configuration['Target']} {job.continuation_token}")

    outcome = run(local_job({"Target": "staging"}, job_type="thirdParty", continuation_token="2", remaining_time_s=30))

    assert outcome.summary == "staging 2"
    assert local_job().configuration == {}
    assert local_job().remaining_time_s() is None


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
