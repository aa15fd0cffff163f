"""Configuration: every variable's default, accepted values and rejected values, named in the error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from codepipeline_worker.acknowledger.config import load_settings
from codepipeline_worker.shared.config import load_config
from codepipeline_worker.shared.errors import ConfigurationError
from codepipeline_worker.work.config import WorkerSettings

MINIMAL = {"ACTION_TYPES": "Custom/Build/MyTool/1"}
TABLE = {"JOB_TABLE_NAME": "codepipeline-jobs"}


def test_defaults() -> None:
    settings = load_settings(MINIMAL)
    assert settings.action_type_names() == ["Custom/Build/MyTool/1"]
    assert settings.max_batch_size == 25
    assert settings.ack_concurrency == 32
    assert settings.max_attempts == 3
    assert settings.poll_query_param is None
    assert settings.client_token_secret_id is None
    assert settings.log_level == "INFO"
    assert settings.log_event is False
    assert settings.tracing_disabled is False


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "ACTION_TYPES": " Custom/Build/MyTool/1 , ThirdParty/Deploy/PartnerTool/2 ",
            "MAX_BATCH_SIZE": "100",
            "POLL_QUERY_PARAM": "ProjectName=my-project_1",
            "CLIENT_TOKEN_SECRET_ID": "codepipeline/tokens",
            "ACK_CONCURRENCY": "100",
            "AWS_MAX_ATTEMPTS": "5",
            "POWERTOOLS_SERVICE_NAME": "svc",
            "POWERTOOLS_METRICS_NAMESPACE": "Ns",
            "POWERTOOLS_LOG_LEVEL": "debug",
            "POWERTOOLS_LOGGER_LOG_EVENT": "true",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    assert settings.action_type_names() == ["Custom/Build/MyTool/1", "ThirdParty/Deploy/PartnerTool/2"]
    assert settings.action_types[1].as_request() == {
        "owner": "ThirdParty",
        "category": "Deploy",
        "provider": "PartnerTool",
        "version": "2",
    }
    assert (settings.max_batch_size, settings.ack_concurrency, settings.max_attempts) == (100, 100, 5)
    assert settings.poll_query_param is not None
    assert (settings.poll_query_param.key, settings.poll_query_param.value) == ("ProjectName", "my-project_1")
    assert settings.client_token_secret_id == "codepipeline/tokens"
    assert (settings.service_name, settings.metrics_namespace, settings.log_level) == ("svc", "Ns", "DEBUG")
    assert settings.log_event is True
    assert settings.tracing_disabled is True


def test_blank_optional_values_mean_unset() -> None:
    settings = load_settings({**MINIMAL, "POLL_QUERY_PARAM": " ", "CLIENT_TOKEN_SECRET_ID": ""})
    assert settings.poll_query_param is None
    assert settings.client_token_secret_id is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "ACTION_TYPES: is required"),
        ({"ACTION_TYPES": ""}, "ACTION_TYPES: item 1 is not Owner/Category/Provider/Version"),
        ({"ACTION_TYPES": "Custom/Build/MyTool"}, "item 1 is not Owner/Category/Provider/Version"),
        ({"ACTION_TYPES": "Custom/Build/MyTool/1,Custom/Build"}, "item 2 is not"),
        ({"ACTION_TYPES": "AWS/Build/CodeBuild/1"}, "ACTION_TYPES[1].owner: Input should be 'ThirdParty' or 'Custom'"),
        ({"ACTION_TYPES": "Custom/Compile/MyTool/1"}, "ACTION_TYPES[1].category"),
        ({"ACTION_TYPES": "Custom/Build/My Tool/1"}, "ACTION_TYPES[1].provider"),
        ({"ACTION_TYPES": "Custom/Build/MyTool/1.0"}, "ACTION_TYPES[1].version"),
        (
            {"ACTION_TYPES": "Custom/Build/MyTool/1,Custom/Build/MyTool/1"},
            "listed more than once: Custom/Build/MyTool/1",
        ),
        ({**MINIMAL, "MAX_BATCH_SIZE": "0"}, "MAX_BATCH_SIZE: Input should be greater than or equal to 1"),
        ({**MINIMAL, "MAX_BATCH_SIZE": "101"}, "MAX_BATCH_SIZE: Input should be less than or equal to 100"),
        ({**MINIMAL, "MAX_BATCH_SIZE": "ten"}, "MAX_BATCH_SIZE: Input should be a valid integer"),
        ({**MINIMAL, "ACK_CONCURRENCY": "0"}, "ACK_CONCURRENCY"),
        ({**MINIMAL, "ACK_CONCURRENCY": "101"}, "ACK_CONCURRENCY"),
        ({**MINIMAL, "AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS"),
        ({**MINIMAL, "AWS_MAX_ATTEMPTS": "11"}, "AWS_MAX_ATTEMPTS"),
        ({**MINIMAL, "POLL_QUERY_PARAM": "ProjectName"}, "POLL_QUERY_PARAM: must be key=value"),
        ({**MINIMAL, "POLL_QUERY_PARAM": "ProjectName=my project"}, "POLL_QUERY_PARAM.value"),
        ({**MINIMAL, "POLL_QUERY_PARAM": "=value"}, "POLL_QUERY_PARAM.key"),
        ({**MINIMAL, "POLL_QUERY_PARAM": "K=" + "v" * 51}, "POLL_QUERY_PARAM.value"),
        ({**MINIMAL, "CLIENT_TOKEN_SECRET_ID": "s" * 2049}, "CLIENT_TOKEN_SECRET_ID"),
        ({**MINIMAL, "POWERTOOLS_LOG_LEVEL": "VERBOSE"}, "POWERTOOLS_LOG_LEVEL"),
        ({**MINIMAL, "POWERTOOLS_TRACE_DISABLED": "maybe"}, "POWERTOOLS_TRACE_DISABLED: must be true or false"),
        ({**MINIMAL, "POWERTOOLS_LOGGER_LOG_EVENT": "sometimes"}, "POWERTOOLS_LOGGER_LOG_EVENT: must be true or false"),
    ],
)
def test_bad_values_fail_naming_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    assert str(caught.value).startswith("invalid configuration: ")
    assert expected in str(caught.value)


def test_several_bad_variables_are_all_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"ACTION_TYPES": "Custom/Build/MyTool/1", "MAX_BATCH_SIZE": "0", "ACK_CONCURRENCY": "x"})
    assert "MAX_BATCH_SIZE" in str(caught.value)
    assert "ACK_CONCURRENCY" in str(caught.value)


def test_a_bad_configuration_fails_the_cold_start() -> None:
    # Given a fresh interpreter whose environment has a malformed ACTION_TYPES
    env = {**os.environ, "ACTION_TYPES": "Custom/Build"}
    # When it imports the handler module, as Lambda does at cold start
    done = subprocess.run(
        [sys.executable, "-c", "import codepipeline_worker.acknowledger.handler"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )
    # Then the import fails with the variable named
    assert done.returncode != 0
    assert "ConfigurationError: invalid configuration: ACTION_TYPES: item 1 is not" in done.stderr


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("ON", True), ("false", False), ("0", False), ("no", False)]
)
def test_flags_read_common_spellings(text: str, value: bool) -> None:
    settings = load_settings({**MINIMAL, "POWERTOOLS_TRACE_DISABLED": text, "POWERTOOLS_LOGGER_LOG_EVENT": text})
    assert (settings.tracing_disabled, settings.log_event) == (value, value)


# -- the work queue and the work function ------------------------------------------------------------------

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/codepipeline-jobs"


def test_the_work_queue_is_optional() -> None:
    assert load_settings(MINIMAL).job_queue_url is None
    assert load_settings({**MINIMAL, **TABLE, "JOB_QUEUE_URL": QUEUE}).job_queue_url == QUEUE
    assert load_settings({**MINIMAL, **TABLE, "JOB_QUEUE_URL": "http://127.0.0.1:9324/000000000000/jobs"}).job_queue_url


def test_a_work_queue_needs_the_job_table() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**MINIMAL, "JOB_QUEUE_URL": QUEUE})

    assert "JOB_TABLE_NAME is required with JOB_QUEUE_URL" in str(caught.value)
    assert load_settings({**MINIMAL, **TABLE, "JOB_QUEUE_URL": QUEUE}).job_table_name == "codepipeline-jobs"


@pytest.mark.parametrize("table", ["ab", "has space", "x" * 256, "arn:aws:s3:::bucket", "jobs\n"])
def test_a_bad_job_table_fails_naming_the_variable(table: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**MINIMAL, "JOB_TABLE_NAME": table})

    assert "JOB_TABLE_NAME: String should match pattern" in str(caught.value)


@pytest.mark.parametrize(
    "table", ["codepipeline-jobs", "a.b_c-d", "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"]
)
def test_job_table_names_and_arns_are_accepted(table: str) -> None:
    assert load_config(WorkerSettings, {"JOB_TABLE_NAME": table}).job_table_name == table


def test_the_call_timeouts_default_short_and_can_be_set() -> None:
    settings = load_settings(MINIMAL)
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (1.0, 2.0)
    tuned = load_settings({**MINIMAL, "CONNECT_TIMEOUT_S": "0.5", "READ_TIMEOUT_S": "0.25"})
    assert (tuned.connect_timeout_s, tuned.read_timeout_s) == (0.5, 0.25)
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**MINIMAL, "READ_TIMEOUT_S": "0"})
    assert "READ_TIMEOUT_S: Input should be greater than 0" in str(caught.value)


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_work_queue_means_none(blank: str) -> None:
    assert load_settings({**MINIMAL, "JOB_QUEUE_URL": blank}).job_queue_url is None


PATTERN = "String should match pattern"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("codepipeline-jobs", PATTERN),
        ("sqs://queue", PATTERN),
        ("https://", PATTERN),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/has space", PATTERN),
        (f"{QUEUE}\n", PATTERN),
        ("https://" + "q" * 2041, "String should have at most 2048 characters"),
    ],
)
def test_a_bad_work_queue_fails_naming_the_variable(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**MINIMAL, "JOB_QUEUE_URL": url})

    assert str(caught.value).startswith(f"invalid configuration: JOB_QUEUE_URL: {problem}")


def test_the_longest_work_queue_url_is_accepted() -> None:
    url = "https://" + "q" * 2040
    assert load_settings({**MINIMAL, **TABLE, "JOB_QUEUE_URL": url}).job_queue_url == url


def test_the_worker_needs_no_action_types() -> None:
    # Given no ACTION_TYPES, and then a malformed one: the work function reads neither
    settings = load_config(WorkerSettings, TABLE)
    assert load_config(WorkerSettings, {**TABLE, "ACTION_TYPES": "Custom/Build"}) == settings

    assert settings.work_function == "codepipeline_worker.examples.url_gate:check_url"
    assert (settings.client_token_secret_id, settings.max_attempts, settings.log_level) == (None, 3, "INFO")
    assert not hasattr(settings, "action_types")


def test_the_worker_reads_the_common_variables() -> None:
    settings = load_config(
        WorkerSettings,
        {
            **TABLE,
            "WORK_FUNCTION": "mypackage.gates:run",
            "CLIENT_TOKEN_SECRET_ID": "codepipeline/tokens",
            "AWS_MAX_ATTEMPTS": "5",
            "POWERTOOLS_LOG_LEVEL": "warning",
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
    )

    assert settings.work_function == "mypackage.gates:run"
    assert (settings.client_token_secret_id, settings.max_attempts) == ("codepipeline/tokens", 5)
    assert (settings.log_level, settings.tracing_disabled) == ("WARNING", True)


@pytest.mark.parametrize("reference", ["run_module:run", "_private.mod_2.sub:Handler_1", "a.b.c.d:e"])
def test_work_function_references_that_are_accepted(reference: str) -> None:
    assert load_config(WorkerSettings, {**TABLE, "WORK_FUNCTION": reference}).work_function == reference


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "mypackage.gates",
        "mypackage.gates:",
        ":run",
        "mypackage..gates:run",
        "mypackage.gates:run.inner",
        "1package:run",
        "my-package:run",
        "my package:run",
        "mypackage.gates:run\n",
        "mypackage.gates:run:again",
    ],
)
def test_a_malformed_work_function_fails_naming_the_variable(reference: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(WorkerSettings, {"WORK_FUNCTION": reference})

    assert str(caught.value).startswith("invalid configuration: WORK_FUNCTION: String should match pattern")


def test_a_bad_common_variable_fails_the_worker_naming_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(WorkerSettings, {"AWS_MAX_ATTEMPTS": "0", "POWERTOOLS_LOG_LEVEL": "LOUD"})

    assert "AWS_MAX_ATTEMPTS: Input should be greater than or equal to 1" in str(caught.value)
    assert "POWERTOOLS_LOG_LEVEL" in str(caught.value)


def _import_in_a_fresh_interpreter(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the test's own interpreter and code
        [sys.executable, "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )


def test_the_worker_needs_its_job_table() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(WorkerSettings, {})

    assert "JOB_TABLE_NAME is required: each job's once-only record is kept in that table" in str(caught.value)


def test_the_worker_starts_without_action_types() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ACTION_TYPES", "WORK_FUNCTION")}

    done = _import_in_a_fresh_interpreter("codepipeline_worker.work.handler", env)

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("no_such_package_q7.gates:run", "WORK_FUNCTION: module no_such_package_q7.gates cannot be imported"),
        (
            "codepipeline_worker.examples.url_gate:nothing",
            "WORK_FUNCTION: codepipeline_worker.examples.url_gate has no function nothing",
        ),
        ("not a reference", "WORK_FUNCTION: String should match pattern"),
    ],
)
def test_a_bad_work_function_fails_the_workers_cold_start(reference: str, expected: str) -> None:
    done = _import_in_a_fresh_interpreter(
        "codepipeline_worker.work.handler", {**os.environ, "WORK_FUNCTION": reference}
    )

    assert done.returncode != 0
    assert f"ConfigurationError: invalid configuration: {expected}" in done.stderr


@pytest.mark.parametrize(
    ("module", "environ", "expected"),
    [
        # A bad common variable (read first, for the logger) and the function's own: one error names both
        (
            "codepipeline_worker.acknowledger.handler",
            {"POWERTOOLS_LOG_LEVEL": "verbose", "MAX_BATCH_SIZE": "500"},
            "invalid configuration: POWERTOOLS_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or "
            "'CRITICAL'; MAX_BATCH_SIZE: Input should be less than or equal to 100",
        ),
        (
            "codepipeline_worker.work.handler",
            {"POWERTOOLS_LOG_LEVEL": "verbose", "WORK_FUNCTION": "not a reference"},
            "invalid configuration: POWERTOOLS_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or "
            "'CRITICAL'; WORK_FUNCTION: String should match pattern",
        ),
    ],
)
def test_every_bad_variable_is_named_in_one_cold_start_error(
    module: str, environ: dict[str, str], expected: str
) -> None:
    done = _import_in_a_fresh_interpreter(module, {**os.environ, **environ})

    assert done.returncode != 0
    [error] = [line for line in done.stderr.splitlines() if line.startswith("codepipeline_worker.")]
    assert error.startswith(f"codepipeline_worker.shared.errors.ConfigurationError: {expected}"), error


def test_a_lower_case_owner_is_the_only_problem_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"ACTION_TYPES": "custom/Build/MyTool/1"})

    assert str(caught.value) == "invalid configuration: ACTION_TYPES[1].owner: Input should be 'ThirdParty' or 'Custom'"
