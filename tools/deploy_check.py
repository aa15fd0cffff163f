"""The guard between `make build` and `sam deploy`: .aws-sam/build must hold native code for the architecture the
stack deploys, or the function cannot import pydantic_core at its first cold start.

    python tools/deploy_check.py [--architecture arm64]           check .aws-sam/build
    python tools/deploy_check.py --print [--architecture arm64]   print the architecture the stack deploys

The architecture deployed: --architecture, else the Architecture in samconfig.toml's deploy parameter_overrides
(what `sam deploy --guided` saved), else template.yaml's default. Runs in the SAM CLI's environment (.venv-sam),
which reads the template as the SAM CLI does.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
# ELF e_machine, the two bytes at offset 18 of a shared object: the architecture it runs on.
ELF_MACHINES = {62: "x86_64", 183: "arm64"}


def deploy_architecture(given: str | None) -> tuple[str, str]:
    """The architecture the stack deploys, and where that comes from."""
    if given:
        return given, "ARCH"
    samconfig = ROOT / "samconfig.toml"
    if samconfig.is_file():
        deploy = tomllib.loads(samconfig.read_text()).get("default", {}).get("deploy", {}).get("parameters", {})
        for pair in shlex.split(str(deploy.get("parameter_overrides", ""))):
            name, _, value = pair.partition("=")
            if name == "Architecture" and value:
                return value, "samconfig.toml"
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return str(template["Parameters"]["Architecture"]["Default"]), "template.yaml's default"


def native_architectures(build: Path) -> dict[str, Path]:
    """Each architecture the built functions' shared objects are for, with one such file."""
    found: dict[str, Path] = {}
    for library in sorted(build.glob("*/**/*.so")):
        with library.open("rb") as elf:
            header = elf.read(20)
        if header[:4] == b"\x7fELF":
            machine = ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), f"machine {header[18]}")
            found.setdefault(machine, library)
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", choices=sorted(ELF_MACHINES.values()))
    parser.add_argument("--print", action="store_true", help="print the architecture the stack deploys")
    parser.add_argument("--build", type=Path, default=BUILD, help="the build to check (default: .aws-sam/build)")
    args = parser.parse_args(argv)
    expected, source = deploy_architecture(args.architecture)
    if args.print:
        print(expected)
        return 0
    build: Path = args.build
    if not (build / "template.yaml").is_file():
        print(f"{_shown(build)}: nothing built; make build builds for {expected} ({source})", file=sys.stderr)
        return 1
    wrong = {arch: path for arch, path in native_architectures(build).items() if arch != expected}
    if wrong:
        arch, path = next(iter(wrong.items()))
        print(
            f"{_shown(path)} is {arch} code, but the stack deploys {expected} ({source}): "
            f"make build builds {expected}; to deploy {arch}, set Architecture={arch} in samconfig.toml "
            "(sam deploy --guided asks)",
            file=sys.stderr,
        )
        return 1
    print(f"{_shown(build)}: native code for {expected}, the architecture deployed ({source})")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
