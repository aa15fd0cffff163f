"""The post-build step (tools/finish_build.py): the acknowledger's SDK data limited to the services it calls."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from finish_build import limit_sdk_data

if TYPE_CHECKING:
    from pathlib import Path

PARTITION = {"partition": "aws", "dnsSuffix": "amazonaws.com", "regions": {"us-east-1": {}}, "defaults": {}}


def fake_artifact(tmp_path: Path, services: list[str]) -> Path:
    data = tmp_path / "botocore" / "data"
    for service in services:
        (data / service / "2020-01-01").mkdir(parents=True)
        (data / service / "2020-01-01" / "service-2.json").write_text("{}")
    entries: dict[str, object] = {service: {"endpoints": {"us-east-1": {}}} for service in services}
    (data / "endpoints.json").write_text(json.dumps({"version": 3, "partitions": [{**PARTITION, "services": entries}]}))
    (data / "partitions.json").write_text("{}")
    return tmp_path


def test_only_the_named_services_and_the_shared_data_are_kept(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["codepipeline", "s3", "sqs", "ec2"])

    limit_sdk_data(artifact, {"codepipeline", "sqs"})

    data = artifact / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir()) == ["codepipeline", "endpoints.json", "partitions.json", "sqs"]
    [partition] = json.loads((data / "endpoints.json").read_text())["partitions"]
    assert sorted(partition.pop("services")) == ["codepipeline", "sqs"]
    assert partition == PARTITION  # the partition's own data (regions, DNS suffix, defaults) unchanged


def test_a_service_missing_from_the_data_fails_the_build_and_changes_nothing(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["codepipeline", "s3"])
    before = (artifact / "botocore" / "data" / "endpoints.json").read_text()

    with pytest.raises(SystemExit, match="no data for sqs"):
        limit_sdk_data(artifact, {"codepipeline", "sqs"})

    assert (artifact / "botocore" / "data" / "s3").is_dir()
    assert (artifact / "botocore" / "data" / "endpoints.json").read_text() == before
