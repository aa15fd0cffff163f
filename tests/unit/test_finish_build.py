"""The post-build step (tools/finish_build.py): the acknowledger's SDK data limited to the calls it makes, its
models without documentation."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING, Any

import botocore.loaders
import botocore.model
import pytest

from codepipeline_worker.shared.adapter import ACKNOWLEDGER_SERVICES
from finish_build import LIMITED, limit_operations, limit_sdk_data, strip_documentation

if TYPE_CHECKING:
    from pathlib import Path

PARTITION = {"partition": "aws", "dnsSuffix": "amazonaws.com", "regions": {"us-east-1": {}}, "defaults": {}}
MODEL: dict[str, Any] = {
    "metadata": {"protocol": "json"},
    "operations": {
        "Called": {
            "name": "Called",
            "input": {"shape": "In"},
            "output": {"shape": "Out"},
            "errors": [{"shape": "Err"}],
        },
        "NotCalled": {"name": "NotCalled", "input": {"shape": "Other"}},
        "DescribeEndpoints": {"name": "DescribeEndpoints", "endpointoperation": True, "output": {"shape": "Text"}},
    },
    "shapes": {
        "In": {"type": "structure", "members": {"Items": {"shape": "Items"}, "Tags": {"shape": "Tags"}}},
        "Items": {"type": "list", "member": {"shape": "Item"}},
        "Item": {"type": "structure", "members": {"Next": {"shape": "Item"}}},  # a shape that refers to itself
        "Tags": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "Text"}},
        "Key": {"type": "string"},
        "Text": {"type": "string"},
        "Out": {"type": "structure", "members": {}},
        "Err": {"type": "structure", "members": {"message": {"shape": "Text"}}, "exception": True},
        "Other": {"type": "structure", "members": {"Only": {"shape": "OnlyOther"}}},
        "OnlyOther": {"type": "string"},
    },
}


def fake_artifact(tmp_path: Path, services: list[str]) -> Path:
    data = tmp_path / "botocore" / "data"
    for service in services:
        (data / service / "2020-01-01").mkdir(parents=True)
        (data / service / "2020-01-01" / "service-2.json").write_text(json.dumps(MODEL))
    entries: dict[str, object] = {service: {"endpoints": {"us-east-1": {}}} for service in services}
    (data / "endpoints.json").write_text(json.dumps({"version": 3, "partitions": [{**PARTITION, "services": entries}]}))
    (data / "partitions.json").write_text("{}")
    return tmp_path


def test_only_the_services_called_or_kept_whole_and_the_shared_data_are_kept(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["codepipeline", "s3", "sqs", "ec2", "sts"])

    limit_sdk_data(artifact, {"codepipeline:Called", "sqs:Called"}, {"sts"})

    data = artifact / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir()) == ["codepipeline", "endpoints.json", "partitions.json", "sqs", "sts"]
    [partition] = json.loads((data / "endpoints.json").read_text())["partitions"]
    assert sorted(partition.pop("services")) == ["codepipeline", "sqs", "sts"]
    assert partition == PARTITION  # the partition's own data (regions, DNS suffix, defaults) unchanged
    # a service kept whole keeps every operation
    assert json.loads((data / "sts" / "2020-01-01" / "service-2.json").read_text()) == MODEL


def test_a_service_or_operation_missing_from_the_data_fails_the_build_and_changes_nothing(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["codepipeline", "s3"])
    before = {p: p.read_bytes() for p in artifact.rglob("*") if p.is_file()}

    with pytest.raises(SystemExit, match="no data for sqs"):
        limit_sdk_data(artifact, {"codepipeline:Called", "sqs:Called"})
    with pytest.raises(SystemExit, match=r"codepipeline model .* has no Missing"):
        limit_sdk_data(artifact, {"codepipeline:Called", "codepipeline:Missing"})

    assert {p: p.read_bytes() for p in artifact.rglob("*") if p.is_file()} == before


def test_a_model_keeps_the_operations_called_and_every_shape_they_reach() -> None:
    limited = limit_operations(MODEL, {"Called"})

    # the endpoint discovery operation is botocore's own call: kept
    assert sorted(limited["operations"]) == ["Called", "DescribeEndpoints"]
    assert sorted(limited["shapes"]) == ["Err", "In", "Item", "Items", "Key", "Out", "Tags", "Text"]
    assert limited["metadata"] == MODEL["metadata"]
    assert all(limited["shapes"][name] == MODEL["shapes"][name] for name in limited["shapes"])


def test_the_kept_operations_paginators_and_waiters_are_kept_and_the_examples_go(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["dynamodb"])
    version = artifact / "botocore" / "data" / "dynamodb" / "2020-01-01"
    (version / "paginators-1.json").write_text(json.dumps({"pagination": {"Called": {"a": 1}, "NotCalled": {"b": 2}}}))
    waiters = {"Ready": {"operation": "Called"}, "Gone": {"operation": "NotCalled"}}
    (version / "waiters-2.json").write_text(json.dumps({"version": 2, "waiters": waiters}))
    (version / "examples-1.json").write_text("{}")

    limit_sdk_data(artifact, {"dynamodb:Called"})

    assert json.loads((version / "paginators-1.json").read_text()) == {"pagination": {"Called": {"a": 1}}}
    assert json.loads((version / "waiters-2.json").read_text())["waiters"] == {"Ready": {"operation": "Called"}}
    assert not (version / "examples-1.json").exists()


def shape_tree(shape: botocore.model.Shape | None, seen: frozenset[str] = frozenset()) -> object:
    """What botocore makes of a shape, and of every shape it reaches, documentation aside."""
    if shape is None or shape.name in seen:
        return None if shape is None else shape.name
    inner = seen | {shape.name}
    children: dict[str, object] = {}
    if isinstance(shape, botocore.model.StructureShape):
        children = {name: shape_tree(member, inner) for name, member in shape.members.items()}
    elif isinstance(shape, botocore.model.ListShape):
        children = {"member": shape_tree(shape.member, inner)}
    elif isinstance(shape, botocore.model.MapShape):
        children = {"key": shape_tree(shape.key, inner), "value": shape_tree(shape.value, inner)}
    return (shape.name, shape.type_name, shape.serialization, shape.metadata, children)


@pytest.mark.parametrize("service", sorted({op.split(":")[0] for op in LIMITED["JobWorkerFunction"][0]}))
def test_botocore_reads_each_operation_kept_as_it_reads_it_in_the_full_model(service: str) -> None:
    operations, _ = LIMITED["JobWorkerFunction"]
    called = {op.split(":")[1] for op in operations if op.startswith(f"{service}:")}
    full = botocore.loaders.create_loader().load_service_model(service, "service-2")

    limited = strip_documentation(limit_operations(full, called))

    assert len(json.dumps(limited)) < len(json.dumps(full)) / 4
    before, after = botocore.model.ServiceModel(full, service), botocore.model.ServiceModel(limited, service)
    assert called <= set(after.operation_names) <= called | {"DescribeEndpoints"}
    assert after.metadata == before.metadata
    for name in after.operation_names:
        old, new = before.operation_model(name), after.operation_model(name)
        assert (new.http, new.metadata, new.context_parameters) == (old.http, old.metadata, old.context_parameters)
        assert shape_tree(new.input_shape) == shape_tree(old.input_shape)
        assert shape_tree(new.output_shape) == shape_tree(old.output_shape)
        assert [shape_tree(e) for e in new.error_shapes] == [shape_tree(e) for e in old.error_shapes]


def removed_keys(full: object, stripped: object, at: str = "") -> list[str]:
    """Where `stripped` differs from `full`: the path of every key it lacks. Anything else that differs (a value
    changed, a key added, a list's length) fails the test."""
    if isinstance(full, dict):
        assert isinstance(stripped, dict), at
        assert set(stripped) <= set(full), f"{at}: keys added {set(stripped) - set(full)}"
        missing = [f"{at}/{key}" for key in full if key not in stripped]
        return missing + [path for key in stripped for path in removed_keys(full[key], stripped[key], f"{at}/{key}")]
    if isinstance(full, list):
        assert isinstance(stripped, list), at
        assert len(full) == len(stripped), at
        return [
            path
            for n, (a, b) in enumerate(zip(full, stripped, strict=True))
            for path in removed_keys(a, b, f"{at}[{n}]")
        ]
    assert full == stripped, at
    return []


@pytest.mark.parametrize("service", sorted(ACKNOWLEDGER_SERVICES))
def test_a_kept_service_model_loses_its_documentation_and_nothing_else(service: str) -> None:
    loader = botocore.loaders.create_loader()
    full = loader.load_service_model(service, "service-2")

    stripped = strip_documentation(full)

    removed = removed_keys(full, stripped)
    assert removed, "the model had documentation to remove"
    assert {path.rsplit("/", 1)[1] for path in removed} <= {"documentation", "documentationUrl"}
    text = json.dumps(stripped)
    assert len(text) < len(json.dumps(full)) / 2
    # botocore reads the model as it did: every operation's shapes, their members and their wire names
    before, after = botocore.model.ServiceModel(full, service), botocore.model.ServiceModel(stripped, service)
    assert after.operation_names == before.operation_names
    for name in before.operation_names:
        assert after.operation_model(name).metadata == before.operation_model(name).metadata
        for shape in ("input_shape", "output_shape"):
            old, new = getattr(before.operation_model(name), shape), getattr(after.operation_model(name), shape)
            assert (new and new.members.keys()) == (old and old.members.keys())
        assert after.operation_model(name).documentation == ""


def test_documentation_that_is_data_is_kept() -> None:
    model = {
        "documentation": "the service",
        "clientContextParams": {"Accelerate": {"documentation": "read by botocore", "type": "boolean"}},
        "operations": {
            "Op": {
                "documentation": "an operation",
                "documentationUrl": "https://docs.example",
                "input": {"shape": "Doc", "documentation": "its input"},
                "errors": [{"shape": "Err", "documentation": "an error"}],
            }
        },
        "shapes": {
            "Doc": {
                "type": "structure",
                "documentation": "a shape",
                "members": {"documentation": {"shape": "Text", "documentation": "a member named documentation"}},
            },
            "List": {"type": "list", "member": {"shape": "Text", "documentation": "its member"}},
            "Text": {"type": "string"},
        },
    }

    assert strip_documentation(model) == {
        "clientContextParams": {"Accelerate": {"documentation": "read by botocore", "type": "boolean"}},
        "operations": {"Op": {"input": {"shape": "Doc"}, "errors": [{"shape": "Err"}]}},
        "shapes": {
            "Doc": {"type": "structure", "members": {"documentation": {"shape": "Text"}}},
            "List": {"type": "list", "member": {"shape": "Text"}},
            "Text": {"type": "string"},
        },
    }


def test_the_kept_services_models_are_written_without_documentation(tmp_path: Path) -> None:
    artifact = fake_artifact(tmp_path, ["codepipeline", "sqs"])
    model = {"documentation": "x", "operations": {}, "shapes": {"S": {"type": "string", "documentation": "y"}}}
    compressed = artifact / "botocore" / "data" / "codepipeline" / "2020-01-01" / "service-2.json"
    compressed.unlink()
    compressed.with_suffix(".json.gz").write_bytes(gzip.compress(json.dumps(model).encode()))
    (artifact / "botocore" / "data" / "sqs" / "2020-01-01" / "service-2.json").write_text(json.dumps(model))

    limit_sdk_data(artifact, set(), {"codepipeline", "sqs"})

    bare = {"operations": {}, "shapes": {"S": {"type": "string"}}}
    assert json.loads(gzip.decompress(compressed.with_suffix(".json.gz").read_bytes())) == bare
    assert json.loads((artifact / "botocore" / "data" / "sqs" / "2020-01-01" / "service-2.json").read_text()) == bare
