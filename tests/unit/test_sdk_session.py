"""The execution environment's SDK session (shared/adapter.py `sdk_session`): when botocore holds data for the
acknowledger's services alone, as in its built artifact, the session registers botocore's built-in handlers for
those services only; every event a client of those services emits reaches exactly the handlers it reaches in
botocore's own session, in the same order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import botocore.handlers
import botocore.session
import pytest

from codepipeline_worker.shared import adapter
from codepipeline_worker.shared.adapter import ACKNOWLEDGER_SERVICES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def fresh_session() -> Iterator[None]:
    adapter.sdk_session.cache_clear()
    yield
    adapter.sdk_session.cache_clear()


BUILTIN = {id(spec[1]) for spec in botocore.handlers.BUILTIN_HANDLERS}


def handlers(session: botocore.session.Session, event: str) -> list[Any]:
    """The handlers an emitted event reaches, in order (botocore's emitter's own lookup): botocore's own by
    identity, others (made for each session, such as Powertools' User-Agent hook) by name."""
    found = session.get_component("event_emitter")._emitter._handlers.prefix_search(event)
    return [h if id(h) in BUILTIN else f"{h.__module__}.{h.__qualname__}" for h in found]


def event_names(service_id: str, operation: str) -> Iterator[str]:
    """Every kind of event botocore's built-in handlers listen to, as a client of the service emits it."""
    for spec in botocore.handlers.BUILTIN_HANDLERS:
        parts = spec[0].split(".")
        if parts[0] == "docs":
            yield f"docs.request-example.{service_id}.{operation}.complete-section"
        else:
            yield f"{parts[0]}.{service_id}.{operation}"
            yield f"{parts[0]}.{service_id}"
            yield parts[0]


def test_the_limited_session_reaches_the_same_handlers_for_every_event_of_the_acknowledgers_services() -> None:
    full = botocore.session.get_session()
    limited = adapter._ScopedSession(ACKNOWLEDGER_SERVICES)
    compared = 0
    for service in sorted(ACKNOWLEDGER_SERVICES):
        model = full.get_service_model(service)
        for operation in model.operation_names:
            for event in set(event_names(model.service_id.hyphenize(), operation)):
                assert handlers(limited, event) == handlers(full, event), event
                compared += 1
    assert compared > 1000
    # and it is not botocore's whole session: the handlers of other services' events are not there
    others = ["before-parameter-build.s3.PutObject", "before-call.s3.PutObject", "needs-retry.s3.PutObject"]
    others += ["before-parameter-build.ec2.RunInstances", "before-call.glacier.UploadArchive"]
    assert sum(len(handlers(limited, event)) for event in others) < sum(len(handlers(full, event)) for event in others)


def test_only_sdk_data_for_the_acknowledgers_services_alone_limits_the_session(
    fresh_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this environment's botocore is whole: botocore's own session
    assert len(adapter.sdk_data_services()) > 400
    assert type(adapter.sdk_session()) is botocore.session.Session

    adapter.sdk_session.cache_clear()
    monkeypatch.setattr(adapter, "_sdk_data_folders", lambda: iter(["codepipeline", "sqs", "sts"]))
    assert isinstance(adapter.sdk_session(), adapter._ScopedSession)

    adapter.sdk_session.cache_clear()
    monkeypatch.setattr(adapter, "_sdk_data_folders", lambda: iter([*sorted(ACKNOWLEDGER_SERVICES), "s3"]))
    assert type(adapter.sdk_session()) is botocore.session.Session


def test_the_data_paths_the_environment_adds_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my-service" / "2020-01-01").mkdir(parents=True)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

    assert "my-service" in adapter.sdk_data_services()
