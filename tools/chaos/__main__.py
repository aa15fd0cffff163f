"""`make chaos`: python -m chaos [--jobs N] [--seed N] [--ci] [--workdir DIR]

Prints the run's counts and its violations; exits 1 if any job's fate breaks the guarantee."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ChaosConfig
from .run import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--jobs", type=int, help="how many jobs (default 500; 60 with --ci)")
    parser.add_argument("--seed", type=int, help="the seed every draw comes from")
    parser.add_argument("--ci", action="store_true", help="the size `make test` runs")
    parser.add_argument("--workdir", type=Path, help="where the functions' logs and the run markers go")
    args = parser.parse_args(argv)
    config = ChaosConfig.ci() if args.ci else ChaosConfig()
    if args.jobs is not None:
        config.jobs = args.jobs
    if args.seed is not None:
        config.seed = args.seed
    print(f"chaos: {config.jobs} jobs, seed {config.seed}", file=sys.stderr)
    verdict = run(config, args.workdir)
    print(verdict.table())
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
