"""Every validation rule of the event models, each with a passing and a failing case."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from codepipeline_worker.acknowledger.batch_and_poll_events import ActionStateChangeEvent, JobBatchEvent, ScheduledEvent
from codepipeline_worker.acknowledger.events import CustomJobEvent, ThirdPartyJobEvent, parse_event, redact_event
from codepipeline_worker.shared.errors import InvalidJobEvent
from tests.conftest import load_event

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
CLIENT_ID = "c1e7d1a0-1234-4abc-9def-0123456789ab"


def custom(**fields: Any) -> dict[str, Any]:
    return {"jobId": JOB_ID, "nonce": "3", **fields}


def partner(**fields: Any) -> dict[str, Any]:
    return {"jobId": "partner-job-1", "nonce": "3", "clientToken": "token", **fields}


def started(**type_fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = load_event("action-started.json")
    event["detail"]["type"].update(type_fields)
    return event


# (case, event, the field the error must name; None when the event is valid)
RULES: list[tuple[str, Any, str | None]] = [
    ("custom jobId: lower-case UUID", custom(), None),
    ("custom jobId: upper-case hex", custom(jobId=JOB_ID.upper()), "jobId"),
    ("custom jobId: the docs' EXAMPLE id", custom(jobId="f4f4ff82-2d11-EXAMPLE"), "jobId"),
    ("custom jobId: anchored at the start", custom(jobId="x" + JOB_ID), "jobId"),
    ("custom jobId: anchored at the end", custom(jobId=JOB_ID + "0"), "jobId"),
    ("custom jobId: no trailing newline", custom(jobId=JOB_ID + "\n"), "jobId"),
    ("custom jobId: required", {"nonce": "3"}, "jobId"),
    ("nonce: 1 character", custom(nonce="1"), None),
    ("nonce: 50 characters", custom(nonce="n" * 50), None),
    ("nonce: empty", custom(nonce=""), "nonce"),
    ("nonce: 51 characters", custom(nonce="n" * 51), "nonce"),
    ("nonce: a number is not a string", custom(nonce=3), "nonce"),
    ("nonce: required for a custom job", {"jobId": JOB_ID}, "nonce"),
    ("partner jobId: 1 character", partner(jobId="j"), None),
    ("partner jobId: 512 characters", partner(jobId="j" * 512), None),
    ("partner jobId: empty", partner(jobId=""), "jobId"),
    ("partner jobId: 513 characters", partner(jobId="j" * 513), "jobId"),
    ("partner nonce: 51 characters", partner(nonce="n" * 51), "nonce"),
    ("clientToken: 1 character", partner(clientToken="t"), None),
    ("clientToken: 256 characters", partner(clientToken="t" * 256), None),
    ("clientToken: empty", partner(clientToken=""), "clientToken"),
    ("clientToken: 257 characters", partner(clientToken="t" * 257), "clientToken"),
    ("clientId: UUID", {"jobId": "j", "clientId": CLIENT_ID}, None),
    ("clientId: upper-case", {"jobId": "j", "clientId": CLIENT_ID.upper()}, "clientId"),
    ("clientId: anchored", {"jobId": "j", "clientId": CLIENT_ID + "-x"}, "clientId"),
    ("partner: token or clientId needed", {"jobId": "j", "jobType": "thirdParty"}, "clientToken, or clientId"),
    ("unknown key on a job", custom(nonse="3"), "nonse"),
    ("unknown key on a partner job", partner(clientTokn="x"), "clientTokn"),
    ("jobType: custom", custom(jobType="custom"), None),
    ("jobType: thirdParty overrides shape", {"jobId": "j", "nonce": "3", "jobType": "thirdParty"}, "clientId"),
    ("jobType: unknown value", custom(jobType="partner"), "jobType"),
    ("batch: 1 job", {"jobs": [custom()]}, None),
    ("batch: 100 jobs", {"jobs": [custom()] * 100}, None),
    ("batch: empty", {"jobs": []}, "jobs"),
    ("batch: 101 jobs", {"jobs": [custom()] * 101}, "jobs"),
    ("batch: a bad job is named by index", {"jobs": [custom(), custom(nonce="")]}, "jobs[1].nonce"),
    ("batch: unknown key", {"jobs": [custom()], "extra": 1}, "extra"),
    ("batch: a job must be an object", {"jobs": [custom(), 5]}, "jobs[1]: Input should be a valid dictionary"),
    ("scheduled: extra AWS fields accepted", load_event("scheduled.json"), None),
    ("scheduled: source must be aws.events", {**load_event("scheduled.json"), "source": "my.app"}, "source"),
    ("started: extra AWS fields accepted", load_event("action-started.json"), None),
    ("accountId: 12 digits", {**load_event("action-started.json"), "account": "123456789012"}, None),
    ("accountId: 11 digits", {**load_event("action-started.json"), "account": "12345678901"}, "account"),
    ("accountId: letters", {**load_event("action-started.json"), "account": "12345678901a"}, "account"),
    ("owner: AWS is a valid owner", started(owner="AWS"), None),
    ("owner: enum", started(owner="custom"), "detail.type.owner"),
    ("category: enum", started(category="build"), "detail.type.category"),
    ("provider: 35 characters", started(provider="P" * 35), None),
    ("provider: 36 characters", started(provider="P" * 36), "detail.type.provider"),
    ("provider: pattern", started(provider="My Tool"), "detail.type.provider"),
    ("version: 9 characters", started(version="v" * 9), None),
    ("version: 10 characters", started(version="v" * 10), "detail.type.version"),
    ("version: pattern", started(version="1.0"), "detail.type.version"),
    ("unsupported EventBridge event", {"source": "aws.s3", "detail-type": "Object Created"}, "not a supported event"),
    ("not an object", ["jobId"], "JSON object"),
    ("null", None, "JSON object"),
]


@pytest.mark.parametrize(("event", "field"), [(e, f) for _, e, f in RULES], ids=[c for c, _, _ in RULES])
def test_validation_rule(event: Any, field: str | None) -> None:
    if field is None:
        parse_event(copy.deepcopy(event))
    else:
        with pytest.raises(InvalidJobEvent, match=r"^(invalid event|the event|a Lambda)") as caught:
            parse_event(copy.deepcopy(event))
        assert field in str(caught.value)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("custom-job.json", CustomJobEvent),
        ("partner-job.json", ThirdPartyJobEvent),
        ("partner-job-token-only.json", ThirdPartyJobEvent),
        ("partner-job-client-id.json", ThirdPartyJobEvent),
        ("batch.json", JobBatchEvent),
        ("scheduled.json", ScheduledEvent),
        ("action-started.json", ActionStateChangeEvent),
    ],
)
def test_each_events_file_parses_to_its_model(name: str, model: type) -> None:
    assert type(parse_event(load_event(name))) is model


@pytest.mark.parametrize("name", ["invalid-typo.json", "invalid-docs-example-id.json", "invalid-lambda-invoke.json"])
def test_each_invalid_events_file_is_rejected(name: str) -> None:
    with pytest.raises(InvalidJobEvent):
        parse_event(load_event(name))


def test_shape_picks_the_model_and_batch_items_keep_their_kinds() -> None:
    batch = parse_event(load_event("batch.json"))
    assert isinstance(batch, JobBatchEvent)
    assert [job.job_type for job in batch.jobs] == ["custom", "custom", "thirdParty", "thirdParty"]


def test_every_bad_field_is_named_in_one_error() -> None:
    with pytest.raises(InvalidJobEvent) as caught:
        parse_event({"jobId": "f4f4ff82-2d11-EXAMPLE", "nonce": "", "nonse": "3"})
    message = str(caught.value)
    assert message.startswith("invalid event, 3 errors:")
    for field in ("jobId: String should match pattern", "nonce: String should have at least 1", "nonse: Extra"):
        assert field in message


def test_a_huge_batch_reports_a_bounded_message() -> None:
    with pytest.raises(InvalidJobEvent) as caught:
        parse_event({"jobs": [custom(nonce="")] * 100})
    assert "invalid event, 100 errors" in str(caught.value)
    assert "... and 50 more" in str(caught.value)


def test_lambda_invoke_event_is_explained() -> None:
    with pytest.raises(InvalidJobEvent, match="PutJobSuccessResult") as caught:
        parse_event(load_event("invalid-lambda-invoke.json"))
    assert "EXAMPLE" not in str(caught.value)


def test_secrets_are_secret_types_from_parsing_on() -> None:
    job = parse_event(partner(nonce="nonce-value-xyz", clientToken="token-value-xyz"))
    assert isinstance(job, ThirdPartyJobEvent)
    assert "nonce-value-xyz" not in repr(job)
    assert "token-value-xyz" not in repr(job)
    assert job.client_token is not None
    assert job.client_token.get_secret_value() == "token-value-xyz"


def test_an_unknown_key_that_holds_a_secret_is_masked_in_the_error() -> None:
    with pytest.raises(InvalidJobEvent) as caught:
        parse_event(partner(clientToken="token-value-xyz", **{"token-value-xyz": 1}))
    assert "token-value-xyz" not in str(caught.value)
    assert "***: Extra inputs are not permitted" in str(caught.value)


def test_redact_event_masks_every_secret_key_at_any_depth() -> None:
    event = load_event("invalid-lambda-invoke.json")
    redacted = redact_event(
        {"jobs": [partner(nonce="n-1", clientToken="t-1"), {"nonce": ["n-2", {"x": "n-3"}]}], **event}
    )
    text = repr(redacted)
    for secret in ("n-1", "t-1", "n-2", "n-3", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "FwoGZXIvYXdz"):
        assert secret not in text
    assert redacted["jobs"][0]["jobId"] == "partner-job-1"


def test_redact_event_keeps_known_fields_and_hides_unknown_keys_and_values() -> None:
    redacted = redact_event({**load_event("action-started.json"), "surprise": "hidden", "jobId": "j", "nonce": "n2"})
    assert redacted["detail"]["pipeline"] == "my-pipeline"
    assert redacted["detail"]["type"] == {"owner": "Custom", "provider": "MyTool", "category": "Build", "version": "1"}
    assert (redacted["jobId"], redacted["nonce"]) == ("j", "***")
    assert "surprise" not in repr(redacted)
    assert "hidden" not in repr(redacted)
    assert redact_event(["a", "b"]) == "***"
