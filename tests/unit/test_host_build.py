"""make invoke's host build: into build/sam-host/ (never .aws-sam/), and only when something it reads changed.
`sam build` itself is replaced by a stand-in that records each run; tests/template runs the real one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import finish_build
import invoke_local

ROOT = Path(__file__).resolve().parents[2]


class Builds:
    """The commands the build ran: `sam build` (which writes one function directory), and the post-build step
    (tools/finish_build.py) on each build directory."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.finished: list[Path] = []

    def run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        if "build" in command[1:2]:
            built = Path(command[command.index("--build-dir") + 1]) / invoke_local.ACKNOWLEDGER
            built.mkdir(parents=True, exist_ok=True)
            assert kwargs["cwd"] == invoke_local.HOST_BUILD
        return subprocess.CompletedProcess(command, 0)

    def sam_builds(self) -> list[list[str]]:
        return [c for c in self.commands if c[1:2] == ["build"]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of what the build reads, with the host build under it."""
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "src" / "actions").mkdir(parents=True)
    (tmp_path / "src" / "requirements.txt").write_text("boto3==1.44.5\n")
    monkeypatch.setattr(invoke_local, "ROOT", tmp_path)
    monkeypatch.setattr(invoke_local, "HOST_BUILD", tmp_path / "build" / "sam-host")
    monkeypatch.setattr(invoke_local, "BUILD_DIR", tmp_path / "build" / "sam-host" / "build")
    monkeypatch.setattr(invoke_local, "CACHE_DIR", tmp_path / "build" / "sam-host" / "cache")
    monkeypatch.setattr(invoke_local, "INPUTS_STAMP", tmp_path / "build" / "sam-host" / "inputs.sha256")
    return tmp_path


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    recorder = Builds()
    monkeypatch.setattr(subprocess, "run", recorder.run)
    monkeypatch.setattr(finish_build, "finish", recorder.finished.append)
    return recorder


def test_the_host_build_goes_to_build_sam_host_for_this_machine(project: Path, builds: Builds) -> None:
    artifact = invoke_local.build({"LogLevel": "DEBUG"})

    [sam_build] = builds.sam_builds()
    assert sam_build[sam_build.index("--build-dir") + 1] == str(project / "build" / "sam-host" / "build")
    assert sam_build[sam_build.index("--cache-dir") + 1] == str(project / "build" / "sam-host" / "cache")
    overrides = sam_build[sam_build.index("--parameter-overrides") + 1]
    assert overrides == f"LogLevel=DEBUG Architecture={invoke_local.host_architecture()}"
    assert artifact == project / "build" / "sam-host" / "build" / invoke_local.ACKNOWLEDGER
    assert builds.finished == [project / "build" / "sam-host" / "build"]
    assert not (project / ".aws-sam").exists()


def test_nothing_changed_nothing_built(project: Path, builds: Builds) -> None:
    invoke_local.build({})
    invoke_local.build({})

    assert len(builds.sam_builds()) == 1


@pytest.mark.parametrize(
    ("change", "overrides"),
    [
        (lambda root: (root / "src" / "actions" / "mine.py").write_text("def run(job): ...\n"), {}),
        (lambda root: (root / "src" / "requirements.txt").write_text("boto3==1.44.5\nrequests==2.32.5\n"), {}),
        (lambda root: (root / "template.yaml").write_text((root / "template.yaml").read_text() + "\n"), {}),
        (lambda root: None, {"MaxBatchSize": "5"}),
    ],
    ids=["your-action", "requirements", "template", "overrides"],
)
def test_a_change_to_what_the_build_reads_builds_again(
    change: Any, overrides: dict[str, str], project: Path, builds: Builds
) -> None:
    invoke_local.build({})
    change(project)
    invoke_local.build(overrides)

    assert len(builds.sam_builds()) == 2


def test_a_build_that_fails_is_not_taken_for_done(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(subprocess.CalledProcessError):
        invoke_local.build({})

    assert not invoke_local.INPUTS_STAMP.exists()
