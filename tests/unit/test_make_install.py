"""`make run` installs what running needs (the runtime dependencies and the `local` extra: the local services);
`make test` adds the development toolchain (the `dev` extra)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The development toolchain: none of it is needed to run.
TOOLCHAIN = {"mypy", "ruff", "pytest", "pytest-cov", "coverage", "hypothesis", "awscli", "matplotlib", "boto3-stubs"}


def dry_run(target: str, tmp_path: Path) -> str:
    """What `make -n <target>` would run from a fresh clone: no venv yet."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "src/requirements.txt", "tests/endpoint/js/package-lock.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(  # noqa: S603 - make, on the test's own copy
        ["make", "-n", target, "PYTHON=python3.13"],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def installs(commands: str) -> list[str]:
    return re.findall(r"pip install .*-e '\.\[(\w+)\]'", commands)


def test_make_run_installs_the_local_extra_only(tmp_path: Path) -> None:
    assert installs(dry_run("run", tmp_path)) == ["local"]
    assert installs(dry_run("test", tmp_path)) == ["dev"]


def test_the_local_extra_holds_no_development_tool() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[\[=<>]", requirement)[0] for requirement in extras["local"]}
    assert not names & TOOLCHAIN
    assert not any(name.startswith(("mypy-boto3", "types-")) for name in names)
    # moto with the services the local runs use and its server, not moto[server]'s every service (cfn-lint, sympy...)
    assert [r for r in extras["local"] if r.startswith("moto")] == ["moto[dynamodb,kms,s3,secretsmanager,sqs]==5.2.5"]
    assert "codepipeline-job-worker[local]" in extras["dev"]
